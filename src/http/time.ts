/** Times in admin queries and bodies: an ISO date-time with a zone (src/lib/iso-time.ts), or whole epoch ms. */
import { ApiError } from '../service/errors.ts';
import { parseIsoWithZone } from '../lib/iso-time.ts';

/** The largest time a JavaScript Date can hold (±100,000,000 days from 1970): beyond it, formatting throws. */
const MAX_DATE_MS = 8.64e15;

export function parseTime(raw: string, what: string): number {
  const t = /^\d{1,16}$/.test(raw) ? Number(raw) : parseIsoWithZone(raw);
  if (!Number.isFinite(t) || t > MAX_DATE_MS) throw new ApiError('invalid_request', { message: `${what} must be an ISO 8601 date-time or epoch milliseconds` });
  return t;
}
