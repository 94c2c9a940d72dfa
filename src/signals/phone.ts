// Phone number intelligence: turn whatever a person typed into ONE canonical
// E.164 key, or a typed reason why not.
//
// Everything keyed on the number (rate limits, lockouts, allow/deny lists,
// "already verified") is only as strong as this canonicalisation: if
// `+62 812…`, `０８１２…` and `٠٨١٢…` were different keys, an attacker would
// get a fresh budget per spelling. So we fold every digit script to ASCII,
// drop invisible characters, and then let libphonenumber (full metadata)
// decide validity and region.
//
// Deliberate rejections:
// - Extensions (`;ext=`, `ext.`, `x123`, `#123`, `,123`) → `has_extension`.
//   An SMS cannot reach an extension, and accepting them would let one
//   subscriber appear as many keys (same E.164, different extension).
// - Letters (vanity numbers like 1-800-FLOWERS) → `invalid_characters`.
//   Nobody types an OTP destination that way; mapping letters to digits
//   would only widen the attack surface.
// - National numbers without a defaultRegion → `needs_region`. Guessing a
//   country from bare digits can turn one country's number into another's.

import {
  getCountries,
  getCountryCallingCode,
  isSupportedCountry,
  parsePhoneNumberFromString,
  type CountryCode,
  type PhoneNumber,
} from 'libphonenumber-js/max';

export type LineType =
  | 'MOBILE'
  | 'FIXED_LINE'
  | 'FIXED_LINE_OR_MOBILE'
  | 'VOIP'
  | 'PREMIUM_RATE'
  | 'TOLL_FREE'
  | 'SHARED_COST'
  | 'UAN'
  | 'PAGER'
  | 'PERSONAL_NUMBER'
  | 'VOICEMAIL'
  | 'UNKNOWN';

export interface PhoneOk {
  ok: true;
  /** Canonical key, e.g. '+447400123456'. */
  e164: string;
  /**
   * ISO 3166-1 alpha-2 region of the number itself (e.g. 'IM' for an Isle
   * of Man number even though it shares +44 with GB); '001' for
   * non-geographic codes such as +800 or +882 (libphonenumber's convention).
   */
  region: string;
  /** Country calling code without '+', e.g. '44'. */
  callingCode: string;
  /** National significant number (digits, no trunk prefix), e.g. '7400123456'. */
  national: string;
  type: LineType;
}

export type PhoneErrorReason =
  | 'not_a_string'
  | 'too_long'
  | 'invalid_characters'
  | 'has_extension'
  | 'needs_region'
  | 'invalid_region'
  | 'invalid_number';

export interface PhoneError {
  ok: false;
  reason: PhoneErrorReason;
  message: string;
}

export type PhoneResult = PhoneOk | PhoneError;

/** Raw input cap, checked before any normalisation or regex (DoS guard). */
export const MAX_PHONE_INPUT = 64;
// E.164 allows 15 digits; leave room for an IDD prefix like 011/0011 and a
// trunk '0' written as "(0)". Anything longer is not a phone number.
const MAX_DIGITS = 20;

const ND_RE = /\p{Nd}/u;
const ND_GLOBAL_RE = /\p{Nd}/gu;
// Format controls (ZWSP, ZWJ/ZWNJ, LRM/RLM, bidi embeddings/overrides/
// isolates, word joiner, invisible operators, BOM, soft hyphen, …) and all
// white space including NBSP and ideographic space.
const INVISIBLE_RE = /[\p{Cf}\p{Z}\s]/gu;
// Visual separators people type between digit groups. NFKC has already
// turned full-width forms into ASCII. \p{Pd} covers hyphen, en/em dash etc.
const SEPARATORS_RE = /[\p{Pd}\u2212.()[\]/~]/gu;
// Digit, optional separators, an extension marker, digit. Runs after spaces
// are removed. Requiring a digit before keeps USSD codes like *#06# out.
const EXTENSION_RE = /\d[\p{Pd}\u2212.()[\]/~]*(?:ext(?:ension|n)?|x|#|,|;)[.:=]?\d/iu;
const CLEAN_RE = /^\+?\d+$/;

const digitCache = new Map<string, string>();

/**
 * ASCII value of a Unicode decimal digit. Unicode guarantees that Nd
 * characters come in contiguous runs of ten, 0..9 in order (a longer run is
 * several whole sets back to back), so the value is the distance from the
 * start of the run, mod 10. Works for every script, present and future.
 */
function digitValue(ch: string): string {
  const hit = digitCache.get(ch);
  if (hit !== undefined) return hit;
  const cp = ch.codePointAt(0) ?? 0;
  let k = 0;
  while (k < 100 && ND_RE.test(String.fromCodePoint(cp - k - 1))) k++;
  const v = String(k % 10);
  digitCache.set(ch, v);
  return v;
}

/** NFKC + fold all decimal digits to ASCII + drop invisible chars and spaces. */
export function foldPhoneText(s: string): string {
  return s.normalize('NFKC').replace(ND_GLOBAL_RE, (d) => (d >= '0' && d <= '9' ? d : digitValue(d))).replace(INVISIBLE_RE, '');
}

function fail(reason: PhoneErrorReason, message: string): PhoneError {
  return { ok: false, reason, message };
}

function toResult(pn: PhoneNumber | undefined): PhoneResult {
  if (!pn) return fail('invalid_number', 'not a phone number');
  if (pn.ext) return fail('has_extension', 'extensions cannot receive SMS');
  // With the /max metadata a number is valid exactly when it matches one of its region's number types
  // (libphonenumber-js `isValidNumber` is `getNumberType(…) !== undefined` when the metadata has types), so one
  // type lookup answers both: `isValid()` then `getType()` ran the same pattern matching twice, a fifth of this
  // function's cost. test/signals/phone.test.ts checks the equivalence on random numbers of every region.
  const type = pn.getType();
  if (type === undefined) return fail('invalid_number', 'number is not valid for its country');
  const e164 = pn.number;
  if (e164.length > 16) return fail('invalid_number', 'more than 15 digits');
  return {
    ok: true,
    e164,
    region: pn.country ?? '001',
    callingCode: pn.countryCallingCode,
    national: pn.nationalNumber,
    type: type as LineType,
  };
}

function parse(text: string, region?: CountryCode): PhoneNumber | undefined {
  // extract:false → the whole string must be the number (no picking a
  // number out of surrounding text).
  try {
    return parsePhoneNumberFromString(text, region ? { defaultCountry: region, extract: false } : { extract: false });
  } catch {
    return undefined;
  }
}

/**
 * Normalise user input to E.164 with full metadata validation.
 * Accepts `+`, `00` (and the region's own IDD such as `011` for US when
 * defaultRegion is given), spaces/dashes/dots/brackets, `+44 (0)7…`,
 * `tel:` URIs, and any Unicode decimal digits.
 */
export function normalizePhone(input: unknown, opts: { defaultRegion?: string } = {}): PhoneResult {
  if (typeof input !== 'string') return fail('not_a_string', 'phone number must be a string');
  if (input.length > MAX_PHONE_INPUT) return fail('too_long', `phone number input longer than ${MAX_PHONE_INPUT} characters`);

  let region: CountryCode | undefined;
  if (opts.defaultRegion !== undefined && opts.defaultRegion !== '') {
    const r = opts.defaultRegion.toUpperCase();
    if (!isSupportedCountry(r)) return fail('invalid_region', `unknown region ${opts.defaultRegion}`);
    region = r;
  }

  // Already plain ASCII digits with an optional leading + (what API clients send): folding would return it
  // unchanged, and its NFKC pass and Unicode-class regexes were most of this function's own cost.
  let s = CLEAN_RE.test(input) ? input : foldPhoneText(input);
  // NFKC can expand (e.g. '㉑' → '21'); re-check so later steps stay bounded.
  if (s.length > MAX_PHONE_INPUT * 2) return fail('too_long', 'phone number input too long');

  if (/^tel:/i.test(s)) {
    // RFC 3966: tel:+1-201-555-0123;ext=1234;isub=…;phone-context=…
    const [main = '', ...params] = s.slice(4).split(';');
    for (const p of params) {
      const name = p.split('=')[0]?.toLowerCase() ?? '';
      if (name === 'ext' || name === 'isub') return fail('has_extension', 'extensions cannot receive SMS');
      return fail('invalid_characters', `unsupported tel: URI parameter "${name}"`);
    }
    s = main;
  }

  if (EXTENSION_RE.test(s)) return fail('has_extension', 'extensions cannot receive SMS');
  s = s.replace(SEPARATORS_RE, '');
  if (s === '' || s === '+') return fail('invalid_number', 'empty phone number');
  if (!CLEAN_RE.test(s)) return fail('invalid_characters', 'phone number may only contain digits, a leading + and separators');
  const digits = s.length - (s.startsWith('+') ? 1 : 0);
  if (digits > MAX_DIGITS) return fail('invalid_number', 'too many digits');

  if (s.startsWith('+')) return toResult(parse(s));
  if (region) {
    const r = toResult(parse(s, region));
    // "00" is the IDD prefix almost everywhere; accept it even when the
    // region's own IDD differs (e.g. 0044… typed in a US form). Only as a
    // fallback, so a valid national reading always wins.
    if (!r.ok && s.startsWith('00')) {
      const alt = toResult(parse(`+${s.slice(2)}`));
      if (alt.ok) return alt;
    }
    return r;
  }
  if (s.startsWith('00')) return toResult(parse(`+${s.slice(2)}`));
  return fail('needs_region', 'national number needs a leading + or a default region');
}

// --- calling-code boundary --------------------------------------------------------

// Non-geographic calling codes are not reachable through getCountries();
// this list is checked against the library metadata in the tests.
export const NON_GEOGRAPHIC_CODES: readonly string[] = ['800', '808', '870', '878', '881', '882', '883', '888', '979'];

let callingCodes: Set<string> | null = null;

function codes(): Set<string> {
  if (!callingCodes) {
    callingCodes = new Set(NON_GEOGRAPHIC_CODES);
    for (const c of getCountries()) callingCodes.add(getCountryCallingCode(c));
  }
  return callingCodes;
}

/**
 * Country calling code of an E.164 string ('+' optional), or null. Calling
 * codes are prefix-free, so the first 1–3 digit match is the only match.
 */
export function callingCodeOf(e164: string): string | null {
  const d = e164.startsWith('+') ? e164.slice(1) : e164;
  const set = codes();
  for (let len = 1; len <= 3 && len <= d.length; len++) {
    const c = d.slice(0, len);
    if (set.has(c)) return c;
  }
  return null;
}

/**
 * Calling code + the first `nationalDigits` national digits:
 * prefixOf('+6281234567890', 3) === '+62812'. The range an SMS-pumping
 * attacker walks through. If the calling code is unknown, the first
 * `3 + nationalDigits` digits are used so the key is still stable.
 */
export function prefixOf(e164: string, nationalDigits: number): string {
  const d = e164.startsWith('+') ? e164.slice(1) : e164;
  const n = Math.max(0, Math.floor(nationalDigits));
  const cc = callingCodeOf(d);
  return `+${d.slice(0, (cc ? cc.length : 3) + n)}`;
}

/** prefixOf() for an already-normalised result (no calling-code search). */
export function prefixOfParsed(res: PhoneOk, nationalDigits: number): string {
  return `+${res.callingCode}${res.national.slice(0, Math.max(0, Math.floor(nationalDigits)))}`;
}

/**
 * Mask for logs and UIs: calling code + first 3 national digits + stars +
 * last 3, e.g. '+62812*****890'. Short national numbers keep fewer digits so
 * at least three are always hidden.
 */
export function maskPhone(e164: string): string {
  if (!/^\+?\d{4,17}$/.test(e164)) return '***';
  const d = e164.startsWith('+') ? e164.slice(1) : e164;
  const cc = callingCodeOf(d) ?? d.slice(0, 1);
  const nat = d.slice(cc.length);
  const tail = Math.min(3, Math.floor(nat.length / 3));
  const head = Math.min(3, Math.max(0, nat.length - tail - 3));
  return `+${cc}${nat.slice(0, head)}${'*'.repeat(nat.length - head - tail)}${nat.slice(nat.length - tail)}`;
}
