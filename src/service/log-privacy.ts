/**
 * Phone numbers and email addresses are personal data: by default every E.164-looking string in a log line is
 * masked (`+62812*****890`), and every address (`j***@gmail.com`), wherever it appears — a field, a nested object or the message — so a careless
 * `log.info({ verification })` cannot leak a full number. Codes and secrets are redacted separately.
 */
import { maskPhone } from '../signals/phone.ts';
import { EMAIL_IN_TEXT_RE, maskEmail } from '../signals/email.ts';

/**
 * A number with its `+`, or with the `+` URL-encoded (`%2B`): request lines log the URL as received, and a
 * browser or client encodes `?number=+62…` so. Seven digits and up (the shortest numbers in use, +683 4002).
 */
const E164 = /(\+|%2[Bb])([1-9]\d{6,14})/g;
/** API keys that end up in a string (an error message quoting a header, say) keep only their id. */
const API_KEY = /(osk_[A-Za-z0-9]{12}_)[A-Za-z0-9_-]{20,}/g;

export function maskNumbersInText(s: string): string {
  // The values of a URL's personal query parameters first: a request line logs the URL as received, percent-
  // encoded as a browser sends it (`number=alice%40posteo.de`, `number=%2B49%20151…`), which no pattern for a
  // number or an address matches (a privacy review found dashboard searches logged in clear).
  const query = s.includes('=') ? s.replace(PERSONAL_QUERY, '$1[redacted]') : s;
  const numbers = query.replace(E164, (_m, plus: string, digits: string) => plus + maskPhone(`+${digits}`).slice(1));
  // The email channel's destinations are personal data too.
  return redactApiKeys(numbers.includes('@') ? numbers.replace(EMAIL_IN_TEXT_RE, maskEmail) : numbers);
}

/** `number=`, `ip=` and `device=` in a query string (the admin events filters), up to the next `&`, quote or space. */
const PERSONAL_QUERY = /([?&](?:number|ip|device)=)[^&"\s]*/g;

/** Only the API keys (a key in a query string, say): applied to every log line, masking or not. */
export function redactApiKeys(s: string): string {
  return s.replace(API_KEY, '$1[redacted]');
}

export function maskNumbersDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskNumbersInText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return value;
  if (Array.isArray(value)) return value.map((v) => maskNumbersDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskNumbersDeep(v, depth + 1);
  return out;
}
