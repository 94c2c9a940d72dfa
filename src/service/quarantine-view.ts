/**
 * The outside form of SMS-pumping quarantines, shared by the admin API and the CLI (`otp-shield quarantines`).
 * A module of its own: service/pumping.ts installs the admin routes, which import this at load time.
 */
import { callingCodeOf, prefixOf } from '../signals/phone.ts';
import type { Quarantine } from './state.ts';

/** A quarantine scope as the admin API and the CLI take it: `prefix:+62812` or `country:ID`. */
export const QUARANTINE_SCOPE_PATTERN = '^(prefix:\\+[1-9][0-9]{0,14}|country:[A-Z]{2})$';

/**
 * Why a prefix cannot be quarantined, or null: sends are matched to the quarantine of their own prefix, the
 * calling code and `prefixDigits` more digits, so a prefix of another length would be listed and never applied.
 */
export function prefixScopeProblem(prefix: string, prefixDigits: number): string | null {
  const cc = callingCodeOf(prefix);
  if (cc !== null && prefix.length === 1 + cc.length + prefixDigits) return null;
  return `a quarantined prefix is a calling code and ${prefixDigits} more digits (limits.prefixDigits), e.g. ${prefixOf('+6281234567890', prefixDigits)}`;
}

/**
 * A quarantine as `GET /v1/admin/quarantines` and `otp-shield quarantines --json` show it: times in ISO 8601.
 * `inEffect` is false for a prefix of the wrong length (stored before such quarantines were refused, or before
 * `limits.prefixDigits` changed): it applies to no send, and should be lifted.
 */
export function quarantineJson(q: Quarantine, now: number, prefixDigits: number): { scope: string; mode: string; reason: string; since: string; until: string; remainingSeconds: number; inEffect: boolean } {
  const iso = (ms: number) => new Date(ms).toISOString();
  return { scope: q.scope, mode: q.mode, reason: q.reason, since: iso(q.since), until: iso(q.until), remainingSeconds: Math.ceil((q.until - now) / 1000), inEffect: inEffect(q.scope, prefixDigits) };
}

/** Whether a quarantine of `scope` applies to any send: a country's always, a prefix's at the sends' own length. */
export function inEffect(scope: string, prefixDigits: number): boolean {
  return !scope.startsWith('prefix:') || prefixScopeProblem(scope.slice('prefix:'.length), prefixDigits) === null;
}
