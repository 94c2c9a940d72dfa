/**
 * Times in admin queries and bodies: RFC 3339 with a zone, or whole epoch milliseconds. Nothing looser:
 * `Date.parse` alone reads "hello 1" as a date in 2001, and a time without a zone shifts with the server's.
 */
import { ApiError } from '../service/errors.ts';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})$/;

export function parseTime(raw: string, what: string): number {
  const t = /^\d{1,16}$/.test(raw) ? Number(raw) : ISO_TIME.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(t)) throw new ApiError('invalid_request', { message: `${what} must be an ISO 8601 date-time or epoch milliseconds` });
  return t;
}
