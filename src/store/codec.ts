/**
 * Helpers shared by the store implementations: the rate-limit step over several specs (so memory,
 * SQLite and PostgreSQL apply literally the same code, and the Lua in redis-scripts.ts mirrors it),
 * event filtering for the stores that filter in JS, and row <-> object conversion.
 */
import type { AuditEvent, EventQuery, LimitOutcome, LimitSpec, StoredCode, TallyOutcome, TallySpec, Verification } from './interface.ts';
import { retryAfterMs, slotMsFor, type WindowState } from '../engine/window.ts';

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
  /** The window that set `expiresAt` (the last spec of this key). */
  windowMs: number;
  /** Index of the first spec of this key: the store's lookup for that spec returned the stored state. */
  spec: number;
}

/** Index of the first slot that still overlaps the window ending at `now`: window.ts `prune`, without the copy. */
function firstLive(state: WindowState, windowMs: number, now: number): number {
  const slotMs = slotMsFor(windowMs);
  const horizon = now - windowMs;
  let i = 0;
  while (i < state.length && state[i]![0] + slotMs <= horizon) i++;
  return i;
}

const EMPTY: WindowState = [];

/**
 * window.ts `prune` + `add`, in place: drop the `live` slots that left the window (`firstLive`), then add
 * `cost` to the slot starting at `slot`. Only for states the calling store owns (never `EMPTY`).
 */
function pruneAndAdd(st: WindowState, live: number, slot: number, cost: number): void {
  if (live === st.length) st.length = 0;
  else if (live > 0) st.splice(0, live);
  const last = st[st.length - 1];
  if (last !== undefined && last[0] === slot) last[1] += cost;
  else st.push([slot, cost]);
}

/** Where `applyLimits` reads stored states: a Map, or a store's own lookup (no Map built per call). */
export interface StateLookup {
  get(key: string): WindowState | undefined;
}

/**
 * The all-or-nothing step of `consumeLimits`, given the stored state of every key.
 * Phase 1 evaluates every spec against the state as it was before this request; phase 2 (only when all
 * allow) adds each spec's cost in spec order (cost 0 writes nothing). A key named by two specs gets both costs; the same order
 * is used by the Lua script so all stores agree even on that odd input.
 * Returns the outcome and the states to write back (none when denied: a denial counts nothing).
 *
 * This is window.ts `evaluate` + `prune` + `add` + `expiresAt`, inlined so that it allocates little: the
 * limiter is allocation-bound under a key-rotating load (a CPU profile of bench/limiter.ts showed ~28 % in
 * the garbage collector with the composed version). Counting walks the stored array in place (a pruned copy
 * only when a spec denies and needs retryAfter). **When every spec allows, the stored states are updated in
 * place** and returned as the writes: they belong to the store that passed them (the memory store's map,
 * SQLite's row cache, which is cleared when a transaction rolls back) and are never handed to callers. A
 * denial touches nothing. Copying them instead was the largest allocation of a send (a hot key — global,
 * country, prefix — holds 60 slots). test/store/apply-limits.test.ts checks the results equal the composed
 * window.ts functions on random inputs, and that a denial leaves the inputs untouched.
 */
export function applyLimits(
  specs: readonly LimitSpec[],
  now: number,
  stored: StateLookup,
): { outcome: LimitOutcome; writes: LimitWrite[] } {
  validateSpecs(specs);
  const counts: number[] = [];
  // Each key is looked up once per spec, in phase 1 (a lookup may be a hash of a long key, or a row read).
  const states: WindowState[] = [];
  let denied: LimitOutcome['denied'] | null = null;
  for (const spec of specs) {
    const cost = spec.cost ?? 1;
    const st = stored.get(spec.key) ?? EMPTY;
    states.push(st);
    const i = firstLive(st, spec.windowMs, now);
    let count = 0;
    for (let j = i; j < st.length; j++) count += st[j]![1];
    counts.push(count);
    if (count + cost > spec.limit) {
      (denied ??= []).push({ reason: spec.reason, key: spec.key, retryAfterMs: retryAfterMs(i === 0 ? st : st.slice(i), spec.limit, spec.windowMs, cost, now) });
    }
  }
  if (denied) return { outcome: { allowed: false, denied, counts }, writes: [] };

  const writes: LimitWrite[] = [];
  for (let k = 0; k < specs.length; k++) {
    const spec = specs[k]!;
    const cost = spec.cost ?? 1;
    // cost 0 is a read (callers observe counters in the same call). window.ts `add` would append a
    // [slot, 0] entry, which changes no count, decision or retryAfter (zero slots are never the ones that
    // free room) but would create and keep alive a stored key for every key ever read: skip it.
    if (cost === 0) continue;
    const slotMs = slotMsFor(spec.windowMs);
    const slot = Math.floor(now / slotMs) * slotMs;
    // A key named by an earlier spec of this call continues from that spec's result (a short linear
    // search: a request has a dozen specs, and a Map per call cost more than it saved).
    let w: LimitWrite | undefined;
    for (const x of writes) if (x.key === spec.key) w = x;
    const st = w?.state ?? states[k]!;
    let state: WindowState;
    if (st === EMPTY || st.length === 0) {
      // A new state of exactly one slot (an array grown by push from empty carries 17: 248 instead of 120
      // bytes, times every key a key-rotating attacker creates).
      state = [[slot, cost]];
    } else {
      // In place: the state belongs to the store that passed it.
      pruneAndAdd(st, firstLive(st, spec.windowMs, now), slot, cost);
      state = st;
    }
    // window.ts `expiresAt`: the newest slot, which is `slot`, plus the window.
    const expiresAt = slot + slotMs + spec.windowMs;
    if (w) {
      w.state = state;
      w.expiresAt = expiresAt;
      w.windowMs = spec.windowMs;
    } else writes.push({ key: spec.key, state, expiresAt, windowMs: spec.windowMs, spec: k });
    counts[k] = counts[k]! + cost;
  }
  return { outcome: { allowed: true, denied: [], counts }, writes };
}

/** The stored state of a multi-window counter (`Store.tally`): one window state per entry of `windowsMs`. */
export type TallyState = WindowState[];

export interface TallyWrite {
  key: string;
  state: TallyState;
  /** Epoch ms when every window of the state has emptied. */
  expiresAt: number;
  /** The longest window (what SQLite rounds the stored expiry by). */
  windowMs: number;
  windowsMs: readonly number[];
  /** Index of its tally: the store's lookup for that tally returned the stored state (keys never repeat). */
  spec: number;
}

export function validateTallies(tallies: readonly TallySpec[]): void {
  // A key named twice would be counted differently by the native stores (in order) and by tallyAsLimits
  // (consumeLimits reports each spec against the state before the call); nothing needs it, so it is refused.
  if (new Set(tallies.map((t) => t.key)).size !== tallies.length) throw new TypeError('a tally key may appear only once per call');
  for (const t of tallies) {
    // Window lengths must be distinct too: tallyAsLimits names one key per length, so a repeated length
    // would be counted twice there and once in the native stores.
    if (typeof t.key !== 'string' || !Number.isSafeInteger(t.cost) || t.cost < 0 || t.windowsMs.length === 0
      || t.windowsMs.some((w) => !Number.isSafeInteger(w) || w < 1) || new Set(t.windowsMs).size !== t.windowsMs.length) {
      throw new TypeError(`invalid tally spec ${JSON.stringify(t)}: windowsMs must be distinct positive integers and cost a non-negative integer`);
    }
  }
}

/**
 * The counting step of `Store.tally` once the gate has been applied: every window of every tally counts
 * `cost` at `now` (when `count`), by the rule of engine/window.ts (`prune` + `add` + `expiresAt`).
 *
 * Unlike `applyLimits`, it updates the stored states **in place** (and returns them as the writes): a tally
 * state belongs to the store that passed it (memory map, SQLite row cache) and is never shared with a caller
 * or with another state, and copying 13 windows of up to 60 slots per message was the replay's largest
 * single cost after the tally itself. A store whose transaction fails must forget what it passed (SQLite's
 * counter cache is cleared on rollback). Keys are distinct (validateTallies). A stored state whose window
 * count differs from the spec's is read as empty. The store contract suite checks every window against
 * window.ts.
 */
export function applyTallies(
  tallies: readonly TallySpec[],
  now: number,
  stored: { get(key: string): TallyState | undefined },
  count: boolean,
): { counts: number[][]; writes: TallyWrite[] } {
  const counts: number[][] = [];
  const writes: TallyWrite[] = [];
  for (let k = 0; k < tallies.length; k++) {
    const t = tallies[k]!;
    const n = t.windowsMs.length;
    let state = stored.get(t.key);
    if (state !== undefined && state.length !== n) state = undefined;
    const add = count && t.cost > 0;
    const c = new Array<number>(n);
    if (add && state === undefined) state = Array.from({ length: n }, () => []);
    let expiresAt = 0;
    let longest = 0;
    for (let w = 0; w < n; w++) {
      const windowMs = t.windowsMs[w]!;
      const st = state?.[w] ?? EMPTY;
      const i = firstLive(st, windowMs, now);
      let sum = 0;
      for (let j = i; j < st.length; j++) sum += st[j]![1];
      if (!add) {
        c[w] = sum;
        continue;
      }
      c[w] = sum + t.cost;
      const slotMs = slotMsFor(windowMs);
      const slot = Math.floor(now / slotMs) * slotMs;
      pruneAndAdd(st, i, slot, t.cost);
      expiresAt = Math.max(expiresAt, slot + slotMs + windowMs);
      longest = Math.max(longest, windowMs);
    }
    counts.push(c);
    if (add) writes.push({ key: t.key, state: state!, expiresAt, windowMs: longest, windowsMs: t.windowsMs, spec: k });
  }
  return { counts, writes };
}

/**
 * `Store.tally` as one `consumeLimits` call with one key per window (`<key>:<seconds>s`, or `<key>:<ms>ms`
 * for windows that are not whole seconds): what the Redis and PostgreSQL stores do. Same semantics and still
 * one atomic step and one round trip; only more keys. The key names are those the SMS-pumping layer used
 * before tallies existed, so its windows carry over an upgrade on those stores.
 */
export function tallyAsLimits(gate: LimitSpec | null, tallies: readonly TallySpec[]): LimitSpec[] {
  validateTallies(tallies);
  const specs: LimitSpec[] = gate ? [gate] : [];
  for (const t of tallies) {
    for (const w of t.windowsMs) {
      specs.push({ reason: 'tally', key: `${t.key}:${w % 1000 === 0 ? `${w / 1000}s` : `${w}ms`}`, limit: TALLY_UNLIMITED, windowMs: w, cost: t.cost });
    }
  }
  return specs;
}

/** The `consumeLimits` outcome of `tallyAsLimits` specs, as a tally outcome. */
export function tallyFromLimits(gate: LimitSpec | null, tallies: readonly TallySpec[], outcome: LimitOutcome): TallyOutcome {
  let k = gate ? 1 : 0;
  const counts = tallies.map((t) => t.windowsMs.map(() => outcome.counts[k++] ?? 0));
  return { counted: outcome.allowed, counts };
}

/** A limit no tally reaches (engine/limits.ts UNLIMITED; not imported: the store does not depend on the engine's policy code). */
const TALLY_UNLIMITED = 1_000_000_000;

/** Count in the window for each spec, without consuming. */
export function peekCounts(specs: readonly LimitSpec[], now: number, stored: StateLookup): number[] {
  validateSpecs(specs);
  return specs.map((s) => {
    const st = stored.get(s.key) ?? EMPTY;
    let n = 0;
    for (let j = firstLive(st, s.windowMs, now); j < st.length; j++) n += st[j]![1];
    return n;
  });
}

/** A deep copy of JSON-like data (plain objects, arrays, primitives): what stores hand out instead of their own objects. */
export function clonePlain<T>(x: T): T {
  if (x === null || typeof x !== 'object') return x;
  if (Array.isArray(x)) return x.map(clonePlain) as T;
  const out: Record<string, unknown> = {};
  for (const k in x) out[k] = clonePlain((x as Record<string, unknown>)[k]);
  return out as T;
}

/**
 * A copy of a verification (the memory store never shares its objects with callers). Field by field rather
 * than `structuredClone`, which was 3 % of the replay's CPU: a verification is plain data.
 */
export function cloneVerification(v: Verification): Verification {
  return { ...v, codes: v.codes.map((c) => ({ ...c })), client: clonePlain(v.client) };
}

/**
 * The SQLite text of a counter row. A window state is `~<unit>:<first slot>:<count>,<gap>:<count>,…` with
 * the gaps between slot starts in units of the slot length (`unit`; a single slot is `~<slot>:<count>`), so a full 60-slot window is ~380
 * bytes instead of ~1,200 as JSON; a tally (`Store.tally`) is `#` and its windows joined by `|`. JSON rows
 * (`[[slot,count],…]`, written before) are still read. A busy SMS-pumping scope's 13 windows went from 8.9 KB
 * of JSON to 2.3 KB (less to stringify, fewer overflow pages to rewrite per message).
 */
export function encodeWindowRow(state: WindowState, windowMs: number): string {
  return '~' + encodeSlots(state, slotMsFor(windowMs));
}

/** The SQLite text of a tally row (see `encodeWindowRow`). */
export function encodeTallyRow(state: TallyState, windowsMs: readonly number[]): string {
  let out = '#';
  for (let w = 0; w < state.length; w++) out += (w === 0 ? '' : '|') + encodeSlots(state[w]!, slotMsFor(windowsMs[w]!));
  return out;
}

function encodeSlots(st: WindowState, unit: number): string {
  if (st.length === 0) return '';
  // One slot (most keys of a key-rotating attacker): no unit, as short as the JSON was.
  if (st.length === 1) return `${st[0]![0]}:${st[0]![1]}`;
  // Slot starts are multiples of the slot length; a state written under another length falls back to ms.
  for (const [slot] of st) if (slot % unit !== 0) unit = 1;
  let out = `${unit}:${st[0]![0]}:${st[0]![1]}`;
  for (let i = 1; i < st.length; i++) out += `,${(st[i]![0] - st[i - 1]![0]) / unit}:${st[i]![1]}`;
  return out;
}

function decodeSlots(text: string): WindowState {
  if (text === '') return [];
  const parts = text.split(',');
  const head = parts[0]!.split(':');
  if (head.length === 2) return [[Number(head[0]), Number(head[1])]];
  const unit = Number(head[0]);
  let slot = Number(head[1]);
  const out: WindowState = [[slot, Number(head[2])]];
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    const c = p.indexOf(':');
    slot += Number(p.slice(0, c)) * unit;
    out.push([slot, Number(p.slice(c + 1))]);
  }
  return out;
}

/** Inverse of `encodeWindowRow` and `encodeTallyRow` (and reads the JSON rows written before them). */
export function decodeCounterRow(text: string): WindowState | TallyState {
  if (text.startsWith('~')) return decodeSlots(text.slice(1));
  if (text.startsWith('#')) return text.slice(1).split('|').map(decodeSlots);
  return JSON.parse(text) as WindowState | TallyState;
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
  if (q.prefix !== undefined) {
    const to = e.to ?? '';
    // An email key may start with + and digits too: never a prefix's.
    const prefix = e.prefix ?? '';
    if (!(to.startsWith(q.prefix) && !to.includes('@')) && !(prefix.startsWith(q.prefix) && !prefix.includes('@'))) return false;
  }
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
  /** Schema version 3; set by the transition to approved only (not in VERIFICATION_COLUMNS: null at insert). */
  approved_by?: string | null;
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
    // Absent until approved, as in a verification that was never stored.
    ...(r.approved_by ? { approvedBy: r.approved_by } : {}),
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
/**
 * A verification's expiry once a code was withdrawn (Store.withdrawCode): that of the latest code left. The
 * resend had moved it to the withdrawn code's; left there, a check after the delivered codes expired was
 * answered "denied" (and cost an attempt) instead of "expired". With no code left it stays as it was.
 */
export function expiryAfterWithdrawal(codes: readonly StoredCode[], current: number): number {
  return codes.length === 0 ? current : Math.max(...codes.map((c) => c.expiresAt));
}

export function keepNewest(codes: StoredCode[], keep: number): StoredCode[] {
  const n = Math.max(1, Math.floor(keep));
  return codes.length > n ? codes.slice(codes.length - n) : codes;
}

/** Event without its seq, as stored in the JSON data column / stream entry. */
export function eventBody(e: AuditEvent): Omit<AuditEvent, 'seq'> {
  const { seq: _seq, ...rest } = e;
  return rest;
}
