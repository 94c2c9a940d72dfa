/**
 * Helpers shared by the store implementations: the rate-limit step over several specs (so memory,
 * SQLite and PostgreSQL apply literally the same code, and the Lua in redis-scripts.ts mirrors it),
 * event filtering for the stores that filter in JS, and row <-> object conversion.
 */
import type { AuditEvent, EventQuery, LimitOutcome, LimitSpec, StoredCode, Verification } from './interface.ts';
import { add, countOf, evaluate, expiresAt, prune, type WindowState } from '../engine/window.ts';

/** How long an expired verification stays readable (GET /verifications/:id) before stores may drop it. */
export const DEFAULT_VERIFICATION_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Reject specs the stores cannot apply identically: the Lua script and the state text format work in
 * whole numbers. A bad spec is a programming/config error, so it throws instead of failing open or closed.
 */
export function validateSpecs(specs: readonly LimitSpec[]): void {
  for (const s of specs) {
    const cost = s.cost ?? 1;
    if (!Number.isSafeInteger(s.limit) || s.limit < 0 || !Number.isSafeInteger(s.windowMs) || s.windowMs < 1
      || !Number.isSafeInteger(cost) || cost < 0 || typeof s.key !== 'string') {
      throw new TypeError(`invalid limit spec ${JSON.stringify(s)}: limit, windowMs (>= 1) and cost must be non-negative integers`);
    }
  }
}

export interface LimitWrite {
  key: string;
  state: WindowState;
  /** Epoch ms when the state can be forgotten entirely (window.ts `expiresAt`). */
  expiresAt: number;
}

/**
 * The all-or-nothing step of `consumeLimits`, given the stored state of every key.
 * Phase 1 evaluates every spec against the state as it was before this request; phase 2 (only when all
 * allow) adds each spec's cost in spec order (cost 0 writes nothing). A key named by two specs gets both costs; the same order
 * is used by the Lua script so all stores agree even on that odd input.
 * Returns the outcome and the states to write back (none when denied: a denial counts nothing).
 */
export function applyLimits(
  specs: readonly LimitSpec[],
  now: number,
  stored: ReadonlyMap<string, WindowState>,
): { outcome: LimitOutcome; writes: LimitWrite[] } {
  validateSpecs(specs);
  const counts: number[] = [];
  const denied: LimitOutcome['denied'] = [];
  for (const spec of specs) {
    const cost = spec.cost ?? 1;
    const { result } = evaluate(stored.get(spec.key) ?? [], { limit: spec.limit, windowMs: spec.windowMs, cost }, now);
    counts.push(result.count);
    if (!result.allowed) denied.push({ reason: spec.reason, key: spec.key, retryAfterMs: result.retryAfterMs });
  }
  if (denied.length > 0) return { outcome: { allowed: false, denied, counts }, writes: [] };

  const current = new Map<string, LimitWrite>();
  specs.forEach((spec, i) => {
    const cost = spec.cost ?? 1;
    // cost 0 is a read (callers observe counters in the same call). window.ts `add` would append a
    // [slot, 0] entry, which changes no count, decision or retryAfter (zero slots are never the ones that
    // free room) but would create and keep alive a stored key for every key ever read: skip it.
    if (cost === 0) return;
    const before = current.get(spec.key)?.state ?? stored.get(spec.key) ?? [];
    // prune() may return the same array: copy so the caller's stored state is never mutated.
    const state = add(prune(before, spec.windowMs, now).map(([s, c]) => [s, c] as [number, number]), spec.windowMs, cost, now);
    current.set(spec.key, { key: spec.key, state, expiresAt: expiresAt(state, spec.windowMs) });
    counts[i] = counts[i]! + cost;
  });
  return { outcome: { allowed: true, denied: [], counts }, writes: [...current.values()] };
}

/** Count in the window for each spec, without consuming. */
export function peekCounts(specs: readonly LimitSpec[], now: number, stored: ReadonlyMap<string, WindowState>): number[] {
  validateSpecs(specs);
  return specs.map((s) => countOf(prune(stored.get(s.key) ?? [], s.windowMs, now)));
}

/** Compact text form of a window state (`slot:count,slot:count`), the one the Lua script reads and writes. */
export function encodeWindow(state: WindowState): string {
  return state.map(([s, c]) => `${s}:${c}`).join(',');
}

export function decodeWindow(text: string | null | undefined): WindowState {
  if (!text) return [];
  const out: WindowState = [];
  for (const part of text.split(',')) {
    const i = part.indexOf(':');
    if (i < 0) continue;
    out.push([Number(part.slice(0, i)), Number(part.slice(i + 1))]);
  }
  return out;
}

/** Whether an event satisfies every filter of a query except the seq cursors, order and limit. */
export function eventMatches(e: AuditEvent, q: EventQuery): boolean {
  if (q.from !== undefined && e.at < q.from) return false;
  if (q.to !== undefined && e.at >= q.to) return false;
  if (q.type !== undefined && e.type !== q.type) return false;
  if (q.number !== undefined && (e.to ?? null) !== q.number) return false;
  if (q.prefix !== undefined && (e.prefix ?? null) !== q.prefix) return false;
  if (q.ip !== undefined && (e.ip ?? null) !== q.ip) return false;
  if (q.deviceId !== undefined && (e.deviceId ?? null) !== q.deviceId) return false;
  if (q.decision !== undefined && (e.decision ?? null) !== q.decision) return false;
  if (q.reason !== undefined && !(e.reasons ?? []).includes(q.reason)) return false;
  if (q.before !== undefined && (e.seq === undefined || e.seq >= q.before)) return false;
  if (q.after !== undefined && (e.seq === undefined || e.seq <= q.after)) return false;
  return true;
}

/** Deep copy through JSON: stores never hand out objects that share state with what they keep. */
export function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

// ---- SQL rows (SQLite and PostgreSQL share column names) ----

export interface VerificationRow {
  id: string;
  to_number: string;
  channel: string;
  locale: string | null;
  status: string;
  created_at: number | string;
  updated_at: number | string;
  expires_at: number | string;
  attempts: number | string;
  max_attempts: number | string;
  sends: number | string;
  last_sent_at: number | string;
  resend_after: number | string;
  codes: string | StoredCode[];
  client: string | Record<string, unknown>;
  tarpit: number | boolean;
  sender: string | null;
  failure_reason: string | null;
}

/** PostgreSQL returns BIGINT as text and JSONB already parsed; SQLite returns numbers and JSON text. */
function num(v: number | string): number {
  return typeof v === 'number' ? v : Number(v);
}
function json<T>(v: string | T): T {
  return typeof v === 'string' ? (JSON.parse(v) as T) : v;
}

export function verificationFromRow(r: VerificationRow): Verification {
  return {
    id: r.id,
    to: r.to_number,
    channel: r.channel as Verification['channel'],
    locale: r.locale,
    status: r.status as Verification['status'],
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    expiresAt: num(r.expires_at),
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    sends: num(r.sends),
    lastSentAt: num(r.last_sent_at),
    resendAfter: num(r.resend_after),
    codes: json<StoredCode[]>(r.codes),
    client: json<Record<string, unknown>>(r.client),
    tarpit: r.tarpit === true || r.tarpit === 1,
    sender: r.sender,
    failureReason: r.failure_reason,
  };
}

/** Column values in the order of VERIFICATION_COLUMNS. */
export const VERIFICATION_COLUMNS = [
  'id', 'to_number', 'channel', 'locale', 'status', 'created_at', 'updated_at', 'expires_at', 'attempts',
  'max_attempts', 'sends', 'last_sent_at', 'resend_after', 'codes', 'client', 'tarpit', 'sender', 'failure_reason',
] as const;

export function verificationValues(v: Verification, tarpit: (b: boolean) => unknown): unknown[] {
  return [
    v.id, v.to, v.channel, v.locale, v.status, v.createdAt, v.updatedAt, v.expiresAt, v.attempts, v.maxAttempts,
    v.sends, v.lastSentAt, v.resendAfter, JSON.stringify(v.codes), JSON.stringify(v.client ?? {}), tarpit(v.tarpit),
    v.sender, v.failureReason,
  ];
}

/** Keep only the newest `keep` codes (newest last), at least one: the code just sent must stay valid. */
export function keepNewest(codes: StoredCode[], keep: number): StoredCode[] {
  const n = Math.max(1, Math.floor(keep));
  return codes.length > n ? codes.slice(codes.length - n) : codes;
}

/** Event without its seq, as stored in the JSON data column / stream entry. */
export function eventBody(e: AuditEvent): Omit<AuditEvent, 'seq'> {
  const { seq: _seq, ...rest } = e;
  return rest;
}
