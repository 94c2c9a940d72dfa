/**
 * SQLite store (better-sqlite3): the single-node production store.
 *
 * Durability: WAL with `synchronous = NORMAL` plus a group-commit barrier. Every write commits by the end of
 * its event-loop turn (see "Commit batching" below), so a `kill -9` of the process loses nothing that was
 * acknowledged (a WAL commit is in the OS once it returns). To survive an OS crash or power cut too, the
 * promise of a durable write (verifications, events, lists, keys, settings) resolves only after an
 * `fdatasync` of the WAL file that started after the commit: so a `201` still means "on disk", as with
 * `synchronous = FULL`. The difference is that FULL fsyncs on every commit, on the event loop's thread (a
 * send made ~6 commits: ~6 blocking fsyncs of 1.5–2.5 ms on the first machine), while the barrier runs one
 * `fdatasync` in libuv's thread pool for every write that arrived while the previous one was running, and
 * the event loop keeps serving meanwhile.
 * Counters, one-time tokens and attempt reservations (consumeLimits, resetLimits, useOnce, touchApiKey,
 * reserveAttempt) do not wait: every request that writes them ends with an audit event, whose barrier
 * covers them before the response.
 *
 * Commit batching: a send made ~7 small write transactions, and ~60 % of their cost was the COMMIT (WAL
 * frames for the pages each one touched; the hot pages, such as the global counters and the events table's
 * tail, written again by every commit). So the writes of one event-loop turn share one transaction: the
 * first write opens it (`BEGIN IMMEDIATE`), each write runs inside it (a read-modify-write as a SAVEPOINT,
 * so a failing one undoes only itself), and it commits in a `setImmediate` callback of the same turn,
 * before the barrier's fdatasync starts. A durable write still resolves only after its commit and a flush
 * that began after it, so a `201` still means "on disk"; a write that does not wait (a counter) is visible
 * at once to this process and to other processes after the commit, less than one turn later. A `kill -9`
 * loses only writes of the running turn, which no response has acknowledged. If SQLite rolls the whole
 * transaction back by itself (an I/O error, a full disk), every durable write of the batch is rejected.
 * Two stores of one process on one file (tests; `otp-shield` commands run in their own process) would
 * deadlock on the write lock, so each store commits another one's open batch before it reads or writes.
 * fsync(2) is per file, not per descriptor, so our own read-only descriptor of `<file>-wal` flushes what
 * SQLite wrote through its own. Measured and argued in docs/decisions.md.
 *
 * Atomicity: every read-modify-write runs in `BEGIN IMMEDIATE` (the batch's, or its own with
 * `commitBatching: false`), which takes the write lock before reading, so two processes sharing one file
 * (e.g. the server and an admin CLI) are exact too; `busy_timeout` makes the second one wait instead of
 * failing. Within one process, better-sqlite3 is synchronous, so calls never interleave anyway.
 * Counter rows are read through a per-connection cache that is used only while `PRAGMA data_version`
 * (checked inside that transaction) says no other connection committed since our last counter write.
 *
 * Growth: expired counters, tokens, settings, list entries and long-expired verifications are deleted by
 * `sweep(now)`, which also runs in small batches every few hundred writes (with the `now` of that write).
 * Events are removed by `purgeEvents` (the retention job).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WalCheckpointer } from './sqlite-checkpointer.ts';
import { StoreUnavailableError } from './errors.ts';
import { containsPattern, entryIsSubject, keyNames, redactText, textNames } from './subject.ts';
import type {
  ApiKeyRecord, ApiScope, AttemptResult, AuditEvent, Channel, EventQuery, JournalRecord, JournalWrite, AddCodeOptions, LimitOutcome, LimitSpec, ListAction,
  ListEntry, ListKind, Store, StoredCode, SubjectRecords, TallyOutcome, TallySpec, Verification, VerificationStatus,
} from './interface.ts';
import type { WindowState } from '../engine/window.ts';
import {
  applyLimits, applyTallies, decodeCounterRow, DEFAULT_VERIFICATION_RETENTION_MS, encodeTallyRow, encodeWindowRow, eventBody,
  expiryAfterWithdrawal, keepNewest, peekCounts, validateTallies, VERIFICATION_COLUMNS, verificationFromRow, verificationValues, type TallyState,
  type VerificationRow,
} from './codec.ts';

/** Events per transaction of retention's purge, and transactions per call at most (`purgeEvents`). */
const PURGE_BATCH = 5000;
const PURGE_MAX_BATCHES = 200;

export interface SqliteStoreOptions {
  /** How long a verification stays readable after it expired. Default 24 h. */
  verificationRetentionMs?: number;
  /** How long a writer waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** Clock for the methods whose `now` is optional (settings). Default Date.now. */
  clock?: () => number;
  /** Run a sweep batch every this many writes. Default 500. 0 disables opportunistic sweeping. */
  sweepEveryWrites?: number;
  /** Most counter rows kept in the per-connection read cache (see `counterCache`). Default 4096; 0 disables it. */
  counterCacheSize?: number;
  /**
   * WAL pages after which a commit checkpoints on the event loop (PRAGMA wal_autocheckpoint). Default 10,000
   * (~40 MB): with the checkpoint thread this is only the fallback, never reached while the thread keeps up.
   */
  walAutocheckpointPages?: number;
  /** Checkpoint the WAL from a worker thread (sqlite-checkpointer.ts). Default true for a file. */
  checkpointThread?: boolean;
  /** Milliseconds between the checkpoint thread's attempts. Default 200. */
  checkpointIntervalMs?: number;
  /** Share one transaction among the writes of an event-loop turn (see the file comment). Default true. */
  commitBatching?: boolean;
  /** The group-commit barrier's flush (tests inject a slow or failing one). Default `fs.fdatasync`. */
  fdatasync?: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void;
}

interface CachedCounter {
  /** A limit counter's window, or a tally's windows (`Store.tally`). */
  state: WindowState | TallyState;
  /** The stored expires_at: a write with the same value updates only the state column. */
  expiresAt: number;
}

/**
 * The expires_at stored for a counter: the real one rounded up to 1/8 of its window, so a hot key's
 * expires_at (and its counters_expires index entry) changes once per 1/8 window instead of once per slot
 * (1/60 window). Rounding up only makes the sweep delete a counter later (by < 1/8 window), never earlier.
 */
export function storedCounterExpiry(expiresAt: number, windowMs: number): number {
  const g = Math.max(1, Math.ceil(windowMs / 8));
  return Math.ceil(expiresAt / g) * g;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Each entry migrates from user_version = index to index + 1. Never edit a shipped entry: append. */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE verifications (
    id TEXT PRIMARY KEY,
    to_number TEXT NOT NULL,
    channel TEXT NOT NULL,
    locale TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    sends INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL,
    resend_after INTEGER NOT NULL,
    codes TEXT NOT NULL,
    client TEXT NOT NULL,
    tarpit INTEGER NOT NULL,
    sender TEXT,
    failure_reason TEXT
  );
  -- findPending: only pending rows are indexed, so the index stays small.
  CREATE INDEX verifications_pending ON verifications (to_number, channel, created_at) WHERE status = 'pending';
  CREATE INDEX verifications_expires ON verifications (expires_at);

  CREATE TABLE counters (key TEXT PRIMARY KEY, state TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX counters_expires ON counters (expires_at);

  CREATE TABLE once_tokens (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX once_tokens_expires ON once_tokens (expires_at);

  CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER
  );

  CREATE TABLE list_entries (
    id TEXT PRIMARY KEY,
    list TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    note TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
  );
  CREATE INDEX list_entries_list_kind ON list_entries (list, kind);
  CREATE INDEX list_entries_expires ON list_entries (expires_at) WHERE expires_at IS NOT NULL;

  CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  INSERT INTO meta (key, value) VALUES ('lists_version', 0);

  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER) WITHOUT ROWID;
  CREATE INDEX settings_expires ON settings (expires_at) WHERE expires_at IS NOT NULL;

  -- AUTOINCREMENT: seq is never reused, even after the newest events were purged (export cursors rely on it).
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    to_number TEXT,
    prefix TEXT,
    ip TEXT,
    device_id TEXT,
    decision TEXT,
    body TEXT NOT NULL
  );
  CREATE INDEX events_at ON events (at);
  CREATE INDEX events_type ON events (type, seq);
  CREATE INDEX events_to ON events (to_number, seq) WHERE to_number IS NOT NULL;
  CREATE INDEX events_prefix ON events (prefix, seq) WHERE prefix IS NOT NULL;
  CREATE INDEX events_ip ON events (ip, seq) WHERE ip IS NOT NULL;
  CREATE INDEX events_device ON events (device_id, seq) WHERE device_id IS NOT NULL;
  CREATE INDEX events_decision ON events (decision, seq) WHERE decision IS NOT NULL;
  -- One row per (reason, event): filtering by reason is an index range, not a LIKE over JSON.
  CREATE TABLE event_reasons (reason TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (reason, seq)) WITHOUT ROWID;
  CREATE INDEX event_reasons_seq ON event_reasons (seq);
  `,
  // 2: counter rows are written in the compact text of codec.ts (encodeWindowRow, encodeTallyRow), which a
  // version-1 binary would fail to parse; the version bump makes it refuse the file instead (rolling deploys
  // and downgrades). Version-1 rows (JSON) are still read. No table changes.
  `
  CREATE TABLE IF NOT EXISTS schema_notes (version INTEGER PRIMARY KEY, note TEXT NOT NULL) WITHOUT ROWID;
  INSERT OR REPLACE INTO schema_notes (version, note) VALUES (2, 'compact counter rows');
  `,
  // 3: the journal (service/journal.ts), write-ahead records of sends and approvals; a version-2 binary would
  // not write or recover them, so the bump makes it refuse the file.
  `
  CREATE TABLE journal (key TEXT PRIMARY KEY, at INTEGER NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE INDEX journal_at ON journal (at);
  ALTER TABLE verifications ADD COLUMN approved_by TEXT;
  INSERT OR REPLACE INTO schema_notes (version, note) VALUES (3, 'journal');
  `,
];

const SWEEP_BATCH = 2000;

/**
 * The store of this process holding an open commit batch, per database file. SQLite lets one connection
 * write at a time: a second store of this process would wait for a lock that only this thread can release.
 */
const openBatches = new Map<string, SqliteStore>();
/** Most writes in one batch (a turn of a busy server has tens; see `begin`). */
const BATCH_MAX_WRITES = 1000;

interface ApiKeyRow {
  id: string;
  name: string | null;
  secret_hash: string;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

interface ListRow {
  id: string;
  list: string;
  kind: string;
  value: string;
  note: string | null;
  created_at: number;
  expires_at: number | null;
}

const apiKeyFromRow = (r: ApiKeyRow): ApiKeyRecord => ({
  id: r.id,
  name: r.name,
  secretHash: r.secret_hash,
  scopes: JSON.parse(r.scopes) as ApiScope[],
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
});

const listFromRow = (r: ListRow): ListEntry => ({
  id: r.id,
  list: r.list as ListAction,
  kind: r.kind as ListKind,
  value: r.value,
  note: r.note,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;

  private readonly retentionMs: number;
  private readonly clock: () => number;
  private readonly sweepEvery: number;
  private writes = 0;
  private readonly st: ReturnType<SqliteStore['prepareAll']>;
  private readonly eventQueries = new Map<string, Database.Statement>();

  // Group-commit barrier (see the file comment). `waiting`: writes committed since the running flush began.
  private readonly walPath: string | null;
  private walFd: number | null = null;
  private readonly fdatasync: NonNullable<SqliteStoreOptions['fdatasync']>;
  private waiting: Waiter[] = [];
  private flushing = false;
  /**
   * The last write failure (a commit or a flush: a full disk, an I/O error) until a durable write succeeds
   * again. While set, the readiness probe writes one row and waits for its flush: a full disk fails `/readyz`
   * (reads alone kept answering), and the probe's own write tells when it is over.
   */
  private writeFailure: Error | null = null;
  /** The database file's identity when opened (`checkFile`); null in memory. */
  private fileIno: number | null = null;
  private fileDev = 0;
  private flushScheduled = false;
  /** Barrier flushes run so far (benchmarks report writes per flush). */
  flushes = 0;

  // Commit batching (see the file comment). `batchWaiters`: durable writes of the open batch.
  private readonly batching: boolean;
  /** The file's key in `openBatches` (null for `:memory:`, a private database). */
  private readonly batchKey: string | null;
  private batchOpen = false;
  private batchWrites = 0;
  private batchWaiters: Waiter[] = [];
  private readonly commitSoon = (): void => this.commitBatch();
  /** The WAL checkpoint thread (null for `:memory:` or with `checkpointThread: false`). */
  readonly checkpointer: WalCheckpointer | null;
  /** Batches committed so far (benchmarks report commits per request; stays 0 with `commitBatching: false`). */
  commits = 0;

  private readonly txReserve: (id: string, now: number) => AttemptResult;
  private readonly txAddCode: (id: string, code: StoredCode, opts: AddCodeOptions) => Verification | null;
  private readonly txConsume: (specs: LimitSpec[], now: number) => LimitOutcome;
  private readonly txConsumeAndCreate: (specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite) => LimitOutcome;
  private readonly txTally: (gate: LimitSpec | null, tallies: TallySpec[], now: number) => TallyOutcome;
  private readonly txAppend: (events: AuditEvent[], forget: string | undefined) => void;
  private readonly txPurge: (before: number, batch: number) => number;
  private readonly txSweep: (now: number, batch: number) => number;
  private readonly txPutList: (e: ListEntry) => void;
  private readonly txRemoveList: (id: string) => boolean;
  private readonly txReset: (keys: string[]) => void;

  /**
   * Read cache of counter rows (null: known absent), valid only while `PRAGMA data_version` equals
   * `cacheVersion`, i.e. no other connection committed since our last counter transaction. Our own counter
   * writes keep it current; resetLimits, a sweep that removed counters, and any failed transaction clear it.
   * Bounded (oldest-written first out), so rotating keys cannot grow it. See docs/decisions.md.
   */
  private readonly counterCache = new Map<string, CachedCounter | null>();
  private cacheVersion = -1;
  private readonly counterCacheMax: number;

  constructor(file: string, opts: SqliteStoreOptions = {}) {
    this.retentionMs = opts.verificationRetentionMs ?? DEFAULT_VERIFICATION_RETENTION_MS;
    this.clock = opts.clock ?? Date.now;
    this.sweepEvery = opts.sweepEveryWrites ?? 500;
    this.counterCacheMax = Math.max(0, Math.floor(opts.counterCacheSize ?? 4096));
    const onDisk = file !== ':memory:' && file !== '';
    if (onDisk) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    this.walPath = onDisk ? `${path.resolve(file)}-wal` : null;
    this.batching = opts.commitBatching ?? true;
    // The real path (the file exists now): two paths to one file, through a symlink, are one key.
    this.batchKey = onDisk ? fs.realpathSync(path.resolve(file)) : null;
    if (this.batchKey !== null) {
      const st = fs.statSync(this.batchKey);
      this.fileIno = st.ino;
      this.fileDev = st.dev;
    }
    this.fdatasync = opts.fdatasync ?? fs.fdatasync;
    // busy_timeout first: the WAL switch itself may need to wait for another process.
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // Deleted rows are zeroed in their pages where that costs no extra I/O (retention's purges, the sweep);
    // an erasure (subjectRecords) turns it fully on. Without it, purged numbers stayed readable in the file.
    this.db.pragma('secure_delete = FAST');
    // A checkpoint (WAL pages copied into the database file, with an fsync of each) runs inside the commit
    // that crosses the threshold, on the event loop. At SQLite's default of 1,000 pages that was every ~30
    // sends; at 10,000 the send path measured 14–26 % more requests per second (docs/decisions.md). The WAL
    // file is cut back to 64 MB after a checkpoint so a burst does not leave it large.
    this.db.pragma(`wal_autocheckpoint = ${Math.max(0, Math.floor(opts.walAutocheckpointPages ?? 10_000))}`);
    this.db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    this.migrate();
    this.st = this.prepareAll();
    // After migrate: the file exists and is in WAL mode.
    this.checkpointer =
      onDisk && (opts.checkpointThread ?? true)
        ? new WalCheckpointer(path.resolve(file), { intervalMs: opts.checkpointIntervalMs, busyTimeoutMs: opts.busyTimeoutMs })
        : null;

    // Transaction wrappers are built once; `.immediate` = BEGIN IMMEDIATE (write lock before the first read).
    const db = this.db;
    const reserve = db.transaction((id: string, now: number) => this.reserveInTx(id, now));
    const addCode = db.transaction((id: string, code: StoredCode, o: AddCodeOptions) => this.addCodeInTx(id, code, o));
    const consume = db.transaction((specs: LimitSpec[], now: number) => this.consumeInTx(specs, now));
    const consumeAndCreate = db.transaction((specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite) => {
      const outcome = this.consumeInTx(specs, now);
      if (outcome.allowed) {
        this.st.insertVerification.run(...verificationValues(v, (b) => (b ? 1 : 0)));
        if (journal) this.journalInTx(journal);
      }
      return outcome;
    });
    const tally = db.transaction((gate: LimitSpec | null, tallies: TallySpec[], now: number) => this.tallyInTx(gate, tallies, now));
    const append = db.transaction((events: AuditEvent[], forget: string | undefined) => {
      this.appendInTx(events);
      if (forget !== undefined) this.st.deleteJournal.run(forget);
    });
    // Retention's purge overwrites what it deletes, freed pages included (secure_delete ON for its statements):
    // FAST zeroes only within pages that stay in use, and a privacy review read purged events in free pages.
    const purge = db.transaction((before: number, batch: number) => {
      db.pragma('secure_delete = ON');
      try {
        return this.purgeInTx(before, batch);
      } finally {
        db.pragma('secure_delete = FAST');
      }
    });
    const sweep = db.transaction((now: number, batch: number) => this.sweepInTx(now, batch));
    const putList = db.transaction((e: ListEntry) => {
      this.st.putListEntry.run(e.id, e.list, e.kind, e.value, e.note, e.createdAt, e.expiresAt);
      this.st.bumpListsVersion.run();
    });
    const removeList = db.transaction((id: string): boolean => {
      if (this.st.removeListEntry.run(id).changes === 0) return false;
      this.st.bumpListsVersion.run();
      return true;
    });
    const reset = db.transaction((keys: string[]) => {
      for (const k of keys) this.st.deleteCounter.run(k);
    });
    this.txReserve = (id, now) => reserve.immediate(id, now);
    this.txAddCode = (id, code, o) => addCode.immediate(id, code, o);
    // A rolled-back transaction may leave the counter cache holding states that were never committed.
    const forgetOnRollback =
      <A extends unknown[], R>(fn: (...a: A) => R) =>
      (...a: A): R => {
        try {
          return fn(...a);
        } catch (err) {
          this.counterCache.clear();
          throw err;
        }
      };
    this.txConsume = forgetOnRollback((specs: LimitSpec[], now: number) => consume.immediate(specs, now));
    this.txConsumeAndCreate = forgetOnRollback((specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite) =>
      consumeAndCreate.immediate(specs, v, now, journal),
    );
    this.txTally = forgetOnRollback((gate: LimitSpec | null, tallies: TallySpec[], now: number) => tally.immediate(gate, tallies, now));
    this.txAppend = (events, forget) => append.immediate(events, forget);
    this.txPurge = (before, batch) => purge.immediate(before, batch);
    this.txSweep = forgetOnRollback((now: number, batch: number) => sweep.immediate(now, batch));
    this.txPutList = (e) => putList.immediate(e);
    this.txRemoveList = (id) => removeList.immediate(id);
    this.txReset = (keys) => {
      this.counterCache.clear();
      try {
        reset.immediate(keys);
      } finally {
        this.counterCache.clear();
      }
    };
  }

  private migrate(): void {
    // Inside BEGIN IMMEDIATE: two processes opening a new file at once migrate it exactly once.
    this.db.transaction(() => {
      let version = this.db.pragma('user_version', { simple: true }) as number;
      if (version > MIGRATIONS.length) {
        throw new Error(`SQLite schema version ${version} is newer than this OTP Shield (${MIGRATIONS.length}); upgrade the service`);
      }
      for (; version < MIGRATIONS.length; version++) this.db.exec(MIGRATIONS[version]!);
      this.db.pragma(`user_version = ${version}`);
    }).immediate();
  }

  private prepareAll() {
    const db = this.db;
    const cols = VERIFICATION_COLUMNS.join(', ');
    const params = VERIFICATION_COLUMNS.map(() => '?').join(', ');
    return {
      ping: db.prepare('SELECT 1'),
      insertVerification: db.prepare(`INSERT OR REPLACE INTO verifications (${cols}) VALUES (${params})`),
      getVerification: db.prepare('SELECT * FROM verifications WHERE id = ?'),
      findPending: db.prepare(
        `SELECT * FROM verifications WHERE to_number = ? AND channel = ? AND status = 'pending' AND expires_at > ?
         ORDER BY tarpit ASC, created_at DESC, rowid DESC LIMIT 1`,
      ),
      updateAttempt: db.prepare('UPDATE verifications SET attempts = ?, status = ?, updated_at = ? WHERE id = ?'),
      setCodes: db.prepare(`UPDATE verifications SET codes = ?, expires_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'`),
      updateCodes: db.prepare(
        `UPDATE verifications SET codes = ?, sends = sends + 1, last_sent_at = ?, resend_after = ?, expires_at = ?,
         updated_at = ? WHERE id = ?`,
      ),
      transition: db.prepare(
        `UPDATE verifications SET status = ?, updated_at = ?, failure_reason = coalesce(?, failure_reason),
         sender = coalesce(?, sender), approved_by = coalesce(?, approved_by) WHERE id = ? AND status = 'pending'`,
      ),
      getCounter: db.prepare('SELECT state, expires_at FROM counters WHERE key = ?'),
      putCounter: db.prepare(
        `INSERT INTO counters (key, state, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at`,
      ),
      // State only: leaves the counters_expires index alone (an UPSERT that names expires_at rewrites its
      // entry even when the value is the same).
      updateCounterState: db.prepare('UPDATE counters SET state = ? WHERE key = ?'),
      deleteCounter: db.prepare('DELETE FROM counters WHERE key = ?'),
      // Changes only when ANOTHER connection committed (our own commits leave it alone).
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      userVersion: db.prepare('PRAGMA user_version').pluck(),
      // One statement: inserted, or replaced only if the old token had expired; `changes` says which.
      useOnce: db.prepare(
        `INSERT INTO once_tokens (key, expires_at) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE once_tokens.expires_at <= ?`,
      ),
      putApiKey: db.prepare(
        `INSERT OR REPLACE INTO api_keys (id, name, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      getApiKey: db.prepare('SELECT * FROM api_keys WHERE id = ?'),
      listApiKeys: db.prepare('SELECT * FROM api_keys ORDER BY created_at, id'),
      revokeApiKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      touchApiKey: db.prepare('UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?), ?) WHERE id = ?'),
      putListEntry: db.prepare(
        `INSERT OR REPLACE INTO list_entries (id, list, kind, value, note, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      removeListEntry: db.prepare('DELETE FROM list_entries WHERE id = ?'),
      listEntries: db.prepare(
        `SELECT * FROM list_entries WHERE (expires_at IS NULL OR expires_at > @now)
         AND (@list IS NULL OR list = @list) AND (@kind IS NULL OR kind = @kind) ORDER BY created_at, id`,
      ),
      bumpListsVersion: db.prepare(`UPDATE meta SET value = value + 1 WHERE key = 'lists_version'`),
      listsVersion: db.prepare(`SELECT value FROM meta WHERE key = 'lists_version'`),
      probeWrite: db.prepare(`INSERT INTO meta (key, value) VALUES ('readiness_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
      getSetting: db.prepare('SELECT value FROM settings WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)'),
      putSetting: db.prepare('INSERT OR REPLACE INTO settings (key, value, expires_at) VALUES (?, ?, ?)'),
      putJournal: db.prepare('INSERT OR REPLACE INTO journal (key, at, value) VALUES (?, ?, ?)'),
      deleteJournal: db.prepare('DELETE FROM journal WHERE key = ?'),
      listJournal: db.prepare('SELECT key, at, value FROM journal WHERE at <= ? ORDER BY at, key LIMIT ?'),
      deleteSetting: db.prepare('DELETE FROM settings WHERE key = ?'),
      // substr, not LIKE/GLOB: setting keys may contain % _ * ? and must match literally.
      listSettings: db.prepare(
        `SELECT key, value FROM settings WHERE substr(key, 1, length(@prefix)) = @prefix AND (expires_at IS NULL OR expires_at > @now)
         ORDER BY key`,
      ),
      insertEvent: db.prepare(
        'INSERT INTO events (id, at, type, to_number, prefix, ip, device_id, decision, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertReason: db.prepare('INSERT OR IGNORE INTO event_reasons (reason, seq) VALUES (?, ?)'),
      // The same batch of the oldest events in both (one transaction: the subqueries see the same rows).
      purgeReasons: db.prepare('DELETE FROM event_reasons WHERE seq IN (SELECT seq FROM events WHERE at < ? ORDER BY seq LIMIT ?)'),
      purgeEvents: db.prepare('DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE at < ? ORDER BY seq LIMIT ?)'),
      sweepCounters: db.prepare('DELETE FROM counters WHERE key IN (SELECT key FROM counters WHERE expires_at <= ? LIMIT ?)'),
      sweepTokens: db.prepare('DELETE FROM once_tokens WHERE key IN (SELECT key FROM once_tokens WHERE expires_at <= ? LIMIT ?)'),
      sweepSettings: db.prepare(
        'DELETE FROM settings WHERE key IN (SELECT key FROM settings WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)',
      ),
      sweepLists: db.prepare(
        'DELETE FROM list_entries WHERE id IN (SELECT id FROM list_entries WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)',
      ),
      sweepVerifications: db.prepare('DELETE FROM verifications WHERE id IN (SELECT id FROM verifications WHERE expires_at <= ? LIMIT ?)'),
    };
  }

  /**
   * Delete everything expired at `now` (verifications once they are `verificationRetentionMs` past expiry).
   * Returns the number of rows removed. Runs in batches so other writers are not blocked for long.
   */
  sweep(now: number): number {
    this.begin();
    let total = 0;
    for (;;) {
      const n = this.txSweep(now, SWEEP_BATCH);
      total += n;
      if (n === 0) return total;
    }
  }

  private sweepInTx(now: number, batch: number): number {
    const st = this.st;
    const counters = st.sweepCounters.run(now, batch).changes;
    // A cached row may be gone now (an UPDATE of it would change nothing): forget them all.
    if (counters > 0) this.counterCache.clear();
    return (
      counters +
      st.sweepTokens.run(now, batch).changes +
      st.sweepSettings.run(now, batch).changes +
      st.sweepLists.run(now, batch).changes +
      st.sweepVerifications.run(now - this.retentionMs, batch).changes
    );
  }

  /** Called after writes: one small sweep batch every `sweepEveryWrites` writes, with that write's `now`. */
  private wrote(now: number): void {
    if (this.sweepEvery <= 0) return;
    if (++this.writes % this.sweepEvery === 0) this.txSweep(now, SWEEP_BATCH);
  }

  /**
   * Resolves with `value` once everything committed so far is on disk: after an fdatasync of the WAL that
   * began after this call. Writes arriving while a flush runs share the next one (group commit).
   */
  private durable<T>(value: T): Promise<T> {
    if (this.walPath === null) return Promise.resolve(value);
    return new Promise<T>((resolve, reject) => {
      const w = { resolve: () => resolve(value), reject };
      // In an open batch: flushed once the batch has committed (commitBatch hands it to the barrier).
      if (this.batchOpen) this.batchWaiters.push(w);
      else {
        this.waiting.push(w);
        this.scheduleFlush();
      }
    });
  }

  /** Before a write: open this turn's batch unless one is open (BEGIN IMMEDIATE takes the write lock). */
  private begin(): void {
    if (!this.batching) {
      this.settleBatches();
      return;
    }
    if (this.batchOpen) {
      // A loop that writes without yielding (a script, a bulk job) commits every BATCH_MAX_WRITES writes
      // instead of building one transaction as large as its run.
      if (this.db.inTransaction && this.batchWrites < BATCH_MAX_WRITES) {
        this.batchWrites++;
        return;
      }
      // Else full, or SQLite rolled the batch back by itself (an I/O error, a full disk): its writes are gone.
      this.commitBatch();
    }
    this.settleBatches();
    this.db.exec('BEGIN IMMEDIATE');
    this.batchOpen = true;
    this.batchWrites = 1;
    if (this.batchKey !== null) openBatches.set(this.batchKey, this);
    setImmediate(this.commitSoon);
  }

  /**
   * Before a read or write: settle our own batch if SQLite rolled it back by itself (its durable writes are
   * rejected and the counter cache, which may hold undone states, is dropped), and commit another store's open
   * batch on this file (this process): its lock would block us, its writes be unseen.
   */
  private settleBatches(): void {
    if (this.batchOpen && !this.db.inTransaction) this.commitBatch();
    if (this.batchKey === null) return;
    const peer = openBatches.get(this.batchKey);
    if (peer !== undefined && peer !== this) peer.commitBatch();
  }

  /** Commit the open batch, if any, and hand its durable writes to the barrier (or reject them). */
  commitBatch(): void {
    if (!this.batchOpen) return;
    this.batchOpen = false;
    if (this.batchKey !== null && openBatches.get(this.batchKey) === this) openBatches.delete(this.batchKey);
    const waiters = this.batchWaiters;
    this.batchWaiters = [];
    let failure: Error | null = null;
    if (!this.db.inTransaction) failure = new Error('SQLite rolled back a write batch (see the error of the write that failed)');
    else {
      try {
        this.db.exec('COMMIT');
        this.commits++;
        if (this.walPath === null) this.writeFailure = null; // no flush follows: the commit is the success
      } catch (err) {
        failure = err as Error;
        try {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
        } catch {
          /* already rolled back */
        }
      }
    }
    if (failure) {
      this.writeFailure = failure;
      // The cache may hold states that were never committed.
      this.counterCache.clear();
      for (const w of waiters) w.reject(failure);
      return;
    }
    if (waiters.length > 0) {
      for (const w of waiters) this.waiting.push(w);
      // Now, not a turn later: this is already the end of the turn whose writes share the flush.
      this.flush();
    }
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate: let the other requests of this event-loop turn commit first, so they share the flush.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    // Normally committed already (its setImmediate was queued first); the fdatasync must start after it.
    this.commitBatch();
    if (this.flushing || this.waiting.length === 0) return;
    const batch = this.waiting;
    this.waiting = [];
    let fd: number;
    try {
      fd = this.openWal();
    } catch (err) {
      // The WAL file is gone (the database deleted or moved while the server runs, a chaos review did it):
      // an outage (503, readiness failing), not a 500 per request.
      const failure = flushFailure(err, 'cannot open the WAL file to flush it: was the database deleted or moved while the server runs?');
      this.writeFailure = failure;
      for (const w of batch) w.reject(failure);
      return;
    }
    this.flushing = true;
    this.flushes++;
    this.fdatasync(fd, (err) => {
      this.flushing = false;
      const failure = err ? flushFailure(err, 'cannot flush the WAL file to disk') : null;
      this.writeFailure = failure;
      for (const w of batch) {
        if (failure) w.reject(failure);
        else w.resolve();
      }
      if (this.waiting.length > 0) this.scheduleFlush();
    });
  }

  /** Our descriptor of the WAL file, reopened if SQLite replaced the file (it deletes it when the last connection closes). */
  private openWal(): number {
    if (this.walFd !== null && fs.fstatSync(this.walFd).nlink > 0) return this.walFd;
    if (this.walFd !== null) fs.closeSync(this.walFd);
    this.walFd = null;
    this.walFd = fs.openSync(this.walPath!, 'r');
    return this.walFd;
  }

  async ping(): Promise<void> {
    this.st.ping.get();
    this.checkSchema();
    this.checkFile();
    if (this.writeFailure !== null) {
      this.begin();
      this.st.probeWrite.run(Date.now());
      await this.durable(undefined);
    }
  }

  /**
   * The database file must still be the one this process opened. Deleted or replaced under it, SQLite goes on
   * writing to the unlinked file (lost at the next start) while every flush fails: readiness fails instead of
   * answering ready (a chaos review found /readyz 200 while every write failed). One stat per probe.
   */
  private checkFile(): void {
    if (this.fileIno === null || this.batchKey === null) return;
    const now = fs.statSync(this.batchKey, { throwIfNoEntry: false });
    if (now === undefined || now.ino !== this.fileIno || now.dev !== this.fileDev) {
      throw new StoreUnavailableError(`the SQLite file ${this.batchKey} was deleted or replaced while the server runs: restart it (what was written since is in the unlinked file only)`);
    }
  }

  /**
   * Refuse to go on with a file a newer version migrated while this process runs (a rolling deploy that
   * overlaps on one file): its rows may be in a format this version cannot read (an ops review saw an older
   * build answer every send with 500 while its /readyz said 200). Checked by the readiness probe and whenever
   * another connection has committed (`PRAGMA data_version` moved), so the cost is one pragma read then.
   */
  private checkSchema(): void {
    const version = this.st.userVersion.get() as number;
    if (version > MIGRATIONS.length) {
      throw new StoreUnavailableError(`SQLite schema version ${version} is newer than this OTP Shield (${MIGRATIONS.length}): a newer version migrated the file; stop this process`);
    }
  }

  async close(): Promise<void> {
    this.commitBatch();
    // Let acknowledged-but-unflushed writes reach the disk before the descriptor and the database close.
    if (this.walPath !== null && (this.waiting.length > 0 || this.flushing)) await this.durable(undefined).catch(() => {});
    if (this.walFd !== null) {
      fs.closeSync(this.walFd);
      this.walFd = null;
    }
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }

  // ---- verifications ----

  async createVerification(v: Verification): Promise<void> {
    this.begin();
    this.st.insertVerification.run(...verificationValues(v, (b) => (b ? 1 : 0)));
    return this.durable(undefined);
  }

  async consumeLimitsAndCreate(specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite): Promise<LimitOutcome> {
    this.begin();
    const out = this.txConsumeAndCreate(specs, v, now, journal);
    this.wrote(now);
    // Durable like createVerification when something was created; a refusal wrote nothing.
    return out.allowed ? this.durable(out) : out;
  }

  private getRow(id: string): Verification | null {
    const r = this.st.getVerification.get(id) as VerificationRow | undefined;
    return r ? verificationFromRow(r) : null;
  }

  settled(): Promise<void> {
    // Nothing committed since the last flush began and no flush running: everything visible is on disk.
    if (!this.batchOpen && this.waiting.length === 0 && !this.flushing) return Promise.resolve();
    return this.durable(undefined);
  }

  async getVerification(id: string): Promise<Verification | null> {
    this.settleBatches();
    return this.getRow(id);
  }

  async findPending(to: string, channel: Channel, now: number): Promise<Verification | null> {
    this.settleBatches();
    const r = this.st.findPending.get(to, channel, now) as VerificationRow | undefined;
    return r ? verificationFromRow(r) : null;
  }

  private addCodeInTx(id: string, code: StoredCode, o: AddCodeOptions): Verification | null {
    const v = this.getRow(id);
    if (!v || v.status !== 'pending' || v.expiresAt <= o.now) return null;
    const codes = keepNewest([...v.codes, code], o.keep);
    this.st.updateCodes.run(JSON.stringify(codes), o.now, o.resendAfter, code.expiresAt, o.now, id);
    if (o.journal) this.journalInTx(o.journal);
    return this.getRow(id);
  }

  async addCode(id: string, code: StoredCode, opts: AddCodeOptions): Promise<Verification | null> {
    this.begin();
    return this.durable(this.txAddCode(id, code, opts));
  }

  async withdrawCode(id: string, hash: string, now: number): Promise<boolean> {
    this.begin();
    // One statement reads and writes the row: better-sqlite3 runs it synchronously, so nothing interleaves.
    const v = this.getRow(id);
    if (!v || v.status !== 'pending' || !v.codes.some((c) => c.hash === hash)) return this.durable(false);
    const codes = v.codes.filter((c) => c.hash !== hash);
    this.st.setCodes.run(JSON.stringify(codes), expiryAfterWithdrawal(codes, v.expiresAt), now, id);
    return this.durable(true);
  }

  private reserveInTx(id: string, now: number): AttemptResult {
    const v = this.getRow(id);
    if (!v) return { ok: false, reason: 'not_found', verification: null };
    if (v.status !== 'pending') {
      return { ok: false, reason: v.status === 'locked' ? 'locked' : v.status === 'expired' ? 'expired' : 'not_pending', verification: v };
    }
    if (v.expiresAt <= now) return { ok: false, reason: 'expired', verification: v };
    // Out of attempts: refused, but the status is left to the attempts in flight (see Store.reserveAttempt).
    if (v.attempts >= v.maxAttempts) return { ok: false, reason: 'locked', verification: v };
    this.st.updateAttempt.run(v.attempts + 1, 'pending', now, id);
    return { ok: true, verification: { ...v, attempts: v.attempts + 1, updatedAt: now } };
  }

  async reserveAttempt(id: string, now: number): Promise<AttemptResult> {
    // Not awaited on the barrier: the check that reserved ends with an audit event whose flush covers this
    // write before any response. Waiting here would also let parallel checks of one verification all reserve
    // before the first one compares, turning a double-submitted right code into a lockout.
    this.begin();
    return this.txReserve(id, now);
  }

  async transition(
    id: string,
    status: Exclude<VerificationStatus, 'pending' | 'expired'>,
    now: number,
    extra?: { failureReason?: string; sender?: string; approvedBy?: string },
  ): Promise<boolean> {
    // A single conditional UPDATE: SQLite serialises writers, so exactly one racer sees status = 'pending'.
    this.begin();
    return this.durable(this.st.transition.run(status, now, extra?.failureReason ?? null, extra?.sender ?? null, extra?.approvedBy ?? null, id).changes === 1);
  }

  // ---- rate-limit counters ----

  /** Drop the counter cache if another connection committed since it was last validated. */
  private validateCounterCache(): void {
    const v = this.st.dataVersion.get() as number;
    if (v !== this.cacheVersion) {
      this.counterCache.clear();
      this.checkSchema();
      this.cacheVersion = v;
    }
  }

  private cacheCounter(key: string, entry: CachedCounter | null): void {
    if (this.counterCacheMax === 0) return;
    const c = this.counterCache;
    c.delete(key);
    c.set(key, entry);
    if (c.size > this.counterCacheMax) c.delete(c.keys().next().value as string);
  }

  /** The stored row of each key (cache first, see `counterCache`; the caller validated it). */
  private loadRows(specs: readonly { key: string }[]): Map<string, CachedCounter> {
    const rows = new Map<string, CachedCounter>();
    const c = this.counterCache;
    for (const s of specs) {
      if (rows.has(s.key)) continue;
      let e = c.get(s.key);
      if (e === undefined) {
        const r = this.st.getCounter.get(s.key) as { state: string; expires_at: number } | undefined;
        e = r ? { state: decodeCounterRow(r.state), expiresAt: r.expires_at } : null;
        this.cacheCounter(s.key, e);
      }
      if (e) rows.set(s.key, e);
    }
    return rows;
  }

  private consumeInTx(specs: LimitSpec[], now: number): LimitOutcome {
    // Inside BEGIN IMMEDIATE: nobody else can commit until we do, so a cache valid now stays valid.
    this.validateCounterCache();
    const rows = this.loadRows(specs);
    const { outcome, writes } = applyLimits(specs, now, { get: (k) => rows.get(k)?.state as WindowState | undefined });
    for (const w of writes) this.writeCounter(w.key, w.state, encodeWindowRow(w.state, w.windowMs), w.expiresAt, w.windowMs, rows.get(w.key));
    return outcome;
  }

  /** Write one counter row (and the cache). `old`: the row as loaded in this transaction, if it existed. */
  private writeCounter(key: string, state: WindowState | TallyState, text: string, realExpiry: number, windowMs: number, old: CachedCounter | undefined): void {
    const expiresAt = storedCounterExpiry(realExpiry, windowMs);
    // Same expiry: update the state only (no index churn). `changes` guards against a row that is gone.
    if (old === undefined || old.expiresAt !== expiresAt || this.st.updateCounterState.run(text, key).changes !== 1) {
      this.st.putCounter.run(key, text, expiresAt);
    }
    this.cacheCounter(key, { state, expiresAt });
  }

  /** Inside txTally; a read (no gate, every cost 0) writes nothing and also runs outside a transaction. */
  private tallyInTx(gate: LimitSpec | null, tallies: TallySpec[], now: number): TallyOutcome {
    const counted = gate ? this.consumeInTx([gate], now).allowed : true;
    this.validateCounterCache();
    const rows = this.loadRows(tallies);
    // Rows of a tally key hold a TallyState (callers never use one key for both kinds; applyTallies reads a
    // state with the wrong number of windows as empty).
    const { counts, writes } = applyTallies(tallies, now, { get: (k) => rows.get(k)?.state as TallyState | undefined }, counted);
    for (const w of writes) this.writeCounter(w.key, w.state, encodeTallyRow(w.state, w.windowsMs), w.expiresAt, w.windowMs, rows.get(w.key));
    return { counted, counts };
  }

  async consumeLimits(specs: LimitSpec[], now: number): Promise<LimitOutcome> {
    if (specs.length === 0) return { allowed: true, denied: [], counts: [] };
    this.begin();
    const out = this.txConsume(specs, now);
    this.wrote(now);
    return out;
  }

  async peekLimits(specs: LimitSpec[], now: number): Promise<number[]> {
    // Not in a transaction (as before, each read sees the latest commit): the cache is validated first, so
    // a cached row is at least as new as the data_version read just now.
    this.settleBatches();
    this.validateCounterCache();
    const rows = this.loadRows(specs);
    return peekCounts(specs, now, { get: (k) => rows.get(k)?.state as WindowState | undefined });
  }

  async resetLimits(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    this.begin();
    this.txReset(keys);
  }

  async tally(gate: LimitSpec | null, tallies: TallySpec[], now: number): Promise<TallyOutcome> {
    validateTallies(tallies);
    // A read (no gate, cost 0) writes nothing: the same step without a write transaction (as peekLimits).
    if (gate === null && tallies.every((t) => t.cost === 0)) {
      this.settleBatches();
      return this.tallyInTx(null, tallies, now);
    }
    this.begin();
    const out = this.txTally(gate, tallies, now);
    this.wrote(now);
    return out;
  }

  // ---- one-time tokens ----

  async useOnce(key: string, ttlMs: number, now: number): Promise<boolean> {
    this.begin();
    const first = this.st.useOnce.run(key, now + ttlMs, now).changes === 1;
    this.wrote(now);
    return first;
  }

  // ---- API keys ----

  async putApiKey(k: ApiKeyRecord): Promise<void> {
    this.begin();
    this.st.putApiKey.run(k.id, k.name, k.secretHash, JSON.stringify(k.scopes), k.createdAt, k.expiresAt, k.revokedAt, k.lastUsedAt);
    return this.durable(undefined);
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    this.settleBatches();
    const r = this.st.getApiKey.get(id) as ApiKeyRow | undefined;
    return r ? apiKeyFromRow(r) : null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    this.settleBatches();
    return (this.st.listApiKeys.all() as ApiKeyRow[]).map(apiKeyFromRow);
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    this.begin();
    return this.durable(this.st.revokeApiKey.run(now, id).changes === 1);
  }

  async touchApiKey(id: string, now: number): Promise<void> {
    this.begin();
    this.st.touchApiKey.run(now, now, id);
  }

  // ---- block/allow lists ----

  async putListEntry(e: ListEntry): Promise<void> {
    this.begin();
    this.txPutList(e);
    return this.durable(undefined);
  }

  async removeListEntry(id: string): Promise<boolean> {
    this.begin();
    return this.durable(this.txRemoveList(id));
  }

  async listEntries(now: number, filter?: { list?: ListAction; kind?: ListKind }): Promise<ListEntry[]> {
    this.settleBatches();
    return (this.st.listEntries.all({ now, list: filter?.list ?? null, kind: filter?.kind ?? null }) as ListRow[]).map(listFromRow);
  }

  async listsVersion(): Promise<number> {
    this.settleBatches();
    return (this.st.listsVersion.get() as { value: number }).value;
  }

  // ---- settings ----

  async getSetting<T = unknown>(key: string, now?: number): Promise<T | null> {
    this.settleBatches();
    const r = this.st.getSetting.get(key, now ?? this.clock()) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as T) : null;
  }

  async putSetting(key: string, value: unknown, ttlMs?: number, now?: number): Promise<void> {
    this.begin();
    const t = now ?? this.clock();
    this.st.putSetting.run(key, JSON.stringify(value ?? null), ttlMs === undefined ? null : t + ttlMs);
    if (ttlMs !== undefined) this.wrote(t);
    return this.durable(undefined);
  }

  async deleteSetting(key: string): Promise<void> {
    this.begin();
    this.st.deleteSetting.run(key);
    return this.durable(undefined);
  }

  async listSettings<T = unknown>(prefix: string, now?: number): Promise<{ key: string; value: T }[]> {
    this.settleBatches();
    const rows = this.st.listSettings.all({ prefix, now: now ?? this.clock() }) as { key: string; value: string }[];
    return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
  }

  // ---- audit events ----

  private appendInTx(events: AuditEvent[]): void {
    for (const e of events) {
      const seq = this.st.insertEvent.run(
        e.id, e.at, e.type, e.to ?? null, e.prefix ?? null, e.ip ?? null, e.deviceId ?? null, e.decision ?? null,
        JSON.stringify(eventBody(e)),
      ).lastInsertRowid;
      for (const r of e.reasons ?? []) this.st.insertReason.run(r, seq);
    }
  }

  // ---- journal ----

  async putJournal(key: string, at: number, value: unknown, opts?: { covered?: boolean }): Promise<void> {
    this.begin();
    this.journalInTx({ key, at, value });
    // Covered: the caller's next durable write commits after this one, and its flush takes this one along.
    if (opts?.covered === true) return;
    return this.durable(undefined);
  }

  private journalInTx(j: JournalWrite): void {
    this.st.putJournal.run(j.key, j.at, JSON.stringify(j.value ?? null));
  }

  async deleteJournal(key: string): Promise<void> {
    this.begin();
    this.st.deleteJournal.run(key);
    return this.durable(undefined);
  }

  async listJournal<T = unknown>(before: number, limit: number): Promise<JournalRecord<T>[]> {
    this.settleBatches();
    const rows = this.st.listJournal.all(before, Math.max(0, limit)) as { key: string; at: number; value: string }[];
    return rows.map((r) => ({ key: r.key, at: r.at, value: JSON.parse(r.value) as T }));
  }

  async appendEvents(events: AuditEvent[], forget?: string): Promise<void> {
    if (events.length === 0 && forget === undefined) return;
    this.begin();
    this.txAppend(events, forget);
    return this.durable(undefined);
  }

  async queryEvents(q: EventQuery): Promise<AuditEvent[]> {
    if (q.limit <= 0) return [];
    this.settleBatches();
    const where: string[] = [];
    const args: unknown[] = [];
    const eq = (col: string, v: string | undefined): void => {
      if (v === undefined) return;
      where.push(`${col} = ?`);
      args.push(v);
    };
    if (q.from !== undefined) { where.push('at >= ?'); args.push(q.from); }
    if (q.to !== undefined) { where.push('at < ?'); args.push(q.to); }
    eq('type', q.type);
    eq('to_number', q.number);
    // A range over the destination's index: every string that starts with the prefix sorts between it and the
    // prefix followed by ':' (the character after '9'); the prefix is a + and digits (the route checks it).
    if (q.prefix !== undefined) {
      where.push("((to_number >= ? AND to_number < ? AND instr(to_number, '@') = 0) OR (prefix >= ? AND prefix < ? AND instr(prefix, '@') = 0))");
      args.push(q.prefix, `${q.prefix}:`, q.prefix, `${q.prefix}:`);
    }
    eq('ip', q.ip);
    eq('device_id', q.deviceId);
    eq('decision', q.decision);
    if (q.reason !== undefined) { where.push('seq IN (SELECT seq FROM event_reasons WHERE reason = ?)'); args.push(q.reason); }
    if (q.before !== undefined) { where.push('seq < ?'); args.push(q.before); }
    if (q.after !== undefined) { where.push('seq > ?'); args.push(q.after); }
    const sql = `SELECT seq, body FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
    args.push(Math.floor(q.limit));
    let stmt = this.eventQueries.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      // The set of shapes is finite (one per filter combination); the cap is only a guard.
      if (this.eventQueries.size < 512) this.eventQueries.set(sql, stmt);
    }
    return (stmt.all(...args) as { seq: number; body: string }[]).map((r) => ({ ...(JSON.parse(r.body) as AuditEvent), seq: r.seq }));
  }

  private purgeInTx(before: number, batch: number): number {
    this.st.purgeReasons.run(before, batch);
    return this.st.purgeEvents.run(before, batch).changes;
  }

  /**
   * In batches of PURGE_BATCH events, each its own transaction, with the event loop free between them (at most
   * PURGE_MAX_BATCHES a call: the maintenance loop comes back a minute later). One DELETE of a backlog — a
   * retention lowered from 90 to 30 days, a server that was off — held the event loop, and every request, for
   * as long as it took (the PostgreSQL store's purge had the same shape and never finished: docs/postgres.md).
   */
  async purgeEvents(before: number): Promise<number> {
    let total = 0;
    for (let i = 0; i < PURGE_MAX_BATCHES; i++) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      this.begin();
      const n = this.txPurge(before, PURGE_BATCH);
      total += n;
      if (n < PURGE_BATCH) break;
    }
    return this.durable(total);
  }

  async subjectRecords(names: readonly string[], erase: boolean, keyParts: readonly string[] = names): Promise<SubjectRecords> {
    // Found outside the write lock (full scans would hold every other writer of the file), erased under it.
    this.settleBatches();
    const db = this.db;
    const out: SubjectRecords = { verifications: [], events: [], listEntries: [], keys: [], journal: [] };
    const like = (table: string, col: string, parts: readonly string[] = names) => {
      const rows: Record<string, unknown>[] = [];
      for (const n of parts) rows.push(...(db.prepare(`SELECT * FROM ${table} WHERE ${col} LIKE ? ESCAPE '\\'`).all(containsPattern(n)) as Record<string, unknown>[]));
      return rows;
    };
    const inList = names.map(() => '?').join(', ');
    out.verifications = (db.prepare(`SELECT * FROM verifications WHERE to_number IN (${inList})`).all(...names) as VerificationRow[]).map(verificationFromRow);
    const seqs = new Set<number>();
    for (const r of like('events', 'body') as { seq: number; body: string }[]) {
      if (seqs.has(r.seq) || !textNames(r.body, names)) continue;
      seqs.add(r.seq);
      out.events.push({ ...(JSON.parse(r.body) as AuditEvent), seq: r.seq });
    }
    out.events.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    out.listEntries = (db.prepare('SELECT * FROM list_entries').all() as ListRow[]).map(listFromRow).filter((e) => names.includes(e.value) || textNames(e.note, names));
    const keys = new Set<string>();
    for (const table of ['counters', 'once_tokens', 'settings']) for (const r of like(table, 'key', keyParts) as { key: string }[]) if (keyNames(r.key, keyParts)) keys.add(r.key);
    out.keys = [...keys].sort();
    out.journal = [...new Set((like('journal', 'value') as { key: string; value: string }[]).filter((r) => textNames(r.value, names)).map((r) => r.key))].sort();
    if (!erase) return out;
    this.begin();
    // Deleted content is overwritten (not left in free pages of the file: a privacy review found erased numbers
    // there), and the WAL is checkpointed afterwards so that no older copy of a page stays in it.
    db.pragma('secure_delete = ON');
    try {
      db.transaction(() => {
        for (const v of out.verifications) db.prepare('DELETE FROM verifications WHERE id = ?').run(v.id);
        for (const seq of seqs) {
          db.prepare('DELETE FROM event_reasons WHERE seq = ?').run(seq);
          db.prepare('DELETE FROM events WHERE seq = ?').run(seq);
        }
        for (const e of out.listEntries) {
          if (entryIsSubject(e, names)) db.prepare('DELETE FROM list_entries WHERE id = ?').run(e.id);
          else db.prepare('UPDATE list_entries SET note = ? WHERE id = ?').run(e.note === null ? null : redactText(e.note, names), e.id);
        }
        if (out.listEntries.length > 0) this.st.bumpListsVersion.run();
        for (const k of out.keys) for (const table of ['counters', 'once_tokens', 'settings']) db.prepare(`DELETE FROM ${table} WHERE key = ?`).run(k);
        for (const k of out.journal) db.prepare('DELETE FROM journal WHERE key = ?').run(k);
      })();
    } finally {
      db.pragma('secure_delete = FAST');
      this.counterCache.clear();
    }
    const done = await this.durable(out);
    // Best effort: while another connection reads (a running server), the WAL keeps older copies of the pages
    // until it is next restarted; SQLite answers busy then rather than failing (docs/privacy.md says so).
    if (!db.inTransaction) {
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        /* the checkpoint thread copies the overwritten pages soon */
      }
    }
    return done;
  }
}

/** A failure of the WAL flush (open or fdatasync): the store is unavailable (503), with the cause kept. */
function flushFailure(err: unknown, what: string): StoreUnavailableError {
  const e = new StoreUnavailableError(`SQLite: ${what} (${err instanceof Error ? err.message : String(err)})`);
  (e as { cause?: unknown }).cause = err;
  return e;
}
