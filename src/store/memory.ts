/**
 * In-process store for tests, the replay CLI and single-process trials.
 *
 * Every method runs synchronously inside its async function (no await before it returns), so each call
 * is atomic with respect to the others: that is the whole concurrency story here.
 *
 * Memory is bounded even under an attack that rotates keys: counters, one-time tokens and settings with
 * a TTL are expired lazily on access, swept by `sweep(now)`, and capped (`maxKeys` per map). Counters are
 * also swept a few entries per `consumeLimits` call (see "rate-limit counters" below), so expired ones go
 * without a timer. Tokens and settings beyond the cap evict the least recently written; counters beyond
 * it evict with CLOCK (second chance), an approximation of least recently used that never re-inserts a key
 * on the request path. Evicting a counter forgets a rate limit (fails open for that key) and evicting a
 * token allows its reuse: acceptable for the store that is not meant for production, and strictly better
 * than running out of memory.
 */
import type {
  ApiKeyRecord, AttemptResult, AuditEvent, Channel, EventQuery, JournalRecord, JournalWrite, AddCodeOptions, LimitOutcome, LimitSpec, ListAction, ListEntry,
  ListKind, Store, StoredCode, SubjectRecords, TallyOutcome, TallySpec, Verification, VerificationStatus,
} from './interface.ts';
import { entryIsSubject, keyNames, redactText, textNames } from './subject.ts';
import type { WindowState } from '../engine/window.ts';
import {
  applyLimits, applyTallies, clonePlain, cloneVerification, DEFAULT_VERIFICATION_RETENTION_MS, eventMatches, expiryAfterWithdrawal, keepNewest,
  peekCounts, validateTallies, type TallyState,
} from './codec.ts';

export interface MemoryStoreOptions {
  /** Cap for each of: counters, one-time tokens, settings with a TTL. Default 2,000,000. */
  maxKeys?: number;
  /** Cap for stored audit events; the oldest are dropped. Default 100,000. */
  maxEvents?: number;
  /** Cap for stored verifications; the oldest are dropped. Default 1,000,000. */
  maxVerifications?: number;
  /** How long a verification stays readable after it expired. Default 24 h. */
  verificationRetentionMs?: number;
  /** When set, `sweep(clock())` runs on an unref'ed timer at this interval. */
  sweepIntervalMs?: number;
  /** Clock for the methods whose `now` is optional (settings). Default Date.now. */
  clock?: () => number;
}

interface Counter {
  /** Its key in `counters` (the hands iterate values: an entries() step allocates a [key, value] pair). */
  key: string;
  state: WindowState;
  /** The windows of a multi-window counter (`tally`); null for a limit counter. */
  tally: TallyState | null;
  expiresAt: number;
  /** Used since it was created or since the eviction hand last passed it: spared once (second chance). */
  touched: boolean;
}

/**
 * Counter entries the sweep hand looks at per `consumeLimits` call (deleting the expired ones): this many,
 * or twice the keys the call created if more, so the hand outruns creation and expired counters stay below
 * the live ones in number (under full key rotation a send creates about 9 keys over 2 calls).
 */
const SWEEP_STEPS = 16;

interface Setting {
  value: unknown;
  expiresAt: number | null;
}

/** The (never written) limit state of a tally counter. */
const EMPTY_STATE: WindowState = [];

const pendingKey = (to: string, channel: Channel): string => `${to}\u0000${channel}`;

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;

  private readonly maxKeys: number;
  private readonly maxEvents: number;
  private readonly maxVerifications: number;
  private readonly retentionMs: number;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | null = null;

  private readonly verifications = new Map<string, Verification>();
  /** to+channel -> verification ids, oldest first; stale ids are dropped lazily. */
  private readonly pending = new Map<string, string[]>();
  /** Insertion order = eviction order (see "rate-limit counters"); updated in place, never re-inserted per use. */
  private readonly counters = new Map<string, Counter>();
  /** CLOCK hand: always at the front of `counters` (everything it passed was deleted or moved to the back). */
  private evictHand: MapIterator<Counter> | null = null;
  /** Sweep hand: goes round `counters` a few entries per consumeLimits call, deleting expired ones. */
  private sweepHand: MapIterator<Counter> | null = null;
  private readonly tokens = new Map<string, number>();
  private readonly apiKeys = new Map<string, ApiKeyRecord>();
  private readonly lists = new Map<string, ListEntry>();
  private version = 0;
  private readonly settings = new Map<string, Setting>();
  private readonly journal = new Map<string, { at: number; value: unknown }>();
  /** Keys of settings that have a TTL, least recently written first (what the cap evicts). */
  private readonly ttlSettings = new Map<string, true>();
  /** Events in seq order; `eventsHead` is the first live index (dropping from the front is O(1)). */
  private events: AuditEvent[] = [];
  private eventsHead = 0;
  private seq = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.maxKeys = opts.maxKeys ?? 2_000_000;
    this.maxEvents = opts.maxEvents ?? 100_000;
    this.maxVerifications = opts.maxVerifications ?? 1_000_000;
    this.retentionMs = opts.verificationRetentionMs ?? DEFAULT_VERIFICATION_RETENTION_MS;
    this.clock = opts.clock ?? Date.now;
    if (opts.sweepIntervalMs !== undefined && opts.sweepIntervalMs > 0) {
      this.timer = setInterval(() => this.sweep(this.clock()), opts.sweepIntervalMs);
      this.timer.unref();
    }
  }

  /** Sizes, for the memory-bound tests and metrics. */
  stats(): { counters: number; tokens: number; settings: number; verifications: number; events: number } {
    return {
      counters: this.counters.size,
      tokens: this.tokens.size,
      settings: this.settings.size,
      verifications: this.verifications.size,
      events: this.events.length - this.eventsHead,
    };
  }

  /** Drop everything that has expired at `now`. Returns how many entries were removed. */
  sweep(now: number): number {
    let n = 0;
    for (const [k, c] of this.counters) if (c.expiresAt <= now) { this.counters.delete(k); n++; }
    this.dropHands();
    for (const [k, exp] of this.tokens) if (exp <= now) { this.tokens.delete(k); n++; }
    for (const k of this.ttlSettings.keys()) {
      const s = this.settings.get(k);
      if (!s || (s.expiresAt !== null && s.expiresAt <= now)) { this.settings.delete(k); this.ttlSettings.delete(k); n++; }
    }
    for (const [id, v] of this.verifications) {
      if (v.expiresAt + this.retentionMs <= now) { this.verifications.delete(id); n++; }
    }
    for (const [k, ids] of this.pending) {
      const live = ids.filter((id) => this.verifications.get(id)?.status === 'pending');
      if (live.length === 0) this.pending.delete(k);
      else if (live.length !== ids.length) this.pending.set(k, live);
    }
    for (const [id, e] of this.lists) if (e.expiresAt !== null && e.expiresAt <= now) { this.lists.delete(id); n++; }
    return n;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  // ---- verifications ----

  async createVerification(v: Verification): Promise<void> {
    this.insertVerification(v);
  }

  private insertVerification(v: Verification): void {
    this.verifications.delete(v.id);
    this.verifications.set(v.id, cloneVerification(v));
    if (v.status === 'pending') {
      const k = pendingKey(v.to, v.channel);
      const ids = this.pending.get(k) ?? [];
      ids.push(v.id);
      this.pending.set(k, ids);
    }
    while (this.verifications.size > this.maxVerifications) {
      const oldest = this.verifications.keys().next().value as string;
      this.verifications.delete(oldest);
    }
  }

  async consumeLimitsAndCreate(specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite): Promise<LimitOutcome> {
    // Synchronous up to the return: nothing can run between the counting and the insert.
    const { outcome, created } = this.consume(specs, now);
    if (outcome.allowed) {
      this.insertVerification(v);
      if (journal) this.writeJournal(journal);
    }
    this.housekeep(now, created);
    return outcome;
  }

  async getVerification(id: string): Promise<Verification | null> {
    const v = this.verifications.get(id);
    return v ? cloneVerification(v) : null;
  }

  async findPending(to: string, channel: Channel, now: number): Promise<Verification | null> {
    const k = pendingKey(to, channel);
    const ids = this.pending.get(k);
    if (!ids) return null;
    let best: Verification | null = null;
    const live: string[] = [];
    for (const id of ids) {
      const v = this.verifications.get(id);
      // Once not pending (or expired: addCode cannot revive it) it never matches again.
      if (!v || v.status !== 'pending' || v.expiresAt <= now || v.to !== to || v.channel !== channel) continue;
      live.push(id);
      // Not a tarpit before a tarpit; then newest by createdAt, and on a tie the later insert wins.
      if (!best || (best.tarpit && !v.tarpit) || (best.tarpit === v.tarpit && v.createdAt >= best.createdAt)) best = v;
    }
    if (live.length === 0) this.pending.delete(k);
    else if (live.length !== ids.length) this.pending.set(k, live);
    return best ? cloneVerification(best) : null;
  }

  async addCode(id: string, code: StoredCode, opts: AddCodeOptions): Promise<Verification | null> {
    const v = this.verifications.get(id);
    if (!v || v.status !== 'pending' || v.expiresAt <= opts.now) return null;
    if (opts.journal) this.writeJournal(opts.journal);
    v.codes = keepNewest([...v.codes, { ...code }], opts.keep);
    v.sends += 1;
    v.lastSentAt = opts.now;
    v.resendAfter = opts.resendAfter;
    v.expiresAt = code.expiresAt;
    v.updatedAt = opts.now;
    return cloneVerification(v);
  }

  async withdrawCode(id: string, hash: string, now: number): Promise<boolean> {
    const v = this.verifications.get(id);
    if (!v || v.status !== 'pending' || !v.codes.some((c) => c.hash === hash)) return false;
    v.codes = v.codes.filter((c) => c.hash !== hash);
    v.expiresAt = expiryAfterWithdrawal(v.codes, v.expiresAt);
    v.updatedAt = now;
    return true;
  }

  async reserveAttempt(id: string, now: number): Promise<AttemptResult> {
    const v = this.verifications.get(id);
    if (!v) return { ok: false, reason: 'not_found', verification: null };
    if (v.status !== 'pending') {
      const reason = v.status === 'locked' ? 'locked' : v.status === 'expired' ? 'expired' : 'not_pending';
      return { ok: false, reason, verification: cloneVerification(v) };
    }
    if (v.expiresAt <= now) return { ok: false, reason: 'expired', verification: cloneVerification(v) };
    // Out of attempts: refused, but the status is left to the attempts in flight (see Store.reserveAttempt).
    if (v.attempts >= v.maxAttempts) return { ok: false, reason: 'locked', verification: cloneVerification(v) };
    v.attempts += 1;
    v.updatedAt = now;
    return { ok: true, verification: cloneVerification(v) };
  }

  async transition(
    id: string,
    status: Exclude<VerificationStatus, 'pending' | 'expired'>,
    now: number,
    extra?: { failureReason?: string; sender?: string; approvedBy?: string },
  ): Promise<boolean> {
    const v = this.verifications.get(id);
    if (!v || v.status !== 'pending') return false;
    v.status = status;
    v.updatedAt = now;
    if (extra?.failureReason !== undefined) v.failureReason = extra.failureReason;
    if (extra?.approvedBy !== undefined) v.approvedBy = extra.approvedBy;
    if (extra?.sender !== undefined) v.sender = extra.sender;
    return true;
  }

  // ---- rate-limit counters ----
  //
  // Why not LRU by "delete then set" on every touch (what this store did first): V8's ordered hash map
  // leaves a deleted entry in its bucket chain until the table is rehashed, so a hot key (global, country,
  // prefix: touched by every request) deleted and re-set on every request grows a chain as long as the
  // table, and each lookup of it walks that chain. Decisions slowed from 0.3 ms at 45k keys to 9 ms at 225k
  // (bench/memory.ts), the limiter benchmark ran at 0.03× rate-limiter-flexible, and `keys().next()`
  // after deleting from the front walked the accumulated holes on every eviction (docs/benchmarks.md).
  //
  // Instead, CLOCK (second chance): a counter is updated in place and marks itself `touched` when used.
  // The Map's insertion order is the clock face. Beyond `maxKeys` the eviction hand takes the front entry:
  // expired or untouched -> deleted; touched -> bit cleared and moved to the back (one delete + set per key
  // per pass of the hand, not per request). So untouched counters are evicted first, oldest first, and a key
  // under attack, touched on every call (even denied), is not evicted while it keeps being hit. A sweep hand
  // walks the Map a few entries per call and deletes expired counters, so memory follows the live keys
  // without a timer. Both hands are long-lived iterators (a Map iterator survives deletes, inserts and
  // rehashes); a fresh `keys()` iterator would start over the holes at the front every time.

  /** A counter unless it expired (then deleted). `touch` marks use for CLOCK. */
  private liveCounter(key: string, now: number, touch: boolean): Counter | undefined {
    const c = this.counters.get(key);
    if (!c) return undefined;
    if (c.expiresAt <= now) {
      this.counters.delete(key);
      return undefined;
    }
    if (touch) c.touched = true;
    return c;
  }

  /** A limit counter's state (see liveCounter). */
  private liveState(key: string, now: number, touch: boolean): WindowState | undefined {
    return this.liveCounter(key, now, touch)?.state;
  }

  async consumeLimits(specs: LimitSpec[], now: number): Promise<LimitOutcome> {
    const { outcome, created } = this.consume(specs, now);
    this.housekeep(now, created);
    return outcome;
  }

  /** The counting of consumeLimits, without the housekeeping (callers do it once, at the end of their call). */
  private consume(specs: LimitSpec[], now: number): { outcome: LimitOutcome; created: number } {
    // Looked up directly (no Map of states per call): applyLimits reads each spec's key once, in order.
    const found: (Counter | undefined)[] = [];
    const lookup = this.recordingLookup(now, found);
    const { outcome, writes } = applyLimits(specs, now, { get: (key) => lookup(key)?.state });
    let created = 0;
    for (const w of writes) if (this.writeCounter(found[w.spec], w.key, w.state, null, w.expiresAt)) created++;
    return { outcome, created };
  }

  /**
   * A lookup (touching, for CLOCK) that records each counter it returns in `found`, in call order: applyLimits
   * and applyTallies look each spec up once, in order, so `found[w.spec]` is the counter a write belongs to
   * and writing it needs no second lookup.
   */
  private recordingLookup(now: number, found: (Counter | undefined)[]): (key: string) => Counter | undefined {
    return (key) => {
      const c = this.liveCounter(key, now, true);
      found.push(c);
      return c;
    };
  }

  /**
   * Write a counter: `c`, the one its call's lookup returned, is updated in place (its position, and so the
   * Map, do not change); a key the lookup did not find joins at the back, untouched: the next to go if
   * nothing uses it again. True when the key is new.
   */
  private writeCounter(c: Counter | undefined, key: string, state: WindowState, tally: TallyState | null, expiresAt: number): boolean {
    if (c !== undefined) {
      c.state = state;
      c.tally = tally;
      c.expiresAt = expiresAt;
      return false;
    }
    this.counters.set(key, { key, state, tally, expiresAt, touched: false });
    return true;
  }

  async tally(gate: LimitSpec | null, tallies: TallySpec[], now: number): Promise<TallyOutcome> {
    validateTallies(tallies);
    // The gate and the tallies first, the sweep and eviction after (they must not drop a tally between the
    // gate and its read).
    const g = gate ? this.consume([gate], now) : null;
    const counted = g === null || g.outcome.allowed;
    const found: (Counter | undefined)[] = [];
    const lookup = this.recordingLookup(now, found);
    const { counts, writes } = applyTallies(tallies, now, { get: (key) => lookup(key)?.tally ?? undefined }, counted);
    let created = g?.created ?? 0;
    for (const w of writes) if (this.writeCounter(found[w.spec], w.key, EMPTY_STATE, w.state, w.expiresAt)) created++;
    if (g !== null || writes.length > 0) this.housekeep(now, created);
    return { counted, counts };
  }

  /** After a counting call: sweep a few entries (more when the call created keys), evict over the cap. */
  private housekeep(now: number, created: number): void {
    this.sweepSome(now, Math.max(SWEEP_STEPS, 2 * created));
    if (this.counters.size > this.maxKeys) this.evictCounters(now);
  }

  async peekLimits(specs: LimitSpec[], now: number): Promise<number[]> {
    return peekCounts(specs, now, { get: (key) => this.liveState(key, now, false) });
  }

  async resetLimits(keys: string[]): Promise<void> {
    for (const k of keys) this.counters.delete(k);
  }

  /** `steps` entries under the sweep hand (at most the Map's size), deleting the expired ones. */
  private sweepSome(now: number, steps: number): void {
    for (let n = Math.min(steps, this.counters.size); n > 0; n--) {
      let r = this.sweepHand?.next();
      if (!r || r.done) {
        // A round is done: start over from the front. The eviction hand restarts too (it stands at the
        // front anyway): an iterator left idle keeps every table the Map outgrew since alive (measured:
        // 430 MB instead of 5 MB after 3 million inserts into a Map of 200,000).
        this.sweepHand = this.counters.values();
        this.evictHand = null;
        r = this.sweepHand.next();
        if (r.done) return;
      }
      const c = r.value;
      if (c.expiresAt <= now) this.counters.delete(c.key);
    }
  }

  /** CLOCK eviction down to `maxKeys`. Ends within two rounds: the first clears every touched bit it meets. */
  private evictCounters(now: number): void {
    let guard = 2 * this.counters.size + 2;
    while (this.counters.size > this.maxKeys && guard-- > 0) {
      let r = this.evictHand?.next();
      if (!r || r.done) {
        this.evictHand = this.counters.values();
        r = this.evictHand.next();
        if (r.done) return;
      }
      const c = r.value;
      this.counters.delete(c.key);
      if (c.touched && c.expiresAt > now) {
        c.touched = false;
        this.counters.set(c.key, c); // second chance: to the back, met again after a full round
      }
    }
  }

  private dropHands(): void {
    this.evictHand = null;
    this.sweepHand = null;
  }

  // ---- one-time tokens ----

  async useOnce(key: string, ttlMs: number, now: number): Promise<boolean> {
    const exp = this.tokens.get(key);
    if (exp !== undefined && exp > now) return false;
    this.tokens.delete(key);
    this.tokens.set(key, now + ttlMs);
    this.evict(this.tokens);
    return true;
  }

  // ---- API keys ----

  async putApiKey(k: ApiKeyRecord): Promise<void> {
    this.apiKeys.set(k.id, clonePlain(k));
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    const k = this.apiKeys.get(id);
    return k ? clonePlain(k) : null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return [...this.apiKeys.values()].sort(byCreated).map((k) => clonePlain(k));
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    const k = this.apiKeys.get(id);
    if (!k || k.revokedAt !== null) return false;
    k.revokedAt = now;
    return true;
  }

  async touchApiKey(id: string, now: number): Promise<void> {
    const k = this.apiKeys.get(id);
    if (k) k.lastUsedAt = Math.max(k.lastUsedAt ?? now, now);
  }

  // ---- block/allow lists ----

  async putListEntry(e: ListEntry): Promise<void> {
    this.lists.set(e.id, clonePlain(e));
    this.version++;
  }

  async removeListEntry(id: string): Promise<boolean> {
    if (!this.lists.delete(id)) return false;
    this.version++;
    return true;
  }

  async listEntries(now: number, filter?: { list?: ListAction; kind?: ListKind }): Promise<ListEntry[]> {
    const out: ListEntry[] = [];
    for (const e of this.lists.values()) {
      if (e.expiresAt !== null && e.expiresAt <= now) continue;
      if (filter?.list !== undefined && e.list !== filter.list) continue;
      if (filter?.kind !== undefined && e.kind !== filter.kind) continue;
      out.push(clonePlain(e));
    }
    return out.sort(byCreated);
  }

  async listsVersion(): Promise<number> {
    return this.version;
  }

  // ---- settings ----

  private liveSetting(key: string, now: number): Setting | null {
    const s = this.settings.get(key);
    if (!s) return null;
    if (s.expiresAt !== null && s.expiresAt <= now) {
      this.settings.delete(key);
      this.ttlSettings.delete(key);
      return null;
    }
    return s;
  }

  async getSetting<T = unknown>(key: string, now?: number): Promise<T | null> {
    const s = this.liveSetting(key, now ?? this.clock());
    return s ? (clonePlain(s.value) as T) : null;
  }

  async putSetting(key: string, value: unknown, ttlMs?: number, now?: number): Promise<void> {
    const expiresAt = ttlMs !== undefined ? (now ?? this.clock()) + ttlMs : null;
    this.settings.set(key, { value: clonePlain(value), expiresAt });
    this.ttlSettings.delete(key);
    if (expiresAt !== null) {
      this.ttlSettings.set(key, true);
      while (this.ttlSettings.size > this.maxKeys) {
        const oldest = this.ttlSettings.keys().next().value as string;
        this.ttlSettings.delete(oldest);
        this.settings.delete(oldest);
      }
    }
  }

  async deleteSetting(key: string): Promise<void> {
    this.settings.delete(key);
    this.ttlSettings.delete(key);
  }

  async listSettings<T = unknown>(prefix: string, now?: number): Promise<{ key: string; value: T }[]> {
    const t = now ?? this.clock();
    const out: { key: string; value: T }[] = [];
    for (const key of [...this.settings.keys()].sort()) {
      if (!key.startsWith(prefix)) continue;
      const s = this.liveSetting(key, t);
      if (s) out.push({ key, value: clonePlain(s.value) as T });
    }
    return out;
  }

  // ---- journal ----

  async putJournal(key: string, at: number, value: unknown): Promise<void> {
    this.writeJournal({ key, at, value });
  }

  private writeJournal(j: JournalWrite): void {
    this.journal.set(j.key, { at: j.at, value: clonePlain(j.value) });
  }

  async deleteJournal(key: string): Promise<void> {
    this.journal.delete(key);
  }

  async listJournal<T = unknown>(before: number, limit: number): Promise<JournalRecord<T>[]> {
    const out: JournalRecord<T>[] = [];
    for (const [key, e] of this.journal) if (e.at <= before) out.push({ key, at: e.at, value: clonePlain(e.value) as T });
    out.sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out.slice(0, Math.max(0, limit));
  }

  // ---- audit events ----

  async subjectRecords(names: readonly string[], erase: boolean, keyParts: readonly string[] = names): Promise<SubjectRecords> {
    const out: SubjectRecords = { verifications: [], events: [], listEntries: [], keys: [], journal: [] };
    for (const v of this.verifications.values()) if (names.includes(v.to)) out.verifications.push(clonePlain(v));
    for (let i = this.eventsHead; i < this.events.length; i++) {
      const e = this.events[i]!;
      if ((e.to != null && names.includes(e.to)) || textNames(JSON.stringify(e), names)) out.events.push(clonePlain(e));
    }
    for (const e of this.lists.values()) if (names.includes(e.value) || textNames(e.note, names)) out.listEntries.push({ ...e });
    for (const map of [this.counters, this.tokens, this.settings] as Map<string, unknown>[]) for (const k of map.keys()) if (keyNames(k, keyParts)) out.keys.push(k);
    for (const [k, j] of this.journal) if (textNames(JSON.stringify(j.value), names)) out.journal.push(k);
    out.keys.sort();
    out.journal.sort();
    if (!erase) return out;
    for (const v of out.verifications) {
      this.verifications.delete(v.id);
      this.pending.delete(pendingKey(v.to, v.channel));
    }
    const seqs = new Set(out.events.map((e) => e.seq));
    if (seqs.size > 0) {
      this.events = this.events.slice(this.eventsHead).filter((e) => !seqs.has(e.seq));
      this.eventsHead = 0;
    }
    for (const e of out.listEntries) {
      if (entryIsSubject(e, names)) this.lists.delete(e.id);
      else this.lists.set(e.id, { ...e, note: e.note === null ? null : redactText(e.note, names) });
    }
    if (out.listEntries.length > 0) this.version++;
    for (const k of out.keys) {
      this.counters.delete(k);
      this.tokens.delete(k);
      this.settings.delete(k);
      this.ttlSettings.delete(k);
    }
    for (const k of out.journal) this.journal.delete(k);
    return out;
  }

  async appendEvents(events: AuditEvent[], forget?: string): Promise<void> {
    if (forget !== undefined) this.journal.delete(forget);
    for (const e of events) this.events.push({ ...clonePlain(e), seq: ++this.seq });
    const live = this.events.length - this.eventsHead;
    if (live > this.maxEvents) this.eventsHead += live - this.maxEvents;
    // Compact once the dropped prefix dominates, so the array does not grow forever.
    if (this.eventsHead > 1024 && this.eventsHead * 2 > this.events.length) {
      this.events = this.events.slice(this.eventsHead);
      this.eventsHead = 0;
    }
  }

  async queryEvents(q: EventQuery): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    if (q.limit <= 0) return out;
    const asc = q.order === 'asc';
    const n = this.events.length;
    for (let k = 0; k < n - this.eventsHead; k++) {
      const e = this.events[asc ? this.eventsHead + k : n - 1 - k]!;
      if (!eventMatches(e, q)) continue;
      out.push(clonePlain(e));
      if (out.length >= q.limit) break;
    }
    return out;
  }

  async purgeEvents(before: number): Promise<number> {
    const live = this.events.slice(this.eventsHead);
    const kept = live.filter((e) => e.at >= before);
    this.events = kept;
    this.eventsHead = 0;
    return live.length - kept.length;
  }

  private evict<V>(m: Map<string, V>): void {
    while (m.size > this.maxKeys) {
      const oldest = m.keys().next().value as string;
      m.delete(oldest);
    }
  }
}

function byCreated(a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
