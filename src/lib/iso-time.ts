/**
 * One rule for the times people type or send: an ISO 8601 / RFC 3339 date-time **with its zone** (`Z` or
 * `±hh:mm`). `Date.parse` alone reads "hello 1" as a date in 2001, and a time without a zone would shift with
 * the machine's zone. Used by the admin API's filters, the replay trace and `otp-shield events export`.
 */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** Epoch ms of an ISO date-time with a zone; NaN for anything else (and for what no Date holds, a leap second). */
export function parseIsoWithZone(s: string): number {
  return ISO_WITH_ZONE.test(s) ? Date.parse(s) : NaN;
}
