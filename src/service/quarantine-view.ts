/**
 * The outside form of SMS-pumping quarantines, shared by the admin API and the CLI (`otp-shield quarantines`).
 * A module of its own: service/pumping.ts installs the admin routes, which import this at load time.
 */
import type { Quarantine } from './state.ts';

/** A quarantine scope as the admin API and the CLI take it: `prefix:+62812` or `country:ID`. */
export const QUARANTINE_SCOPE_PATTERN = '^(prefix:\\+[1-9][0-9]{0,14}|country:[A-Z]{2})$';

/** A quarantine as `GET /v1/admin/quarantines` and `otp-shield quarantines --json` show it: times in ISO 8601. */
export function quarantineJson(q: Quarantine, now: number): { scope: string; mode: string; reason: string; since: string; until: string; remainingSeconds: number } {
  const iso = (ms: number) => new Date(ms).toISOString();
  return { scope: q.scope, mode: q.mode, reason: q.reason, since: iso(q.since), until: iso(q.until), remainingSeconds: Math.ceil((q.until - now) / 1000) };
}
