/**
 * The one async interface for all of OTP Shield's state.
 *
 * Every implementation (memory, SQLite, Redis, PostgreSQL) must pass the shared contract suite in
 * `test/store/contract.ts`. Operations that guard money or security (rate limits, check attempts,
 * approvals, one-time tokens) are single atomic operations here, never read-modify-write in the caller:
 * that is what makes counts exact under concurrency and across processes.
 *
 * Times are epoch milliseconds passed in by the caller (`now`), never read from a clock inside the
 * store, so tests and the replay CLI drive time themselves.
 */

export type Channel = 'sms' | 'whatsapp' | 'voice' | 'email';
export const CHANNELS: readonly Channel[] = ['sms', 'whatsapp', 'voice', 'email'];

export type VerificationStatus = 'pending' | 'approved' | 'canceled' | 'expired' | 'failed' | 'locked';

/** One code that was sent for a verification. Only its keyed hash is kept, never the code. */
export interface StoredCode {
  /** Which code secret (key id) produced the hash, so rotated secrets keep verifying old codes. */
  kid: string;
  /** base64url HMAC-SHA256 of the code bound to the verification id, destination and channel. */
  hash: string;
  /** When this code stops being accepted (epoch ms). */
  expiresAt: number;
}

export interface Verification {
  id: string;
  /** E.164 destination. */
  to: string;
  channel: Channel;
  locale: string | null;
  status: VerificationStatus;
  createdAt: number;
  updatedAt: number;
  /** The verification expires when its newest code does. */
  expiresAt: number;
  /** Check attempts used so far (correct or not): counted before the code is compared. */
  attempts: number;
  maxAttempts: number;
  /** Messages sent (first send + resends). */
  sends: number;
  lastSentAt: number;
  /** Earliest time another send for this verification may be requested. */
  resendAfter: number;
  /** Newest last. Resends add a code; only the newest `codesKept` stay valid (see service/codes.ts). */
  codes: StoredCode[];
  /** The end user's evidence as received (sanitised); later layers give it meaning. */
  client: Record<string, unknown>;
  /** True when the risk decision was `tarpit`: looks pending, nothing was sent, no code can match. */
  tarpit: boolean;
  sender: string | null;
  failureReason: string | null;
  /** The id of the check's audit event that approved it (null or absent: not approved, or before schema 3). */
  approvedBy?: string | null;
}

/** Result of reserving one check attempt. The compare happens in the caller after this, in constant time. */
export type AttemptResult =
  | { ok: true; verification: Verification }
  | { ok: false; reason: 'not_found' | 'expired' | 'locked' | 'not_pending'; verification: Verification | null };

/** A limit to enforce atomically together with the others of the same request. */
export interface LimitSpec {
  /** Stable reason code reported when this limit denies, e.g. `rate_limited.number`. */
  reason: string;
  /** Storage key, e.g. `n:+6281234567890:10m`. Callers namespace keys; the store treats them as opaque. */
  key: string;
  /** Maximum events in any window of `windowMs`. 0 denies everything. */
  limit: number;
  windowMs: number;
  /** Events this request adds (usually 1). */
  cost?: number;
}

export interface LimitOutcome {
  allowed: boolean;
  /** Limits that denied (empty when allowed). Nothing is counted unless all limits allow. */
  denied: { reason: string; key: string; retryAfterMs: number }[];
  /** Count in the window for every spec after this request (before it, when denied), in spec order. */
  counts: number[];
}

/**
 * A multi-window counter: one key holding one sliding window (the rule of engine/window.ts, no limit) per
 * entry of `windowsMs`. Counting one event in 13 windows is then one key to read and write instead of 13.
 * A key must always be used with the same `windowsMs` (callers change the key when they change the windows;
 * a stored state with another number of windows is read as empty), and never as a limit key (`LimitSpec`):
 * the two kinds of state are not interchangeable.
 */
export interface TallySpec {
  key: string;
  /** Window lengths in ms (distinct positive integers), in the order `counts` reports them. */
  windowsMs: readonly number[];
  /** Events added to every window (0: read only). */
  cost: number;
}

export interface TallyOutcome {
  /** False when the gate denied: nothing was counted. */
  counted: boolean;
  /** Per tally, per window: the count after this call (before it, when nothing was counted). */
  counts: number[][];
}

export type ListAction = 'block' | 'allow';
/** `Store.poolStats`: connections open, idle, requests waiting for one, and those held by slow queries. */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  slow: number;
}

/** What `Store.subjectRecords` found (and erased). */
export interface SubjectRecords {
  verifications: Verification[];
  events: AuditEvent[];
  listEntries: ListEntry[];
  /** Keys of counters, one-time markers and settings that name it (their values are counts and states). */
  keys: string[];
  /** Keys of journal entries that name it. */
  journal: string[];
}

/** `email` and `domain` match the email channel's destinations (an address; a domain and its subdomains). */
export type ListKind = 'number' | 'prefix' | 'ip' | 'cidr' | 'device' | 'country' | 'email' | 'domain';

export interface ListEntry {
  id: string;
  list: ListAction;
  kind: ListKind;
  /** Normalised value: E.164 number, `+62812` prefix, IP, CIDR, device id, ISO country code. */
  value: string;
  note: string | null;
  createdAt: number;
  expiresAt: number | null;
}

/**
 * `verify`: send and check codes. `admin`: everything under the admin surface. `read`: the admin surface's reads
 * (stats, events with numbers masked, lists, policy, pauses, quarantines, alerts, metrics) and nothing that
 * changes or hands out personal data in full. `metrics`: `/metrics` only, for a Prometheus scraper.
 * service/api-keys.ts `grants` says which scope includes which.
 */
export type ApiScope = 'verify' | 'admin' | 'read' | 'metrics';

export interface ApiKeyRecord {
  id: string;
  name: string | null;
  /** Hex SHA-256 of the secret part. The secret has 256 bits of entropy, so a fast hash is enough. */
  secretHash: string;
  scopes: ApiScope[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/** One audit event. `data` never contains a code. */
export interface AuditEvent {
  /** Assigned by the store when appended: monotonically increasing within one store. */
  seq?: number;
  id: string;
  at: number;
  type: string;
  /** E.164 number when the event concerns one (masked on export if configured). */
  to?: string | null;
  prefix?: string | null;
  country?: string | null;
  ip?: string | null;
  deviceId?: string | null;
  decision?: string | null;
  reasons?: string[];
  data?: Record<string, unknown>;
}

export interface JournalRecord<T = unknown> {
  key: string;
  at: number;
  value: T;
}

/**
 * A journal entry written by a store step itself, only when the step succeeds (`consumeLimitsAndCreate`,
 * `addCode`): the entry exists exactly when the step happened, at no extra round trip.
 */
export type JournalWrite = JournalRecord;

export interface AddCodeOptions {
  now: number;
  resendAfter: number;
  keep: number;
  journal?: JournalWrite;
}

export interface EventQuery {
  /** Events with `at >= from` (inclusive). */
  from?: number;
  /** Events with `at < to` (exclusive). */
  to?: number;
  type?: string;
  /** Exact match on the event's `to`. */
  number?: string;
  /**
   * Events whose destination (`to`) or `prefix` field starts with this: `+` and digits (so it never matches an
   * email address). Any length: `+62` for a country, `+62812` for a range, `+628129999` for a block inside it.
   * The `prefix` field is what a range's own events carry (quarantine.start, throttle changes), without a `to`.
   */
  prefix?: string;
  ip?: string;
  deviceId?: string;
  decision?: string;
  /** Events whose `reasons` contain this reason. */
  reason?: string;
  /** Return events with seq strictly lower than this (newest first paging). */
  before?: number;
  /** Return events with seq strictly greater than this (oldest first paging, used by export). */
  after?: number;
  order?: 'asc' | 'desc';
  limit: number;
}

export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'redis' | 'postgres';

  /** Reachability probe for /readyz. Throws when the backend cannot answer. */
  ping(): Promise<void>;
  /**
   * Settings of the backend that break the promise that nothing acknowledged is lost (a Redis that keeps
   * nothing on disk, or evicts keys), as sentences for the start-up log. Stores that cannot tell omit it.
   */
  durabilityWarnings?(): Promise<string[]>;
  close(): Promise<void>;
  /** Delete expired rows/keys now (the maintenance loop calls it every minute). Returns how many went. */
  sweep?(now: number): number | Promise<number>;

  // ---- verifications ----
  /** Insert a new verification. The caller guarantees a fresh id. */
  createVerification(v: Verification): Promise<void>;
  /**
   * `consumeLimits(specs)` and, only when every limit allows, `createVerification(v)`: one atomic step (one
   * Redis script, one PostgreSQL statement, one SQLite transaction). When a limit denies, nothing is counted
   * and nothing is created. A first send waits for its send limits and its verification together: one round
   * trip instead of two, with no verification ever visible for a request its limits refused. `journal`: an
   * entry written (as by `putJournal`) in the same atomic step, only when the verification is created.
   */
  consumeLimitsAndCreate(specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite): Promise<LimitOutcome>;
  getVerification(id: string): Promise<Verification | null>;
  /**
   * Resolves once every write this store's own reads can already see is on disk. A read that answers the
   * outside world (`GET /v1/verifications/{id}`, the audit log) waits for it, so nobody is told of a state a
   * crash could still take back. Left out by stores whose reads see only what is durable by their own
   * settings (Redis, PostgreSQL) and by the memory store; SQLite's commit batching makes a write visible in
   * its event-loop turn and durable at the group commit's fdatasync after it.
   */
  settled?(): Promise<void>;
  /**
   * The newest verification for this destination and channel that is still pending and unexpired at `now` —
   * preferring one that is not a tarpit: a bot's tarpitted request for someone's number must not hide that
   * person's real verification from a check by number (or from their resend). A tarpit is returned only
   * when it is the only kind pending, so the bot that caused it still sees it.
   */
  findPending(to: string, channel: Channel, now: number): Promise<Verification | null>;
  /**
   * Atomically record a resend: append `code`, keep the newest `keep` codes, bump sends, set
   * lastSentAt/resendAfter/expiresAt. Fails (returns null) unless the verification is pending and unexpired.
   * `journal`: an entry written in the same atomic step, only when the code was added.
   */
  addCode(id: string, code: StoredCode, opts: AddCodeOptions): Promise<Verification | null>;
  /**
   * Remove the code whose `hash` this is from a pending verification (a resend whose delivery failed: its code
   * never left, and must not take the place of one that did). Nothing else changes. Returns whether it was there.
   */
  withdrawCode(id: string, hash: string, now: number): Promise<boolean>;
  /**
   * Reserve one check attempt: atomically increments `attempts` when the verification is pending, unexpired
   * and below `maxAttempts`. Beyond that it is refused with reason `locked` but the status is NOT changed:
   * attempts reserved earlier may still be in flight, and if one of them carries the right code it must be
   * approvable (locking here turned ten parallel submissions of the right code into a lockout). The service
   * sets `locked` when the last reserved attempt fails (`VerificationService.check`).
   */
  reserveAttempt(id: string, now: number): Promise<AttemptResult>;
  /**
   * Move a verification from `pending` to `status` (approved, canceled, failed, locked). Returns true for
   * exactly one caller when several race: that is what makes approval single-use.
   */
  transition(id: string, status: Exclude<VerificationStatus, 'pending' | 'expired'>, now: number, extra?: { failureReason?: string; sender?: string; approvedBy?: string }): Promise<boolean>;

  // ---- rate-limit counters ----
  /**
   * Evaluate every limit of one request in one atomic step. Either all limits allow and each is
   * incremented by its cost, or nothing is counted and the denying limits are returned.
   * Semantics: at most `limit` events in any interval of `windowMs` (see engine/window.ts).
   */
  consumeLimits(specs: LimitSpec[], now: number): Promise<LimitOutcome>;
  /** Current counts without consuming (for velocity signals and the lookup CLI). */
  peekLimits(specs: LimitSpec[], now: number): Promise<number[]>;
  /** Forget counters (admin unlock, tests). */
  resetLimits(keys: string[]): Promise<void>;
  /**
   * Multi-window counters, in one atomic step: when `gate` (a limit, e.g. once per number per hour) is null
   * or allows, it is consumed and every tally adds its cost to each of its windows; when it denies, nothing
   * is counted. Either way every window's count is returned. `tally(null, [{ …, cost: 0 }])` is a read.
   */
  tally(gate: LimitSpec | null, tallies: TallySpec[], now: number): Promise<TallyOutcome>;

  // ---- one-time tokens ----
  /** Returns true the first time `key` is used within `ttlMs`, false on every later call. */
  useOnce(key: string, ttlMs: number, now: number): Promise<boolean>;

  // ---- API keys ----
  putApiKey(k: ApiKeyRecord): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | null>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(id: string, now: number): Promise<boolean>;
  touchApiKey(id: string, now: number): Promise<void>;

  // ---- block/allow lists ----
  putListEntry(e: ListEntry): Promise<void>;
  removeListEntry(id: string): Promise<boolean>;
  /** Entries not expired at `now`. */
  listEntries(now: number, filter?: { list?: ListAction; kind?: ListKind }): Promise<ListEntry[]>;
  /** Increases on every list change; lets instances cache lists and notice changes cheaply. */
  listsVersion(): Promise<number>;

  // ---- settings (policy versions, pauses, quarantines, secrets) ----
  // `now` (optional, additive) lets tests and replay drive setting expiry like every other expiry;
  // when omitted the store uses its clock option (default Date.now).
  getSetting<T = unknown>(key: string, now?: number): Promise<T | null>;
  /** `ttlMs` makes the setting expire (temporary quarantines, throttles). */
  putSetting(key: string, value: unknown, ttlMs?: number, now?: number): Promise<void>;
  deleteSetting(key: string): Promise<void>;
  /** Settings whose key starts with `prefix`, unexpired. */
  listSettings<T = unknown>(prefix: string, now?: number): Promise<{ key: string; value: T }[]>;

  // ---- journal: write-ahead records of irreversible steps (service/journal.ts) ----
  /**
   * Durable like a setting. `at` (when it was written) orders entries for `listJournal`; a `key` written again
   * replaces its entry. `covered: true`: the caller makes a durable write to this store after it and before
   * anything irreversible, so a store that flushes in commit order (SQLite's group commit) may resolve once
   * the entry is committed instead of waiting for its own flush; the others ignore it.
   */
  putJournal(key: string, at: number, value: unknown, opts?: { covered?: boolean }): Promise<void>;
  deleteJournal(key: string): Promise<void>;
  /** Entries whose `at` is at or before `before`, oldest first, at most `limit`: never the ones still in flight. */
  listJournal<T = unknown>(before: number, limit: number): Promise<JournalRecord<T>[]>;

  // ---- audit events ----
  /**
   * Append events. `forget`: a journal entry deleted in the same atomic step (the step it recorded now has its
   * event): either both happen or neither.
   */
  /**
   * Every stored record that names one destination (`names`: its key; `keyParts`: the parts of counter, marker
   * and setting keys that are it, its limit key too; see store/subject.ts): a data subject's access request, or
   * with `erase` its erasure (docs/privacy.md). Erased: its verifications, the events naming it, list entries
   * whose value is it, counters, markers, settings and journal entries; a list entry that only mentions it in
   * its note keeps its value with the mention redacted. SQLite overwrites what it deletes (secure_delete).
   */
  subjectRecords(names: readonly string[], erase: boolean, keyParts?: readonly string[]): Promise<SubjectRecords>;
  /** The connection pool's use, for metrics (PostgreSQL only). */
  poolStats?(): PoolStats;
  appendEvents(events: AuditEvent[], forget?: string): Promise<void>;
  queryEvents(q: EventQuery): Promise<AuditEvent[]>;
  /** Delete events older than `before`; returns how many were removed. */
  purgeEvents(before: number): Promise<number>;
}
