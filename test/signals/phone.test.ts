import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { getExampleNumber, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import mobileExamples from 'libphonenumber-js/mobile/examples';
import {
  NON_GEOGRAPHIC_CODES,
  callingCodeOf,
  foldPhoneText,
  maskPhone,
  normalizePhone,
  prefixOf,
  prefixOfParsed,
  type PhoneResult,
} from '../../src/signals/phone.ts';

function ok(r: PhoneResult): Extract<PhoneResult, { ok: true }> {
  if (!r.ok) assert.fail(`expected ok, got ${r.reason}: ${r.message}`);
  return r;
}

const UK = '+447400123456';
const ID = '+6281234567890';
const US = '+16502530000';
const IN = '+919876543210';
const BR = '+5511987654321';

// [input, defaultRegion, expected e164]
const SAME_NUMBER: [string, string | undefined, string][] = [
  // UK mobile
  ['+447400123456', undefined, UK],
  ['+44 7400 123456', undefined, UK],
  ['+44-7400-123-456', undefined, UK],
  ['+44.7400.123.456', undefined, UK],
  ['+44 (0)7400 123456', undefined, UK],
  ['+44 (0) 7400 123 456', undefined, UK],
  ['(+44) 7400 123456', undefined, UK],
  ['0044 7400 123456', undefined, UK],
  ['07400 123456', 'GB', UK],
  ['07400 123456', 'gb', UK],
  ['011 44 7400 123456', 'US', UK],
  ['0044 7400 123456', 'US', UK], // 00 accepted even where IDD is 011
  ['tel:+44-7400-123456', undefined, UK],
  ['TEL:+447400123456', undefined, UK],
  ['  +44 7400 123456  ', undefined, UK],
  ['\t+44 7400\n123456', undefined, UK],
  ['＋４４　７４００　１２３４５６', undefined, UK], // full-width digits, plus and ideographic space
  ['+٤٤٧٤٠٠١٢٣٤٥٦', undefined, UK], // Arabic-Indic
  ['+۴۴۷۴۰۰۱۲۳۴۵۶', undefined, UK], // Extended Arabic-Indic (Persian)
  ['+४४७४००१२३४५६', undefined, UK], // Devanagari
  ['+৪৪৭৪০০১২৩৪৫৬', undefined, UK], // Bengali
  ['+౪౪౭౪౦౦౧౨౩౪౫౬', undefined, UK], // Telugu
  ['+๔๔๗๔๐๐๑๒๓๔๕๖', undefined, UK], // Thai
  ['+𝟒𝟒𝟕𝟒𝟎𝟎𝟏𝟐𝟑𝟒𝟓𝟔', undefined, UK], // mathematical bold digits
  ['+44 74٠٠ 1２3४56', undefined, UK], // mixed scripts in one number
  ['+44\u200b7400\u200c123\u200d456', undefined, UK], // zero-width space/non-joiner/joiner
  ['\u202e+447400123456\u202c', undefined, UK], // bidi override + pop
  ['\u2066+447400123456\u2069', undefined, UK], // bidi isolates
  ['\ufeff+44\u00ad7400\u00a0123456', undefined, UK], // BOM, soft hyphen, NBSP
  ['+44\u20607400\u2063123456', undefined, UK], // word joiner, invisible separator
  ['+44\u200e7400\u200f123456', undefined, UK], // LRM / RLM
  ['+44–7400—123456', undefined, UK], // en dash, em dash
  ['+44\u22127400\u2212123456', undefined, UK], // minus sign
  ['+44/7400/123456', undefined, UK],
  ['+44 [7400] 123456', undefined, UK],
  // Indonesia mobile
  ['+62 812-3456-7890', undefined, ID],
  ['0812-3456-7890', 'ID', ID],
  ['0062 812 3456 7890', undefined, ID],
  ['+62 (0)812 3456 7890', undefined, ID],
  ['+٦٢٨١٢٣٤٥٦٧٨٩٠', undefined, ID],
  // US: + vs 001 vs 011 vs national vs 1-prefixed national
  ['+1 650 253 0000', undefined, US],
  ['+1 (650) 253-0000', undefined, US],
  ['001 650 253 0000', undefined, US],
  ['011 1 650 253 0000', 'US', US],
  ['(650) 253-0000', 'US', US],
  ['650.253.0000', 'US', US],
  ['1-650-253-0000', 'US', US],
  ['tel:+1-650-253-0000', undefined, US],
  // India, Brazil
  ['+91 98765 43210', undefined, IN],
  ['098765 43210', 'IN', IN],
  ['+55 11 98765-4321', undefined, BR],
  ['(11) 98765-4321', 'BR', BR],
  ['0055 11 9 8765 4321', undefined, BR],
];

test('many spellings of the same subscriber give one E.164 key', () => {
  assert.ok(SAME_NUMBER.length >= 30);
  for (const [input, region, want] of SAME_NUMBER) {
    const r = normalizePhone(input, region === undefined ? {} : { defaultRegion: region });
    assert.ok(r.ok, `${JSON.stringify(input)} (${region ?? '-'}) → ${r.ok ? '' : r.reason}`);
    assert.equal(r.e164, want, `${JSON.stringify(input)} (${region ?? '-'})`);
  }
});

test('result carries region, calling code and national number', () => {
  const r = ok(normalizePhone('+44 7400 123456'));
  assert.deepEqual(r, { ok: true, e164: UK, region: 'GB', callingCode: '44', national: '7400123456', type: 'MOBILE' });
  const id = ok(normalizePhone('0812-3456-7890', { defaultRegion: 'ID' }));
  assert.equal(id.region, 'ID');
  assert.equal(id.callingCode, '62');
  assert.equal(id.national, '81234567890');
  // Italian numbers keep their leading 0 in the national number.
  const it = ok(normalizePhone('+39 06 1234 5678'));
  assert.equal(it.e164, '+390612345678');
  assert.equal(it.national, '0612345678');
});

// [input, region, reason]
const REJECTED: [unknown, string | undefined, string][] = [
  [undefined, undefined, 'not_a_string'],
  [null, undefined, 'not_a_string'],
  [447400123456, undefined, 'not_a_string'],
  [['+447400123456'], undefined, 'not_a_string'],
  ['+44 7400 123456'.padEnd(65, ' '), undefined, 'too_long'],
  ['1'.repeat(10_000), undefined, 'too_long'],
  ['', undefined, 'invalid_number'],
  ['+', undefined, 'invalid_number'],
  ['  +  ', undefined, 'invalid_number'],
  ['\u200b\u200b', undefined, 'invalid_number'],
  ['+1234567890123456', undefined, 'invalid_number'], // 16 digits
  ['+44 7400 1234567', undefined, 'invalid_number'], // one digit too many for GB
  ['+44 7400 12345', undefined, 'invalid_number'],
  ['+999 123456789', undefined, 'invalid_number'], // unassigned calling code
  ['+0 650 253 0000', undefined, 'invalid_number'],
  ['123456789012345678901', 'US', 'invalid_number'], // > 20 digits
  ['+44 7400 123456 ext. 12', undefined, 'has_extension'],
  ['+44 7400 123456 ext 12', undefined, 'has_extension'],
  ['+44 7400 123456 extension 12', undefined, 'has_extension'],
  ['+1 650 253 0000 x123', undefined, 'has_extension'],
  ['+1 650 253 0000 X 123', undefined, 'has_extension'],
  ['+16502530000#123', undefined, 'has_extension'],
  ['+16502530000,123', undefined, 'has_extension'], // dial pause
  ['+16502530000;123', undefined, 'has_extension'],
  ['tel:+1-650-253-0000;ext=123', undefined, 'has_extension'],
  ['tel:+1-650-253-0000;isub=1411', undefined, 'has_extension'],
  ['tel:+1-650-253-0000;phone-context=example.com', undefined, 'invalid_characters'],
  ['+1-800-FLOWERS', undefined, 'invalid_characters'], // vanity
  ['1-800-flowers', 'US', 'invalid_characters'],
  ['+44 7400 12345a', undefined, 'invalid_characters'],
  ['+44 7400 123456#', undefined, 'invalid_characters'],
  ['+44+7400123456', undefined, 'invalid_characters'],
  ['447400+123456', undefined, 'invalid_characters'],
  ['+44 7400 123456\u0000', undefined, 'invalid_characters'],
  ['*#06#', undefined, 'invalid_characters'],
  ['%2B447400123456', undefined, 'invalid_characters'],
  ['6502530000', undefined, 'needs_region'], // bare national without region
  ['011 44 7400 123456', undefined, 'needs_region'], // 011 is only IDD for NANP regions
  ['07400 123456', undefined, 'needs_region'],
  ['+1 650 253 0000', 'XX', 'invalid_region'],
  ['07400 123456', 'US', 'invalid_number'], // wrong region for this national number
];

test('rejections carry a typed reason', () => {
  for (const [input, region, reason] of REJECTED) {
    const r = normalizePhone(input, region === undefined ? {} : { defaultRegion: region });
    assert.equal(r.ok, false, `${JSON.stringify(input)} should be rejected`);
    if (!r.ok) {
      assert.equal(r.reason, reason, `${JSON.stringify(input)}: ${r.message}`);
      assert.ok(r.message.length > 0);
    }
  }
});

test('digit folding maps every Unicode decimal digit to its value', () => {
  // Cross-check the run-distance rule against scripts whose zero we know.
  const zeros = [0x0660, 0x06f0, 0x07c0, 0x0966, 0x09e6, 0x0a66, 0x0ae6, 0x0b66, 0x0be6, 0x0c66, 0x0ce6, 0x0d66, 0x0e50, 0x0ed0, 0x0f20, 0x1040, 0x17e0, 0x1810, 0xff10, 0x104a0, 0x1d7ce, 0x1d7d8, 0x1e950];
  for (const z of zeros) {
    let s = '';
    for (let i = 0; i < 10; i++) s += String.fromCodePoint(z + i);
    assert.equal(foldPhoneText(s), '0123456789', `zero at U+${z.toString(16)}`);
  }
  // Exhaustive: every \p{Nd} char folds to exactly one ASCII digit.
  let count = 0;
  for (let cp = 0x80; cp <= 0x1fbff; cp++) {
    const ch = String.fromCodePoint(cp);
    if (!/\p{Nd}/u.test(ch)) continue;
    count++;
    assert.match(foldPhoneText(ch), /^[0-9]$/, `U+${cp.toString(16)}`);
  }
  assert.ok(count > 500, `found ${count} non-ASCII decimal digits`);
});

test('line type detection', () => {
  const cases: [string, string][] = [
    ['+447400123456', 'MOBILE'],
    ['+442079460000', 'FIXED_LINE'],
    ['+16502530000', 'FIXED_LINE_OR_MOBILE'],
    ['+445612345678', 'VOIP'],
    ['+449091234567', 'PREMIUM_RATE'],
    ['+19002345678', 'PREMIUM_RATE'],
    ['+448001234567', 'TOLL_FREE'],
    ['+18002345678', 'TOLL_FREE'],
    ['+80012345678', 'TOLL_FREE'], // non-geographic
    ['+33820123456', 'SHARED_COST'],
    ['+443001234567', 'UAN'],
    ['+447640123456', 'PAGER'],
    ['+447012345678', 'PERSONAL_NUMBER'],
    ['+46678914066866', 'VOICEMAIL'],
    ['+551131234567', 'FIXED_LINE'],
    ['+62215551234', 'FIXED_LINE'],
  ];
  for (const [n, type] of cases) assert.equal(ok(normalizePhone(n)).type, type, n);
  assert.equal(ok(normalizePhone('+80012345678')).region, '001');
});

test('library mobile example numbers are MOBILE (or FIXED_LINE_OR_MOBILE) in their region', () => {
  const regions: CountryCode[] = ['GB', 'ID', 'IN', 'BR', 'DE', 'FR', 'NG', 'PH', 'JE', 'GG', 'US', 'CA'];
  for (const c of regions) {
    const ex = getExampleNumber(c, mobileExamples);
    assert.ok(ex, c);
    const r = ok(normalizePhone(ex.number));
    assert.equal(r.region, c, `${c} example ${ex.number}`);
    assert.ok(r.type === 'MOBILE' || r.type === 'FIXED_LINE_OR_MOBILE', `${c}: ${r.type}`);
    // national format with the region as default reaches the same key
    assert.equal(ok(normalizePhone(ex.formatNational(), { defaultRegion: c })).e164, ex.number);
  }
});

test('Crown dependencies under +44 get their own region', () => {
  assert.equal(ok(normalizePhone('+44 7624 123456')).region, 'IM');
  assert.equal(ok(normalizePhone('+44 1624 612345')).region, 'IM');
  assert.equal(ok(normalizePhone('+44 7797 712345')).region, 'JE');
  assert.equal(ok(normalizePhone('+44 1534 123456')).region, 'JE');
  assert.equal(ok(normalizePhone('+44 7781 123456')).region, 'GG');
  for (const n of ['+447624123456', '+447797712345', '+447781123456']) assert.equal(ok(normalizePhone(n)).callingCode, '44');
});

test('agrees with libphonenumber on E.164 for valid inputs', () => {
  for (const [input, region] of SAME_NUMBER) {
    if (/[^\x20-\x7e]/.test(input)) continue; // the library itself does not fold all scripts
    const lib = parsePhoneNumberFromString(input.replace(/^tel:/i, ''), region ? (region.toUpperCase() as CountryCode) : undefined);
    const ours = normalizePhone(input, region === undefined ? {} : { defaultRegion: region });
    if (lib?.isValid() && ours.ok) assert.equal(ours.e164, lib.number, input);
  }
});

test('prefixOf uses the calling-code boundary', () => {
  assert.equal(prefixOf('+6281234567890', 3), '+62812');
  assert.equal(prefixOf('+16502530000', 3), '+1650');
  assert.equal(prefixOf('+447400123456', 2), '+4474');
  assert.equal(prefixOf('+3726001234', 1), '+3726'); // 3-digit code 372
  assert.equal(prefixOf('+88234567890123', 2), '+88234'); // non-geographic
  assert.equal(prefixOf('6281234567890', 3), '+62812'); // '+' optional
  assert.equal(prefixOf('+6281234567890', 0), '+62');
  assert.equal(prefixOf('+62812', 10), '+62812'); // clamps to what exists
  for (const [input, region] of SAME_NUMBER) {
    const r = normalizePhone(input, region === undefined ? {} : { defaultRegion: region });
    if (!r.ok) continue;
    assert.equal(callingCodeOf(r.e164), r.callingCode, r.e164);
    for (const n of [0, 1, 3, 5]) assert.equal(prefixOf(r.e164, n), prefixOfParsed(r, n));
  }
});

test('non-geographic calling code list matches library metadata', () => {
  const req = createRequire(import.meta.url);
  const meta = req('libphonenumber-js/metadata.max.json') as { nonGeographic: Record<string, unknown> };
  assert.deepEqual([...NON_GEOGRAPHIC_CODES].sort(), Object.keys(meta.nonGeographic).sort());
});

test('maskPhone keeps calling code + 3 and last 3', () => {
  assert.equal(maskPhone('+6281234567890'), '+62812*****890');
  assert.equal(maskPhone('+447400123456'), '+44740****456');
  assert.equal(maskPhone('+16502530000'), '+1650****000');
  // short national numbers still hide at least three digits
  const m = maskPhone('+2901234');
  assert.equal(m.length, '+2901234'.length);
  assert.ok((m.match(/\*/g) ?? []).length >= 3, m);
  assert.equal(maskPhone('not a number'), '***');
  // masks of different numbers in the same range can collide, never reveal the middle
  assert.ok(!maskPhone('+6281234567890').includes('34567'));
});

test('valid exactly when the library says valid, and the type is the library\'s: random numbers of every region', () => {
  // normalizePhone asks libphonenumber for the number type once and treats "no type" as invalid, instead of
  // isValid() and then getType() (the same matching twice). This pins that shortcut to the library's own answer.
  const req = createRequire(import.meta.url);
  const meta = req('libphonenumber-js/metadata.max.json') as { country_calling_codes: Record<string, string[]> };
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  let valid = 0;
  let checked = 0;
  for (const cc of Object.keys(meta.country_calling_codes)) {
    for (let i = 0; i < 40; i++) {
      // Random national numbers of 6 to 12 digits (mostly invalid), then every region's mobile example (valid).
      const len = 6 + Math.floor(rand() * 7);
      let national = '';
      for (let k = 0; k < len; k++) national += String(Math.floor(rand() * 10));
      const input = `+${cc}${national}`;
      const pn = parsePhoneNumberFromString(input, { extract: false });
      const r = normalizePhone(input);
      const libValid = !!pn && !pn.ext && pn.isValid() && pn.number.length <= 16;
      assert.equal(r.ok, libValid, input);
      if (r.ok) {
        valid++;
        assert.equal(r.type, pn!.getType(), input);
      }
      checked++;
    }
  }
  for (const region of Object.keys(mobileExamples) as CountryCode[]) {
    const ex = getExampleNumber(region, mobileExamples);
    if (!ex) continue;
    const r = normalizePhone(ex.number);
    const pn = parsePhoneNumberFromString(ex.number);
    assert.equal(r.ok, pn!.isValid(), ex.number);
    if (r.ok) {
      valid++;
      assert.equal(r.type, pn!.getType());
    }
    checked++;
  }
  assert.ok(valid > 300 && checked > 8000, `${valid} valid of ${checked}`);
});
