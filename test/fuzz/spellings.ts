/**
 * fast-check arbitraries for phone numbers as people (and abusers) write them: the same subscriber with a
 * `+` or `00`, in national format with a region, with separators and invisible characters anywhere between
 * digits, and with the digits in any of a dozen scripts.
 */
import fc from 'fast-check';

/** Valid numbers of several countries and line types, with their national form and region. */
export const BASES = [
  { e164: '+6281234567890', national: '081234567890', region: 'ID' },
  { e164: '+447400123456', national: '07400123456', region: 'GB' },
  { e164: '+16502530000', national: '6502530000', region: 'US' },
  { e164: '+919876543210', national: '09876543210', region: 'IN' },
  { e164: '+5511987654321', national: '11987654321', region: 'BR' },
  { e164: '+4915123456789', national: '015123456789', region: 'DE' },
  { e164: '+2348031234567', national: '08031234567', region: 'NG' },
  { e164: '+33612345678', national: '0612345678', region: 'FR' },
] as const;

/** Zero of each decimal digit script a keyboard or a copy-paste can produce. */
const ZEROS = [0x30, 0xff10, 0x660, 0x6f0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xe50, 0xed0, 0x1040, 0x1d7ce];
/** What may sit between digits without changing the number. */
const SEPARATORS = [' ', '-', '.', '/', '(', ')', '\u00a0', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u202e', '\u202c', '\u2066', '\u2069', '\u3000', '\u2013', '\u2014', '\u2212', '\t'];

export type Spelling = { text: string; defaultRegion?: string };

function script(digits: string, zero: number): string {
  return [...digits].map((d) => (d >= '0' && d <= '9' ? String.fromCodePoint(zero + Number(d)) : d)).join('');
}

/** `digits` with 0–2 separators after each character (chosen by `picks`). */
function separate(s: string, picks: number[][]): string {
  return [...s].map((ch, i) => ch + (picks[i] ?? []).map((p) => SEPARATORS[p % SEPARATORS.length]).join('')).join('');
}

/** One spelling of `base`: international (+ or 00) or national with its region; separators; a digit script. */
export function spellingOf(base: { e164: string; national: string; region: string }): fc.Arbitrary<Spelling> {
  return fc
    .record({
      form: fc.constantFrom('plus', 'idd00', 'national'),
      zero: fc.constantFrom(...ZEROS),
      picks: fc.array(fc.array(fc.nat(), { maxLength: 2 }), { maxLength: 20 }),
    })
    .map(({ form, zero, picks }) => {
      const digits = form === 'plus' ? base.e164 : form === 'idd00' ? `00${base.e164.slice(1)}` : base.national;
      const text = separate(script(digits, zero), picks);
      return form === 'national' ? { text, defaultRegion: base.region } : { text };
    });
}

/** A base number and one of its spellings. */
export const anySpelling = fc.constantFrom(...BASES).chain((base) => spellingOf(base).map((s) => ({ base, spelling: s })));
