/**
 * PostgreSQL store (pg): for deployments that already run PostgreSQL and want several instances.
 *
 * Atomicity without read-modify-write in JS, one round trip per operation on the hot paths:
 * - reserveAttempt / transition / addCode / useOnce are single conditional UPDATE / INSERT ... ON CONFLICT
 *   statements. Under READ COMMITTED a concurrent update of the same row makes PostgreSQL wait and
 *   re-check the WHERE clause against the newest row version, so exactly one racer wins each step.
 *   (reserveAttempt needs a second SELECT only when it refuses, to say why.)
 * - consumeLimits is one call of a PL/pgSQL function (`consume_limits`) that takes transaction-scoped
 *   advisory locks on the keys in a fixed order (no deadlocks), then applies the rule of engine/window.ts
 *   exactly as codec.ts applyLimits does. One round trip per decision.
 * - appendEvents is one function call that serialises appenders with an advisory lock, so `seq` values
 *   become visible in increasing order (export cursors `after=seq` never skip a late-committing event).
 *
 * BIGINT columns are parsed to JS numbers by a pool-local type parser (epoch ms and counts are far below
 * 2^53); no global pg type state is touched.
 *
 * Schema: everything lives in one schema (default `otpshield`), created and migrated by `init()` under an
 * advisory lock (several instances may start at once). Versions are recorded in `<schema>.meta`.
 */
import pg from 'pg';
import type {
  ApiKeyRecord, ApiScope, AttemptResult, AuditEvent, Channel, EventQuery, JournalRecord, JournalWrite, AddCodeOptions, LimitOutcome, LimitSpec, ListAction,
  ListEntry, ListKind, PoolStats, Store, StoredCode, SubjectRecords, TallyOutcome, TallySpec, Verification, VerificationStatus,
} from './interface.ts';
import { containsPattern, entryIsSubject, keyNames, redactText, textNames } from './subject.ts';

/** An access or erasure request scans whole tables: it gets longer than a request's statement timeout. */
const SUBJECT_TIMEOUT_MS = 300_000;
import type { WindowState } from '../engine/window.ts';
import {
  tallyAsLimits, tallyFromLimits, DEFAULT_VERIFICATION_RETENTION_MS, eventBody, peekCounts, validateSpecs, VERIFICATION_COLUMNS, verificationFromRow,
  verificationValues, type VerificationRow,
} from './codec.ts';
import { StoreUnavailableError } from './errors.ts';

export interface PostgresStoreOptions {
  /** Schema holding every table (created if missing). Default `otpshield`. Letters, digits, `_` only. */
  schema?: string;
  /** Pool size. Default 10 (`store.postgresPoolSize`). */
  poolSize?: number;
  /**
   * Of the pool, at most this many connections at once for the slow reads and writes: event search and export,
   * retention's purge, the sweep, subject requests. The rest stay free for sends and checks, which a few
   * dashboard searches over millions of events held for seconds each and stalled (a PostgreSQL review).
   * Default: a quarter of the pool, at least 1.
   */
  slowQueries?: number;
  /**
   * Connecting, waiting for a free connection, and each statement (cancelled by the server, so it rolls back):
   * at most this long, then 503. Default 5000 ms (`store.timeoutMs`).
   */
  timeoutMs?: number;
  /** How long a verification stays readable after it expired. Default 24 h. */
  verificationRetentionMs?: number;
  /** Clock for the methods whose `now` is optional (settings). Default Date.now. */
  clock?: () => number;
  /** Run `sweep(now)` in the background every this many writes. Default 1000; 0 disables. */
  sweepEveryWrites?: number;
}

/** `init`: the wait for another instance's migration, and each migration step. */
const MIGRATION_TIMEOUT_MS = 10 * 60_000;
/**
 * `init`: how long a migration's DDL may wait for a table lock. Every query on that table queues behind a
 * waiting ALTER, so a migration stuck behind a long reader (a pg_dump, an export) stopped all traffic (a review
 * measured 22 s behind a 20 s reader; up to the 10 minutes above): it gives up after this, rolls back and
 * tries again after a growing pause (0.5 s to 5 s), up to `MIGRATION_LOCK_ATTEMPTS` times (about 4 minutes),
 * then start-up fails saying why. Short, so that the queries it holds up while it waits are held a moment.
 */
const MIGRATION_LOCK_TIMEOUT_MS = 200;
const MIGRATION_LOCK_ATTEMPTS = 60;
/** Rows per statement of retention's purge and of the sweep: each batch is a statement of its own. */
const DELETE_BATCH = 5000;
/** Batches per purge or sweep call at most (the maintenance loop comes back a minute later). */
const MAX_DELETE_BATCHES = 200;

const INT8_OID = 20;
const NUMERIC_OID = 1700;

function migrations(s: string): string[] {
  return [
    `
    CREATE TABLE ${s}.verifications (
      id text PRIMARY KEY,
      to_number text NOT NULL,
      channel text NOT NULL,
      locale text,
      status text NOT NULL,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL,
      expires_at bigint NOT NULL,
      attempts integer NOT NULL,
      max_attempts integer NOT NULL,
      sends integer NOT NULL,
      last_sent_at bigint NOT NULL,
      resend_after bigint NOT NULL,
      codes jsonb NOT NULL,
      client json NOT NULL,
      tarpit boolean NOT NULL,
      sender text,
      failure_reason text
    );
    CREATE INDEX verifications_pending ON ${s}.verifications (to_number, channel, created_at) WHERE status = 'pending';
    CREATE INDEX verifications_expires ON ${s}.verifications (expires_at);

    CREATE TABLE ${s}.counters (
      key text PRIMARY KEY,
      slots bigint[] NOT NULL,
      counts bigint[] NOT NULL,
      expires_at bigint NOT NULL
    );
    CREATE INDEX counters_expires ON ${s}.counters (expires_at);

    CREATE TABLE ${s}.once_tokens (key text PRIMARY KEY, expires_at bigint NOT NULL);
    CREATE INDEX once_tokens_expires ON ${s}.once_tokens (expires_at);

    CREATE TABLE ${s}.api_keys (
      id text PRIMARY KEY,
      name text,
      secret_hash text NOT NULL,
      scopes json NOT NULL,
      created_at bigint NOT NULL,
      expires_at bigint,
      revoked_at bigint,
      last_used_at bigint
    );

    CREATE TABLE ${s}.list_entries (
      id text PRIMARY KEY,
      list text NOT NULL,
      kind text NOT NULL,
      value text NOT NULL,
      note text,
      created_at bigint NOT NULL,
      expires_at bigint
    );
    CREATE INDEX list_entries_list_kind ON ${s}.list_entries (list, kind);
    INSERT INTO ${s}.meta (key, value) VALUES ('lists_version', 0);

    CREATE TABLE ${s}.settings (key text PRIMARY KEY, value json NOT NULL, expires_at bigint);
    CREATE INDEX settings_expires ON ${s}.settings (expires_at) WHERE expires_at IS NOT NULL;

    CREATE TABLE ${s}.events (
      seq bigserial PRIMARY KEY,
      id text NOT NULL,
      at bigint NOT NULL,
      type text NOT NULL,
      to_number text,
      prefix text,
      ip text,
      device_id text,
      decision text,
      reasons text[] NOT NULL,
      body json NOT NULL
    );
    CREATE INDEX events_at ON ${s}.events (at);
    CREATE INDEX events_type ON ${s}.events (type, seq);
    CREATE INDEX events_to ON ${s}.events (to_number, seq) WHERE to_number IS NOT NULL;
    CREATE INDEX events_prefix ON ${s}.events (prefix, seq) WHERE prefix IS NOT NULL;
    CREATE INDEX events_ip ON ${s}.events (ip, seq) WHERE ip IS NOT NULL;
    CREATE INDEX events_device ON ${s}.events (device_id, seq) WHERE device_id IS NOT NULL;
    CREATE INDEX events_decision ON ${s}.events (decision, seq) WHERE decision IS NOT NULL;
    -- reasons @> ARRAY[...] uses this index: filtering by reason is indexable, no LIKE over JSON.
    CREATE INDEX events_reasons ON ${s}.events USING gin (reasons);

    -- The rule of src/engine/window.ts, applied to every spec of one request atomically (see codec.ts
    -- applyLimits, which this mirrors line by line). Returns the outcome; writes only when all allow.
    CREATE FUNCTION ${s}.consume_limits(p_keys text[], p_limits bigint[], p_windows bigint[], p_costs bigint[], p_now bigint, p_lock_ns text)
    RETURNS TABLE (out_allowed boolean, out_counts bigint[], out_denied integer[], out_retry bigint[])
    LANGUAGE plpgsql AS $fn$
    DECLARE
      n integer := coalesce(array_length(p_keys, 1), 0);
      i integer;
      j integer;
      len integer;
      st_slots bigint[];
      st_counts bigint[];
      w bigint;
      lim bigint;
      cost bigint;
      sm bigint;
      c bigint;
      total bigint;
      r bigint;
      slot bigint;
      v_counts bigint[] := '{}';
      v_denied integer[] := '{}';
      v_retry bigint[] := '{}';
    BEGIN
      -- Serialise requests that share a key, in a fixed (hash) order so two requests never deadlock.
      PERFORM pg_advisory_xact_lock(h)
        FROM (SELECT DISTINCT hashtextextended(p_lock_ns || k, 0) AS h FROM unnest(p_keys) AS k ORDER BY 1) AS locks;

      -- Phase 1: evaluate every spec against the stored state.
      FOR i IN 1..n LOOP
        lim := p_limits[i]; w := p_windows[i]; cost := p_costs[i];
        sm := greatest(1, (w + 59) / 60);  -- slotMsFor: ceil(w / 60) for integer w >= 1
        SELECT t.slots, t.counts INTO st_slots, st_counts FROM ${s}.counters AS t WHERE t.key = p_keys[i];
        IF NOT FOUND THEN st_slots := '{}'; st_counts := '{}'; END IF;
        len := coalesce(array_length(st_slots, 1), 0);
        j := 1;
        WHILE j <= len AND st_slots[j] + sm <= p_now - w LOOP j := j + 1; END LOOP;  -- prune
        st_slots := st_slots[j:len]; st_counts := st_counts[j:len];
        len := coalesce(array_length(st_slots, 1), 0);
        c := 0;
        FOR j IN 1..len LOOP c := c + st_counts[j]; END LOOP;
        v_counts := v_counts || c;
        IF c + cost > lim THEN
          -- retryAfterMs
          IF cost > lim THEN
            r := w;
          ELSE
            total := c; r := NULL;
            FOR j IN 1..len LOOP
              EXIT WHEN total + cost <= lim;
              total := total - st_counts[j];
              IF total + cost <= lim THEN r := greatest(1, st_slots[j] + sm + w - p_now); EXIT; END IF;
            END LOOP;
            IF r IS NULL THEN r := CASE WHEN total + cost <= lim THEN 0 ELSE w END; END IF;
          END IF;
          v_denied := v_denied || i; v_retry := v_retry || r;
        END IF;
      END LOOP;
      IF coalesce(array_length(v_denied, 1), 0) > 0 THEN
        RETURN QUERY SELECT false, v_counts, v_denied, v_retry;
        RETURN;
      END IF;

      -- Phase 2: prune + add each spec's cost in spec order (a repeated key sees the earlier write).
      FOR i IN 1..n LOOP
        w := p_windows[i]; cost := p_costs[i];
        CONTINUE WHEN cost = 0;  -- a read: nothing is written (see codec.ts applyLimits)
        sm := greatest(1, (w + 59) / 60);
        SELECT t.slots, t.counts INTO st_slots, st_counts FROM ${s}.counters AS t WHERE t.key = p_keys[i];
        IF NOT FOUND THEN st_slots := '{}'; st_counts := '{}'; END IF;
        len := coalesce(array_length(st_slots, 1), 0);
        j := 1;
        WHILE j <= len AND st_slots[j] + sm <= p_now - w LOOP j := j + 1; END LOOP;
        st_slots := st_slots[j:len]; st_counts := st_counts[j:len];
        len := coalesce(array_length(st_slots, 1), 0);
        slot := floor(p_now::numeric / sm)::bigint * sm;
        IF len > 0 AND st_slots[len] = slot THEN
          st_counts[len] := st_counts[len] + cost;
        ELSE
          st_slots := st_slots || slot; st_counts := st_counts || cost; len := len + 1;
        END IF;
        INSERT INTO ${s}.counters AS t (key, slots, counts, expires_at)
          VALUES (p_keys[i], st_slots, st_counts, st_slots[len] + sm + w)
          ON CONFLICT (key) DO UPDATE SET slots = excluded.slots, counts = excluded.counts, expires_at = excluded.expires_at;
        v_counts[i] := v_counts[i] + cost;
      END LOOP;
      RETURN QUERY SELECT true, v_counts, v_denied, v_retry;
    END
    $fn$;

    -- Appends in order under one advisory lock: seq order = commit order.
    CREATE FUNCTION ${s}.append_events(p_events json, p_lock bigint) RETURNS integer
    LANGUAGE plpgsql AS $fn$
    DECLARE n integer;
    BEGIN
      PERFORM pg_advisory_xact_lock(p_lock);
      INSERT INTO ${s}.events (id, at, type, to_number, prefix, ip, device_id, decision, reasons, body)
        SELECT e->>'id', (e->>'at')::bigint, e->>'type', e->>'to', e->>'prefix', e->>'ip', e->>'deviceId', e->>'decision',
               coalesce(ARRAY(SELECT json_array_elements_text(CASE WHEN json_typeof(e->'reasons') = 'array' THEN e->'reasons' ELSE '[]'::json END)), '{}'),
               e
        FROM json_array_elements(p_events) WITH ORDINALITY AS x(e, ord)
        ORDER BY ord;
      GET DIAGNOSTICS n = ROW_COUNT;
      RETURN n;
    END
    $fn$;
    `,
    // 2: resetLimits takes consume_limits' advisory locks. A plain DELETE could commit between a consume's
    // read of a row and its write, which then wrote back what it had read plus its cost: the reset was undone
    // (an approval's failure-counter reset, lost to a failed check counted at the same moment).
    `
    CREATE FUNCTION ${s}.reset_limits(p_keys text[], p_lock_ns text) RETURNS void
    LANGUAGE plpgsql AS $fn$
    BEGIN
      PERFORM pg_advisory_xact_lock(h)
        FROM (SELECT DISTINCT hashtextextended(p_lock_ns || k, 0) AS h FROM unnest(p_keys) AS k ORDER BY 1) AS locks;
      DELETE FROM ${s}.counters WHERE key = ANY(p_keys);
    END
    $fn$;
    `,
    // 3: the journal (service/journal.ts), write-ahead records of sends and approvals.
    `
    CREATE TABLE ${s}.journal (key text PRIMARY KEY, at bigint NOT NULL, value json NOT NULL);
    CREATE INDEX journal_at ON ${s}.journal (at);
    ALTER TABLE ${s}.verifications ADD COLUMN approved_by text;
    `,
  ];
}

interface ApiKeyRow {
  id: string;
  name: string | null;
  secret_hash: string;
  scopes: ApiScope[];
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
  scopes: r.scopes,
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

/** One row of `consume_limits`. */
interface ConsumeRow {
  out_allowed: boolean;
  out_counts: number[];
  out_denied: number[];
  out_retry: number[];
}

const VERIFICATION_COLUMN_LIST = VERIFICATION_COLUMNS.join(', ');

/** A journal key written again replaces its entry (Store.putJournal). */
const JOURNAL_UPSERT = 'ON CONFLICT (key) DO UPDATE SET at = excluded.at, value = excluded.value';
const journalValues = (j: JournalWrite): unknown[] => [j.key, j.at, JSON.stringify(j.value ?? null)];
/** Placeholders for the verification columns, numbered after `before` other parameters. */
const verificationParams = (before: number): string => VERIFICATION_COLUMNS.map((_, i) => `$${before + i + 1}`).join(', ');

/** 64-bit-safe advisory lock key from a string (FNV-1a folded to a signed 53-bit range). */
function lockKey(s: string): number {
  let h = 0xcbf29ce484222325n;
  for (const ch of Buffer.from(s)) h = BigInt.asUintN(64, (h ^ BigInt(ch)) * 0x100000001b3n);
  return Number(BigInt.asIntN(53, h));
}

/**
 * At most `size` holders at once; a caller waits its turn up to `waitMs`, then fails as the store being
 * unavailable (503), as it would waiting for a pooled connection.
 */
class Slots {
  used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(
    private readonly size: number,
    private readonly waitMs: number,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.size) {
      await new Promise<void>((resolve, reject) => {
        const turn = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          const i = this.waiting.indexOf(turn);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new StoreUnavailableError(`PostgreSQL: every connection for slow queries was busy for ${this.waitMs} ms`));
        }, this.waitMs);
        this.waiting.push(turn);
      });
    } else this.used++;
    try {
      return await fn();
    } finally {
      // The slot passes to the next waiter, or is freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    }
  }
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  /** The share of the pool the slow queries may hold (PostgresStoreOptions.slowQueries). */
  private readonly slowSlots: Slots;
  readonly schema: string;
  /** Queries sent by this instance (one per round trip). */
  roundTrips = 0;

  private readonly s: string;
  /**
   * Whether text compares byte by byte for '+', digits and ':' in this database (a C or C.UTF-8 collation):
   * then a prefix is a range over the destination's index. Other collations may ignore the '+' and ':' (ICU,
   * glibc locales), and a prefix query falls back to starts_with, which scans. Learned at init().
   */
  private byteOrderedText = false;
  private readonly retentionMs: number;
  private readonly clock: () => number;
  private readonly sweepEvery: number;
  private writes = 0;
  private sweeping: Promise<unknown> | null = null;
  private closed = false;

  constructor(connectionString: string, opts: PostgresStoreOptions = {}) {
    const schema = opts.schema ?? 'otpshield';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${schema}`);
    this.schema = schema;
    this.s = `"${schema}"`;
    this.retentionMs = opts.verificationRetentionMs ?? DEFAULT_VERIFICATION_RETENTION_MS;
    this.clock = opts.clock ?? Date.now;
    this.sweepEvery = opts.sweepEveryWrites ?? 1000;
    // Timeouts, as the Redis store has its command timeout: a PostgreSQL that stops answering (a partition
    // without a reset, a frozen server) or a statement stuck behind a lock fails requests with 503 after
    // `timeoutMs` instead of holding them, the readiness probe and shutdown (an ops review measured minutes).
    // The server cancels the statement itself (statement_timeout, SQLSTATE 57014): it rolls back, so a client
    // that retries after the 503 was not also charged by the statement it gave up on (a review saw 40 timed-out
    // calls all counted when only the client stopped waiting). The client-side timeout, a second later, is the
    // backstop for a server that no longer answers at all; such a statement may still have run.
    const timeoutMs = opts.timeoutMs ?? 5000;
    const poolSize = opts.poolSize ?? 10;
    this.slowSlots = new Slots(opts.slowQueries ?? Math.max(1, Math.floor(poolSize / 4)), timeoutMs);
    this.pool = new pg.Pool({
      connectionString,
      max: poolSize,
      // Named in pg_stat_activity (a connection string's own application_name wins).
      ...(/[?&]application_name=/.test(connectionString) ? {} : { application_name: 'otp-shield' }),
      // Also bounds the wait for a free connection when every one is busy.
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs + 1000,
      keepAlive: true,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
          if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
          if (oid === 1016) return (v: string) => (pg.types.getTypeParser(1016 as never, 'text') as (x: string) => string[])(v).map(Number); // bigint[]
          return pg.types.getTypeParser(oid, format ?? 'text');
        }) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its connection must not crash the process; queries report errors themselves.
    this.pool.on('error', () => {});
  }

  private q<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    this.roundTrips++;
    return this.pool.query<R>(text, values);
  }

  /** Create the schema and tables, or migrate them. Safe to run from several instances at once. */
  async init(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.initOnce();
      } catch (err) {
        // 55P03 lock_not_available: a migration step waited MIGRATION_LOCK_TIMEOUT_MS for its table; rolled back.
        if ((err as { code?: string }).code !== '55P03') throw err;
        if (attempt >= MIGRATION_LOCK_ATTEMPTS) {
          throw new StoreUnavailableError(`PostgreSQL: the schema migration could not lock its tables in ${MIGRATION_LOCK_ATTEMPTS} attempts: a long transaction (a pg_dump, an export) holds them; start again when it is done`);
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * attempt) * (0.5 + Math.random() / 2)));
      }
    }
  }

  private async initOnce(): Promise<void> {
    await this.transaction(async (client) => {
      // Waiting for another instance's migration, and a migration itself, may take longer than a request may.
      // pg reads a per-query `query_timeout` (client.js) that its QueryConfig type does not declare.
      const slow = (text: string, values?: unknown[]) => client.query({ text, ...(values ? { values } : {}), query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
      await client.query(`SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
      await slow('SELECT pg_advisory_xact_lock($1)', [lockKey(`otpshield:init:${this.schema}`)]);
      // After the advisory lock (waiting for another instance's migration may take long): the DDL below may
      // wait this long for a table, not the 10 minutes during which every query would queue behind it.
      await client.query(`SET LOCAL lock_timeout = ${MIGRATION_LOCK_TIMEOUT_MS}`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.s}.meta (key text PRIMARY KEY, value bigint NOT NULL)`);
      const r = await client.query<{ value: number }>(`SELECT value FROM ${this.s}.meta WHERE key = 'schema_version'`);
      let version = Number(r.rows[0]?.value ?? 0);
      const all = migrations(this.s);
      if (version > all.length) throw new Error(`PostgreSQL schema version ${version} is newer than this OTP Shield (${all.length}); upgrade the service`);
      for (; version < all.length; version++) await slow(all[version]!);
      await client.query(
        `INSERT INTO ${this.s}.meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [version],
      );
      // Compared as the columns compare (they take the database's collation): '+19' < '+1:' and '+1:' < '+2'
      // only when ':' and '+' are not ignored.
      const order = await client.query<{ ok: boolean }>(`SELECT ('+19'::text < '+1:'::text AND '+1:'::text < '+2'::text AND '+1'::text < '+10'::text AND '+1@'::text > '+1:'::text) AS ok`);
      this.byteOrderedText = order.rows[0]?.ok === true;
    });
  }

  /**
   * `fn` inside BEGIN … COMMIT on one pooled connection, rolled back if it throws. A connection whose query failed
   * (a timeout) may still be busy on the server: it is discarded, not returned to the pool.
   */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let failed = false;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      failed = true;
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release(failed);
    }
  }

  /** Delete what expired at `now` (verifications after the retention period). Returns rows removed. */
  async sweep(now: number): Promise<number> {
    const s = this.s;
    // In batches, each its own statement: one statement over every expired row of five tables ran past the
    // statement timeout after a backlog (3.2 million counters: 6 s), rolled back, and did so again every minute.
    const tables: [string, string, number][] = [
      ['counters', 'expires_at <= $1', now],
      ['once_tokens', 'expires_at <= $1', now],
      ['settings', 'expires_at IS NOT NULL AND expires_at <= $1', now],
      ['list_entries', 'expires_at IS NOT NULL AND expires_at <= $1', now],
      ['verifications', 'expires_at <= $1', now - this.retentionMs],
    ];
    let n = 0;
    for (const [table, where, at] of tables) n += await this.deleteInBatches(`${s}.${table}`, where, at);
    return n;
  }

  /**
   * DELETE the rows of `table` matching `where` ($1 = `at`) in batches of DELETE_BATCH rows by ctid, each its own
   * statement (so its own timeout), at most MAX_DELETE_BATCHES, until the store closes. SKIP LOCKED: instances
   * purging at the same time take different rows instead of waiting for each other's. Each batch takes a slow
   * query's slot for itself only: held for a whole backlog, a purge and a sweep left no slot for an event search
   * for as long as they ran (a diff review).
   */
  private async deleteInBatches(table: string, where: string, at: number): Promise<number> {
    let n = 0;
    for (let i = 0; i < MAX_DELETE_BATCHES && !this.closed; i++) {
      const r = await this.slowSlots.run(() => this.q(`DELETE FROM ${table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM ${table} WHERE ${where} LIMIT ${DELETE_BATCH} FOR UPDATE SKIP LOCKED))`, [at]));
      n += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < DELETE_BATCH) break;
    }
    return n;
  }

  /** After a write: every `sweepEveryWrites` writes, sweep in the background (one at a time). */
  private wrote(now: number): void {
    if (this.sweepEvery <= 0 || this.closed) return;
    if (++this.writes % this.sweepEvery !== 0 || this.sweeping) return;
    this.sweeping = this.sweep(now)
      .catch(() => {})
      .finally(() => (this.sweeping = null));
  }

  poolStats(): PoolStats {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, slow: this.slowSlots.used };
  }

  /**
   * Readiness: the server answers and takes writes. A standby (or a primary demoted by a failover) answers
   * `SELECT 1` while it refuses every write (SQLSTATE 25006): the load balancer must stop sending requests here.
   */
  async ping(): Promise<void> {
    const r = await this.q<{ recovery: boolean; ro: string }>(`SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro`);
    const row = r.rows[0];
    if (row?.recovery || row?.ro === 'on') throw new StoreUnavailableError('PostgreSQL is read-only (a standby, or transactions are read-only)');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeping) await this.sweeping;
    await this.pool.end();
  }

  // ---- verifications ----

  async createVerification(v: Verification): Promise<void> {
    const updates = VERIFICATION_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ');
    await this.q(
      `INSERT INTO ${this.s}.verifications (${VERIFICATION_COLUMN_LIST}) VALUES (${verificationParams(0)}) ON CONFLICT (id) DO UPDATE SET ${updates}`,
      verificationValues(v, (b) => b),
    );
  }

  async consumeLimitsAndCreate(specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite): Promise<LimitOutcome> {
    validateSpecs(specs);
    if (specs.length === 0) {
      if (!journal) await this.createVerification(v);
      else {
        // Both in one statement, as with limits.
        const values = verificationValues(v, (b) => b);
        await this.q(
          `WITH ins AS (INSERT INTO ${this.s}.verifications (${VERIFICATION_COLUMN_LIST}) VALUES (${verificationParams(0)}))
           ${this.journalInsert(values.length + 1)} ${JOURNAL_UPSERT}`,
          [...values, ...journalValues(journal)],
        );
      }
      return { allowed: true, denied: [], counts: [] };
    }
    // One statement, so one transaction: the insert reads the consume's outcome and runs only when it allowed
    // (a data-modifying WITH runs exactly once, whether or not the outer query reads it); so does the
    // journal entry's.
    const args: unknown[] = this.consumeArgs(specs, now);
    const values = verificationValues(v, (b) => b);
    const j = journal ? `, j AS (${this.journalInsert(args.length + values.length + 1)} FROM c WHERE c.out_allowed ${JOURNAL_UPSERT})` : '';
    const r = await this.q<ConsumeRow>(
      `WITH c AS (SELECT * FROM ${this.consumeCall()}),
       ins AS (INSERT INTO ${this.s}.verifications (${VERIFICATION_COLUMN_LIST}) SELECT ${verificationParams(args.length)} FROM c WHERE c.out_allowed)${j}
       SELECT * FROM c`,
      journal ? [...args, ...values, ...journalValues(journal)] : [...args, ...values],
    );
    return this.limitOutcome(specs, r.rows[0]!, now);
  }

  async getVerification(id: string): Promise<Verification | null> {
    const r = await this.q<VerificationRow>(`SELECT * FROM ${this.s}.verifications WHERE id = $1`, [id]);
    return r.rows[0] ? verificationFromRow(r.rows[0]) : null;
  }

  async findPending(to: string, channel: Channel, now: number): Promise<Verification | null> {
    const r = await this.q<VerificationRow>(
      `SELECT * FROM ${this.s}.verifications WHERE to_number = $1 AND channel = $2 AND status = 'pending' AND expires_at > $3
       ORDER BY tarpit ASC, created_at DESC, id DESC LIMIT 1`,
      [to, channel, now],
    );
    return r.rows[0] ? verificationFromRow(r.rows[0]) : null;
  }

  async addCode(id: string, code: StoredCode, opts: AddCodeOptions): Promise<Verification | null> {
    const stored: StoredCode = { kid: code.kid, hash: code.hash, expiresAt: code.expiresAt };
    const args: unknown[] = [id, JSON.stringify(stored), Math.max(1, Math.floor(opts.keep)), opts.now, opts.resendAfter, code.expiresAt];
    const update = `UPDATE ${this.s}.verifications SET
         codes = (SELECT coalesce(jsonb_agg(x.c ORDER BY x.ord), '[]'::jsonb) FROM (
                    SELECT c, ord FROM jsonb_array_elements(codes || jsonb_build_array($2::jsonb)) WITH ORDINALITY AS e(c, ord)
                    ORDER BY ord DESC LIMIT $3) AS x),
         sends = sends + 1, last_sent_at = $4, updated_at = $4, resend_after = $5, expires_at = $6
       WHERE id = $1 AND status = 'pending' AND expires_at > $4
       RETURNING *`;
    // With a journal entry: one statement, the entry inserted only when the update matched.
    const r = opts.journal
      ? await this.q<VerificationRow>(
          `WITH u AS (${update}), j AS (${this.journalInsert(args.length + 1)} FROM u ${JOURNAL_UPSERT}) SELECT * FROM u`,
          [...args, ...journalValues(opts.journal)],
        )
      : await this.q<VerificationRow>(update, args);
    return r.rows[0] ? verificationFromRow(r.rows[0]) : null;
  }

  async withdrawCode(id: string, hash: string, now: number): Promise<boolean> {
    const r = await this.q(
      `UPDATE ${this.s}.verifications SET
         codes = (SELECT coalesce(jsonb_agg(e.c ORDER BY e.ord), '[]'::jsonb) FROM jsonb_array_elements(codes) WITH ORDINALITY AS e(c, ord) WHERE e.c->>'hash' <> $2),
         -- codec.ts expiryAfterWithdrawal: the latest code left's (every SET reads the row as it was).
         expires_at = coalesce((SELECT max((e.c->>'expiresAt')::bigint) FROM jsonb_array_elements(codes) AS e(c) WHERE e.c->>'hash' <> $2), expires_at),
         updated_at = $3
       WHERE id = $1 AND status = 'pending' AND codes @> jsonb_build_array(jsonb_build_object('hash', $2::text))`,
      [id, hash, now],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async reserveAttempt(id: string, now: number): Promise<AttemptResult> {
    // The SET reads the row version that satisfied the WHERE (re-checked after any concurrent update).
    const r = await this.q<VerificationRow>(
      `UPDATE ${this.s}.verifications SET attempts = attempts + 1, updated_at = $2
       WHERE id = $1 AND status = 'pending' AND expires_at > $2 AND attempts < max_attempts
       RETURNING *`,
      [id, now],
    );
    const row = r.rows[0];
    if (row) return { ok: true, verification: verificationFromRow(row) };
    const v = await this.getVerification(id);
    if (!v) return { ok: false, reason: 'not_found', verification: null };
    if (v.status === 'pending') {
      // Out of attempts: refused, but the status is left to the attempts in flight (see Store.reserveAttempt).
      return v.expiresAt <= now ? { ok: false, reason: 'expired', verification: v } : { ok: false, reason: 'locked', verification: v };
    }
    return { ok: false, reason: v.status === 'locked' ? 'locked' : v.status === 'expired' ? 'expired' : 'not_pending', verification: v };
  }

  async transition(
    id: string,
    status: Exclude<VerificationStatus, 'pending' | 'expired'>,
    now: number,
    extra?: { failureReason?: string; sender?: string; approvedBy?: string },
  ): Promise<boolean> {
    const r = await this.q(
      `UPDATE ${this.s}.verifications SET status = $2, updated_at = $3,
         failure_reason = coalesce($4, failure_reason), sender = coalesce($5, sender), approved_by = coalesce($6, approved_by)
       WHERE id = $1 AND status = 'pending'`,
      [id, status, now, extra?.failureReason ?? null, extra?.sender ?? null, extra?.approvedBy ?? null],
    );
    return r.rowCount === 1;
  }

  // ---- rate-limit counters ----

  async consumeLimits(specs: LimitSpec[], now: number): Promise<LimitOutcome> {
    return this.consumeSpecs(specs, now);
  }

  /** consumeLimits' body; `tally` calls it directly so that monitoring counts a tally as one store operation. */
  private async consumeSpecs(specs: LimitSpec[], now: number): Promise<LimitOutcome> {
    validateSpecs(specs);
    if (specs.length === 0) return { allowed: true, denied: [], counts: [] };
    const r = await this.q<ConsumeRow>(`SELECT * FROM ${this.consumeCall()}`, this.consumeArgs(specs, now));
    return this.limitOutcome(specs, r.rows[0]!, now);
  }

  /** The consume_limits call, parameters $1–$6 (`consumeArgs`). */
  private consumeCall(): string {
    return `${this.s}.consume_limits($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint, $6::text)`;
  }

  private consumeArgs(specs: LimitSpec[], now: number): unknown[] {
    return [specs.map((s) => s.key), specs.map((s) => s.limit), specs.map((s) => s.windowMs), specs.map((s) => s.cost ?? 1), now, this.lockNamespace()];
  }

  /** What the counter locks of consume_limits and reset_limits are named under (schemas do not share them). */
  private lockNamespace(): string {
    return `${this.schema}:`;
  }

  /** A consume_limits row as a LimitOutcome. */
  private limitOutcome(specs: LimitSpec[], row: ConsumeRow, now: number): LimitOutcome {
    const counts = row.out_counts.map(Number);
    if (row.out_allowed) {
      this.wrote(now);
      return { allowed: true, denied: [], counts };
    }
    const denied = row.out_denied.map((i, j) => {
      const spec = specs[Number(i) - 1]!;
      return { reason: spec.reason, key: spec.key, retryAfterMs: Number(row.out_retry[j]) };
    });
    return { allowed: false, denied, counts };
  }

  async peekLimits(specs: LimitSpec[], now: number): Promise<number[]> {
    return this.peekSpecs(specs, now);
  }

  /** peekLimits' body (also `tally`'s reads). */
  private async peekSpecs(specs: LimitSpec[], now: number): Promise<number[]> {
    validateSpecs(specs);
    if (specs.length === 0) return [];
    const r = await this.q<{ key: string; slots: number[]; counts: number[] }>(
      `SELECT key, slots, counts FROM ${this.s}.counters WHERE key = ANY($1::text[])`,
      [[...new Set(specs.map((s) => s.key))]],
    );
    const states = new Map<string, WindowState>();
    for (const row of r.rows) states.set(row.key, row.slots.map((s, i) => [Number(s), Number(row.counts[i])]));
    return peekCounts(specs, now, states);
  }

  async tally(gate: LimitSpec | null, tallies: TallySpec[], now: number): Promise<TallyOutcome> {
    // One key per window, in the one consumeLimits round trip (codec.ts tallyAsLimits): the key count is not
    // this store's cost, the round trip is.
    const specs = tallyAsLimits(gate, tallies);
    // A read (no gate, cost 0) is a read here too, not a trip through the counting script/function.
    if (gate === null && tallies.every((t) => t.cost === 0)) {
      return tallyFromLimits(null, tallies, { allowed: true, denied: [], counts: await this.peekSpecs(specs, now) });
    }
    return tallyFromLimits(gate, tallies, await this.consumeSpecs(specs, now));
  }

  async resetLimits(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.q(`SELECT ${this.s}.reset_limits($1::text[], $2::text)`, [keys, this.lockNamespace()]);
  }

  // ---- one-time tokens ----

  async useOnce(key: string, ttlMs: number, now: number): Promise<boolean> {
    const r = await this.q(
      `INSERT INTO ${this.s}.once_tokens AS t (key, expires_at) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE t.expires_at <= $3`,
      [key, now + ttlMs, now],
    );
    this.wrote(now);
    return r.rowCount === 1;
  }

  // ---- API keys ----

  async putApiKey(k: ApiKeyRecord): Promise<void> {
    await this.q(
      `INSERT INTO ${this.s}.api_keys (id, name, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, secret_hash = excluded.secret_hash, scopes = excluded.scopes,
         created_at = excluded.created_at, expires_at = excluded.expires_at, revoked_at = excluded.revoked_at,
         last_used_at = excluded.last_used_at`,
      [k.id, k.name, k.secretHash, JSON.stringify(k.scopes), k.createdAt, k.expiresAt, k.revokedAt, k.lastUsedAt],
    );
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    const r = await this.q<ApiKeyRow>(`SELECT * FROM ${this.s}.api_keys WHERE id = $1`, [id]);
    return r.rows[0] ? apiKeyFromRow(r.rows[0]) : null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const r = await this.q<ApiKeyRow>(`SELECT * FROM ${this.s}.api_keys ORDER BY created_at, id COLLATE "C"`);
    return r.rows.map(apiKeyFromRow);
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    const r = await this.q(`UPDATE ${this.s}.api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, [id, now]);
    return r.rowCount === 1;
  }

  async touchApiKey(id: string, now: number): Promise<void> {
    await this.q(`UPDATE ${this.s}.api_keys SET last_used_at = greatest(coalesce(last_used_at, $2), $2) WHERE id = $1`, [id, now]);
  }

  // ---- block/allow lists ----

  async putListEntry(e: ListEntry): Promise<void> {
    await this.q(
      `WITH up AS (
         INSERT INTO ${this.s}.list_entries (id, list, kind, value, note, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET list = excluded.list, kind = excluded.kind, value = excluded.value, note = excluded.note,
           created_at = excluded.created_at, expires_at = excluded.expires_at
         RETURNING 1)
       UPDATE ${this.s}.meta SET value = value + 1 WHERE key = 'lists_version' AND EXISTS (SELECT 1 FROM up)`,
      [e.id, e.list, e.kind, e.value, e.note, e.createdAt, e.expiresAt],
    );
  }

  async removeListEntry(id: string): Promise<boolean> {
    const r = await this.q<{ n: number }>(
      `WITH d AS (DELETE FROM ${this.s}.list_entries WHERE id = $1 RETURNING 1),
            u AS (UPDATE ${this.s}.meta SET value = value + 1 WHERE key = 'lists_version' AND EXISTS (SELECT 1 FROM d) RETURNING 1)
       SELECT (SELECT count(*) FROM d) AS n`,
      [id],
    );
    return Number(r.rows[0]?.n ?? 0) > 0;
  }

  async listEntries(now: number, filter?: { list?: ListAction; kind?: ListKind }): Promise<ListEntry[]> {
    const r = await this.q<ListRow>(
      `SELECT * FROM ${this.s}.list_entries WHERE (expires_at IS NULL OR expires_at > $1)
         AND ($2::text IS NULL OR list = $2) AND ($3::text IS NULL OR kind = $3)
       ORDER BY created_at, id COLLATE "C"`,
      [now, filter?.list ?? null, filter?.kind ?? null],
    );
    return r.rows.map(listFromRow);
  }

  async listsVersion(): Promise<number> {
    const r = await this.q<{ value: number }>(`SELECT value FROM ${this.s}.meta WHERE key = 'lists_version'`);
    return Number(r.rows[0]?.value ?? 0);
  }

  // ---- settings ----

  async getSetting<T = unknown>(key: string, now?: number): Promise<T | null> {
    const r = await this.q<{ value: T }>(
      `SELECT value FROM ${this.s}.settings WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)`,
      [key, now ?? this.clock()],
    );
    return r.rows[0] ? r.rows[0].value : null;
  }

  async putSetting(key: string, value: unknown, ttlMs?: number, now?: number): Promise<void> {
    const t = now ?? this.clock();
    await this.q(
      `INSERT INTO ${this.s}.settings (key, value, expires_at) VALUES ($1, $2::json, $3)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      [key, JSON.stringify(value ?? null), ttlMs === undefined ? null : t + ttlMs],
    );
  }

  async deleteSetting(key: string): Promise<void> {
    await this.q(`DELETE FROM ${this.s}.settings WHERE key = $1`, [key]);
  }

  async listSettings<T = unknown>(prefix: string, now?: number): Promise<{ key: string; value: T }[]> {
    // starts_with, not LIKE: setting keys may contain % and _ and must match literally.
    const r = await this.q<{ key: string; value: T }>(
      `SELECT key, value FROM ${this.s}.settings WHERE starts_with(key, $1) AND (expires_at IS NULL OR expires_at > $2)
       ORDER BY key COLLATE "C"`,
      [prefix, now ?? this.clock()],
    );
    return r.rows.map((x) => ({ key: x.key, value: x.value }));
  }

  // ---- journal ----

  async putJournal(key: string, at: number, value: unknown): Promise<void> {
    await this.q(`${this.journalInsert(1)} ${JOURNAL_UPSERT}`, journalValues({ key, at, value }));
  }

  /** `INSERT INTO journal … SELECT` of an entry whose key, at and JSON are parameters $first, $first+1, $first+2. */
  private journalInsert(first: number): string {
    return `INSERT INTO ${this.s}.journal (key, at, value) SELECT $${first}::text, $${first + 1}::bigint, $${first + 2}::json`;
  }

  async deleteJournal(key: string): Promise<void> {
    await this.q(`DELETE FROM ${this.s}.journal WHERE key = $1`, [key]);
  }

  async listJournal<T = unknown>(before: number, limit: number): Promise<JournalRecord<T>[]> {
    const r = await this.q<{ key: string; at: string | number; value: T }>(
      `SELECT key, at, value FROM ${this.s}.journal WHERE at <= $1 ORDER BY at, key COLLATE "C" LIMIT $2`,
      [before, Math.max(0, limit)],
    );
    return r.rows.map((x) => ({ key: x.key, at: Number(x.at), value: x.value }));
  }

  // ---- audit events ----

  async appendEvents(events: AuditEvent[], forget?: string): Promise<void> {
    if (events.length === 0 && forget === undefined) return;
    const args = [JSON.stringify(events.map(eventBody)), lockKey(`otpshield:events:${this.schema}`)];
    if (forget === undefined) await this.q(`SELECT ${this.s}.append_events($1::json, $2)`, args);
    // One statement, so one transaction: the entry goes only with its events.
    else await this.q(`WITH f AS (DELETE FROM ${this.s}.journal WHERE key = $3) SELECT ${this.s}.append_events($1::json, $2)`, [...args, forget]);
  }

  async queryEvents(q: EventQuery): Promise<AuditEvent[]> {
    if (q.limit <= 0) return [];
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown): void => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (q.from !== undefined) add('at >= ?', q.from);
    if (q.to !== undefined) add('at < ?', q.to);
    if (q.type !== undefined) add('type = ?', q.type);
    if (q.number !== undefined) add('to_number = ?', q.number);
    // A range over the indexes of to_number and prefix where the collation sorts bytes (everything that starts
    // with the prefix lies between it and the prefix followed by ':', the character after '9'); elsewhere
    // starts_with. Never an email address, whose key may start with + and digits too.
    if (q.prefix !== undefined) {
      args.push(q.prefix);
      const p = `$${args.length}`;
      if (this.byteOrderedText) {
        args.push(`${q.prefix}:`);
        const end = `$${args.length}`;
        where.push(`((to_number >= ${p} AND to_number < ${end} AND strpos(to_number, '@') = 0) OR (prefix >= ${p} AND prefix < ${end} AND strpos(prefix, '@') = 0))`);
      } else where.push(`((starts_with(to_number, ${p}) AND strpos(to_number, '@') = 0) OR (starts_with(prefix, ${p}) AND strpos(prefix, '@') = 0))`);
    }
    if (q.ip !== undefined) add('ip = ?', q.ip);
    if (q.deviceId !== undefined) add('device_id = ?', q.deviceId);
    if (q.decision !== undefined) add('decision = ?', q.decision);
    if (q.reason !== undefined) add('reasons @> ARRAY[?::text]', q.reason);
    if (q.before !== undefined) add('seq < ?', q.before);
    if (q.after !== undefined) add('seq > ?', q.after);
    args.push(Math.floor(q.limit));
    // A search may read much of the table (docs/decisions.md): it holds one of the slow queries' connections.
    const r = await this.slowSlots.run(() =>
      this.q<{ seq: number; body: AuditEvent }>(
        `SELECT seq, body FROM ${this.s}.events${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
       ORDER BY seq ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${args.length}`,
        args,
      ),
    );
    return r.rows.map((row) => ({ ...row.body, seq: Number(row.seq) }));
  }

  async purgeEvents(before: number): Promise<number> {
    // In batches (deleteInBatches): one DELETE of a day's events (2 million rows) ran past the statement timeout,
    // rolled back after writing gigabytes of WAL, and did so again every minute: the purge never caught up
    // after any backlog (a PostgreSQL review). Now each minute removes up to a million rows, a batch at a time.
    return this.deleteInBatches(`${this.s}.events`, 'at < $1', before);
  }

  async subjectRecords(names: readonly string[], erase: boolean, keyParts: readonly string[] = names): Promise<SubjectRecords> {
    // One transaction: what is exported is what is erased. FOR UPDATE is not needed: a row written while this
    // runs names the destination in a request made after the erasure was asked for.
    return this.slowSlots.run(() => this.transaction(async (client) => {
      const s = this.s;
      // Full scans of the events, counters and journal: longer than a request's statement timeout may be. The
      // client-side timeout too: the pool's (timeoutMs + 1 s) gave up on the scan after 6 s and left it running
      // on the server (a PostgreSQL review).
      const query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
        client.query<R>({ text, ...(values ? { values } : {}), query_timeout: SUBJECT_TIMEOUT_MS + 1000 } as pg.QueryConfig);
      const like = (table: string, col: string, cast = '', parts: readonly string[] = names) =>
        // ILIKE: an address may be written in another case in a note (textNames decides, case-blind for addresses).
        query<Record<string, unknown>>(`SELECT * FROM ${s}.${table} WHERE ${col}${cast} ILIKE ANY ($1::text[])`, [parts.map(containsPattern)]);
      await client.query(`SET LOCAL statement_timeout = ${SUBJECT_TIMEOUT_MS}`);
      const out: SubjectRecords = { verifications: [], events: [], listEntries: [], keys: [], journal: [] };
      out.verifications = (await query<VerificationRow>(`SELECT * FROM ${s}.verifications WHERE to_number = ANY ($1::text[])`, [names])).rows.map(verificationFromRow);
      const events = (await like('events', 'body', '::text')).rows as { seq: string; body: AuditEvent }[];
      out.events = events.filter((r) => textNames(JSON.stringify(r.body), names)).map((r) => ({ ...r.body, seq: Number(r.seq) })).sort((a, b) => a.seq - b.seq);
      out.listEntries = (await query<ListRow>(`SELECT * FROM ${s}.list_entries`)).rows.map(listFromRow).filter((e) => names.includes(e.value) || textNames(e.note, names));
      const keys = new Set<string>();
      for (const table of ['counters', 'once_tokens', 'settings']) for (const r of (await like(table, 'key', '', keyParts)).rows as { key: string }[]) if (keyNames(r.key, keyParts)) keys.add(r.key);
      out.keys = [...keys].sort();
      out.journal = ((await like('journal', 'value', '::text')).rows as { key: string; value: unknown }[]).filter((r) => textNames(JSON.stringify(r.value), names)).map((r) => r.key).sort();
      if (erase) {
        await query(`DELETE FROM ${s}.verifications WHERE id = ANY ($1::text[])`, [out.verifications.map((v) => v.id)]);
        await query(`DELETE FROM ${s}.events WHERE seq = ANY ($1::bigint[])`, [out.events.map((e) => e.seq)]);
        if (out.listEntries.length > 0) {
          for (const e of out.listEntries) {
            if (entryIsSubject(e, names)) await query(`DELETE FROM ${s}.list_entries WHERE id = $1`, [e.id]);
            else await query(`UPDATE ${s}.list_entries SET note = $1 WHERE id = $2`, [e.note === null ? null : redactText(e.note, names), e.id]);
          }
          await query(`UPDATE ${s}.meta SET value = value + 1 WHERE key = 'lists_version'`);
        }
        for (const table of ['counters', 'once_tokens', 'settings']) await query(`DELETE FROM ${s}.${table} WHERE key = ANY ($1::text[])`, [out.keys]);
        await query(`DELETE FROM ${s}.journal WHERE key = ANY ($1::text[])`, [out.journal]);
      }
      return out;
    }));
  }
}
