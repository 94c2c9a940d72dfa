/**
 * Redis store (ioredis): for several OTP Shield instances sharing state.
 *
 * Every multi-step operation is one Lua script (redis-scripts.ts), hence atomic across all instances and
 * one round trip; `consumeLimits` is a single script for all specs of a request. `roundTrips` counts the
 * commands/scripts this instance sent, so benchmarks can report round trips per decision.
 *
 * Everything temporary expires by itself: counters (PX = window state expiry), one-time tokens, and
 * verifications (kept `verificationRetentionMs` after their expiry so GET still answers), including the
 * per-destination pending index. Settings with a TTL and list entries live in hashes (so listing them does
 * not need a keyspace SCAN); expired ones are ignored on read and deleted by putSetting / `sweep(now)`.
 * Events are a stream capped with an approximate MAXLEN.
 *
 * Times in values are the caller's `now`; Redis TTLs are set relative to it (`expiresAt - now`), so with a
 * sane clock they agree with the values, and values are always checked against `now` anyway.
 *
 * Not supported: Redis Cluster (scripts derive some key names; see redis-scripts.ts).
 */
import { Redis } from 'ioredis';
import type {
  ApiKeyRecord, ApiScope, AttemptResult, AuditEvent, Channel, EventQuery, JournalRecord, JournalWrite, AddCodeOptions, LimitOutcome, LimitSpec, ListAction,
  ListEntry, ListKind, Store, StoredCode, SubjectRecords, TallyOutcome, TallySpec, Verification, VerificationStatus,
} from './interface.ts';
import { entryIsSubject, keyNames, redactText, textNames } from './subject.ts';
import type { WindowState } from '../engine/window.ts';
import {
  tallyAsLimits, tallyFromLimits, DEFAULT_VERIFICATION_RETENTION_MS, decodeWindow, eventBody, eventMatches, peekCounts, validateSpecs,
} from './codec.ts';
import * as S from './redis-scripts.ts';
import { UnsupportedStoreError } from './errors.ts';

export interface RedisStoreOptions {
  /** Prefix of every key. Default `otps:`. Tests use a random one to isolate. */
  prefix?: string;
  /**
   * Approximate cap of the event stream (XADD MAXLEN ~). Default 1,000,000. Redis keeps events in memory,
   * so they are capped by count as well as by `privacy.eventRetentionDays`: past the cap the oldest go.
   */
  maxEvents?: number;
  /** How long a verification stays readable after it expired. Default 24 h. */
  verificationRetentionMs?: number;
  /** Clock for the methods whose `now` is optional (settings). Default Date.now. */
  clock?: () => number;
  /** A command without a reply after this long fails ("Command timed out"). Default 5000. */
  commandTimeoutMs?: number;
}

const SCRIPTS = {
  otpsConsumeLimits: S.CONSUME_LIMITS,
  otpsUseOnce: S.USE_ONCE,
  otpsCreateVerification: S.CREATE_VERIFICATION,
  otpsConsumeLimitsAndCreate: S.CONSUME_LIMITS_AND_CREATE,
  otpsConsumeLimitsAndCreateJournaled: S.CONSUME_LIMITS_AND_CREATE_JOURNALED,
  otpsFindPending: S.FIND_PENDING,
  otpsAddCode: S.ADD_CODE,
  otpsWithdrawCode: S.WITHDRAW_CODE,
  otpsReserveAttempt: S.RESERVE_ATTEMPT,
  otpsTransition: S.TRANSITION,
  otpsPutApiKey: S.PUT_API_KEY,
  otpsListApiKeys: S.LIST_API_KEYS,
  otpsRevokeApiKey: S.REVOKE_API_KEY,
  otpsTouchApiKey: S.TOUCH_API_KEY,
  otpsPutListEntry: S.PUT_LIST_ENTRY,
  otpsRemoveListEntry: S.REMOVE_LIST_ENTRY,
  otpsSweepListEntries: S.SWEEP_LIST_ENTRIES,
  otpsGetSetting: S.GET_SETTING,
  otpsPutSetting: S.PUT_SETTING,
  otpsDeleteIndexedField: S.DELETE_INDEXED_FIELD,
  otpsDeleteSetting: S.DELETE_SETTING,
  otpsListSettings: S.LIST_SETTINGS,
  otpsSweepSettings: S.SWEEP_SETTINGS,
  otpsAppendEvents: S.APPEND_EVENTS,
  otpsPutJournal: S.PUT_JOURNAL,
  otpsListJournal: S.LIST_JOURNAL,
} as const;
type ScriptName = keyof typeof SCRIPTS;

/** A journal entry as the scripts take it: key, at, JSON. */
function journalArgs(j: JournalWrite): (string | number)[] {
  return [j.key, j.at, JSON.stringify(j.value ?? null)];
}

/** Flat [field, value, ...] (a script's HGETALL) -> object. */
function pairs(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

function verificationFields(v: Verification): string[] {
  const f: string[] = [
    'id', v.id, 'to', v.to, 'channel', v.channel, 'status', v.status,
    'createdAt', String(v.createdAt), 'updatedAt', String(v.updatedAt), 'expiresAt', String(v.expiresAt),
    'attempts', String(v.attempts), 'maxAttempts', String(v.maxAttempts), 'sends', String(v.sends),
    'lastSentAt', String(v.lastSentAt), 'resendAfter', String(v.resendAfter),
    // One JSON object per line, newest last: the Lua appends and trims lines without parsing JSON.
    'codes', v.codes.map((c) => JSON.stringify(c)).join('\n'),
    'client', JSON.stringify(v.client ?? {}), 'tarpit', v.tarpit ? '1' : '0',
  ];
  // Absent field = null.
  if (v.locale !== null) f.push('locale', v.locale);
  if (v.sender !== null) f.push('sender', v.sender);
  if (v.failureReason !== null) f.push('failureReason', v.failureReason);
  return f;
}

function verificationFromHash(h: Record<string, string>): Verification | null {
  if (h.id === undefined) return null;
  return {
    id: h.id,
    to: h.to ?? '',
    channel: h.channel as Channel,
    locale: h.locale ?? null,
    status: h.status as VerificationStatus,
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
    expiresAt: Number(h.expiresAt),
    attempts: Number(h.attempts),
    maxAttempts: Number(h.maxAttempts),
    sends: Number(h.sends),
    lastSentAt: Number(h.lastSentAt),
    resendAfter: Number(h.resendAfter),
    codes: h.codes ? h.codes.split('\n').map((l) => JSON.parse(l) as StoredCode) : [],
    client: JSON.parse(h.client ?? '{}') as Record<string, unknown>,
    tarpit: h.tarpit === '1',
    sender: h.sender ?? null,
    failureReason: h.failureReason ?? null,
    // Absent until approved, as in a verification that was never stored.
    ...(h.approvedBy !== undefined ? { approvedBy: h.approvedBy } : {}),
  };
}

function apiKeyFields(k: ApiKeyRecord): string[] {
  const f = ['id', k.id, 'secretHash', k.secretHash, 'scopes', JSON.stringify(k.scopes), 'createdAt', String(k.createdAt)];
  if (k.name !== null) f.push('name', k.name);
  if (k.expiresAt !== null) f.push('expiresAt', String(k.expiresAt));
  if (k.revokedAt !== null) f.push('revokedAt', String(k.revokedAt));
  if (k.lastUsedAt !== null) f.push('lastUsedAt', String(k.lastUsedAt));
  return f;
}

function apiKeyFromHash(h: Record<string, string>): ApiKeyRecord | null {
  if (h.id === undefined) return null;
  const n = (x: string | undefined) => (x === undefined ? null : Number(x));
  return {
    id: h.id,
    name: h.name ?? null,
    secretHash: h.secretHash ?? '',
    scopes: JSON.parse(h.scopes ?? '[]') as ApiScope[],
    createdAt: Number(h.createdAt),
    expiresAt: n(h.expiresAt),
    revokedAt: n(h.revokedAt),
    lastUsedAt: n(h.lastUsedAt),
  };
}

/** Event seq <-> stream entry id ("ms-n", n < 1000); see APPEND_EVENTS. */
const seqOfId = (id: string): number => {
  const i = id.indexOf('-');
  return Number(id.slice(0, i)) * 1000 + Number(id.slice(i + 1));
};
const idOfSeq = (seq: number): string => `${Math.floor(seq / 1000)}-${seq % 1000}`;

const EVENT_PAGE = 500;

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  /** Commands and scripts sent by this instance (a pipeline would count once). */
  roundTrips = 0;
  readonly redis: Redis;
  readonly prefix: string;

  private readonly ownsClient: boolean;
  private readonly maxEvents: number;
  private readonly retentionMs: number;
  private readonly clock: () => number;
  private readonly k: {
    v: string; p: string; c: string; o: string; apiKey: string; apiKeys: string; lists: string; listsVersion: string;
    settings: string; settingsExp: string; settingsLex: string; events: string; eventsLast: string; journal: string; journalAt: string;
  };

  constructor(urlOrClient: string | Redis, opts: RedisStoreOptions = {}) {
    if (typeof urlOrClient === 'string') {
      // Auto-pipelining: commands issued in the same event-loop turn (the two evidence tokens of one request,
      // the calls of concurrent requests) leave in one write and share one round trip.
      // commandTimeout: a Redis that accepts connections but stops answering fails requests (503) instead of
      // holding them until the client gives up.
      // autoResendUnfulfilledCommands off: a command sent before a connection dropped may have run already
      // (only its reply was lost); ioredis would send it again on the new connection, and no script here may
      // run twice (a limit counted twice, a check attempt burnt twice, a fresh one-time token reported reused,
      // an approval answered 409). Such a call fails instead, by the command timeout (ioredis drops it without
      // rejecting it): a 503 after 5 s during the blip. Commands queued while offline are still sent.
      // reconnectOnError: after a failover behind an endpoint that follows the primary (a DNS name, a managed
      // service's primary endpoint), the old connection reaches a replica and every write is refused with
      // READONLY: reconnect, so the next commands reach the new primary. The refused command fails (503) and is
      // not sent again: where the endpoint still leads to a replica, resending would loop until the command
      // timeout.
      this.redis = new Redis(urlOrClient, {
        maxRetriesPerRequest: 2,
        lazyConnect: false,
        enableAutoPipelining: true,
        commandTimeout: opts.commandTimeoutMs ?? 5000,
        autoResendUnfulfilledCommands: false,
        reconnectOnError: (err) => err.message.startsWith('READONLY'),
      });
      // Without a listener ioredis prints every reconnect error; commands still reject, and ping() reports.
      this.redis.on('error', () => {});
      this.ownsClient = true;
    } else {
      this.redis = urlOrClient;
      this.ownsClient = false;
    }
    const p = opts.prefix ?? 'otps:';
    this.prefix = p;
    this.maxEvents = opts.maxEvents ?? 1_000_000;
    this.retentionMs = opts.verificationRetentionMs ?? DEFAULT_VERIFICATION_RETENTION_MS;
    this.clock = opts.clock ?? Date.now;
    this.k = {
      v: `${p}v:`,
      p: `${p}p:`,
      c: `${p}c:`,
      o: `${p}o:`,
      apiKey: `${p}k:`,
      apiKeys: `${p}keys`,
      lists: `${p}lists`,
      listsVersion: `${p}lists:v`,
      settings: `${p}settings`,
      settingsExp: `${p}settings:exp`,
      settingsLex: `${p}settings:lex`,
      events: `${p}events`,
      eventsLast: `${p}events:last`,
      journal: `${p}journal`,
      journalAt: `${p}journal:at`,
    };
    // defineCommand: EVALSHA with a transparent EVAL fallback after a SCRIPT FLUSH / failover.
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in this.redis)) this.redis.defineCommand(name, { lua });
    }
  }

  /** Run one script: numkeys, keys, args. One round trip. */
  private script(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    this.roundTrips++;
    const fn = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name]!;
    return fn.call(this.redis, keys.length, ...keys, ...args);
  }

  private rt<T>(p: Promise<T>): Promise<T> {
    this.roundTrips++;
    return p;
  }

  private pendingKey(to: string, channel: Channel): string {
    return `${this.k.p}${to}:${channel}`;
  }

  /**
   * Readiness: a write, not a PING, which a replica (after a failover, READONLY) and a Redis out of memory
   * under `noeviction` (OOM) still answer while they refuse every write: the load balancer must stop sending
   * requests here, which could only fail.
   */
  async ping(): Promise<void> {
    const r = await this.rt(this.redis.set(`${this.prefix}ready`, String(Date.now()), 'PX', 60_000));
    if (r !== 'OK') throw new Error(`unexpected SET reply: ${String(r)}`);
  }

  /**
   * Refuse a Redis this store cannot run on, before anything is served. Redis Cluster: several scripts
   * build keys from their arguments (the escalation and pumping keys of a request, the pending list of a
   * number), which a cluster refuses with CROSSSLOT — every send would fail with 503 at run time instead.
   */
  async checkSupported(): Promise<void> {
    // The probe is what fails on a cluster: a script over two keys of different slots (the keys are not
    // touched). Not `INFO cluster`: INFO is in @dangerous, which locked-down users and managed services
    // often may not run, while EVAL is what this store needs anyway.
    try {
      await this.rt(this.redis.eval('return 1', 2, `${this.prefix}probe:{a}`, `${this.prefix}probe:{b}`));
    } catch (err) {
      // CROSSSLOT on a cluster that serves its slots; CLUSTERDOWN, MOVED or ASK are cluster-only answers too.
      if (err instanceof Error && /^(CROSSSLOT|CLUSTERDOWN|MOVED|ASK)\b/.test(err.message)) {
        throw new UnsupportedStoreError('Redis Cluster is not supported (its scripts touch keys named in their arguments, which a cluster refuses across slots): use a single primary with replicas, e.g. Redis Sentinel or a managed non-cluster instance');
      }
      throw err;
    }
  }

  async durabilityWarnings(): Promise<string[]> {
    const out: string[] = [];
    const info = `${String(await this.rt(this.redis.info('persistence')))}\n${String(await this.rt(this.redis.info('memory')))}`;
    const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    // CONFIG is often disabled on managed Redis: then the RDB schedule is unknown and only AOF is judged.
    let save: string | null = null;
    try {
      save = String(((await this.rt(this.redis.config('GET', 'save'))) as string[])[1] ?? '');
    } catch {
      save = null;
    }
    if (field('aof_enabled') === '0' && save === '') {
      out.push('Redis keeps nothing on disk (appendonly no, save ""): a Redis restart loses every verification, list entry, API key and audit event; turn on AOF (appendonly yes, appendfsync everysec)');
    }
    const policy = field('maxmemory_policy');
    if (policy && policy !== 'noeviction') {
      out.push(`Redis maxmemory-policy is ${policy}: under memory pressure Redis deletes keys, verifications, limits and list entries among them; use noeviction`);
    }
    if (this.redis.options.autoResendUnfulfilledCommands !== false) {
      out.push('the Redis client passed in resends unanswered commands after a reconnect (ioredis autoResendUnfulfilledCommands): a script whose reply was lost runs twice; create it with autoResendUnfulfilledCommands: false');
    }
    return out;
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  /**
   * Delete this store's expired settings and list entries (everything else expires by itself).
   * Returns how many were removed.
   */
  async sweep(now: number): Promise<number> {
    const a = Number(await this.script('otpsSweepSettings', [this.k.settings, this.k.settingsExp, this.k.settingsLex, `${this.k.settingsLex}:checked`], [now]));
    const b = Number(await this.script('otpsSweepListEntries', [this.k.lists, this.k.listsVersion], [now]));
    return a + b;
  }

  // ---- verifications ----

  async createVerification(v: Verification): Promise<void> {
    const ttl = Math.max(1, Math.ceil(v.expiresAt - v.createdAt + this.retentionMs));
    await this.script('otpsCreateVerification', [this.k.v + v.id, this.pendingKey(v.to, v.channel)], [
      ttl, v.createdAt, v.id, v.status === 'pending' ? '1' : '0', ...verificationFields(v),
    ]);
  }

  async consumeLimitsAndCreate(specs: LimitSpec[], v: Verification, now: number, journal?: JournalWrite): Promise<LimitOutcome> {
    validateSpecs(specs);
    const ttl = Math.max(1, Math.ceil(v.expiresAt - v.createdAt + this.retentionMs));
    const args: (string | number)[] = [now];
    for (const s of specs) args.push(s.limit, s.windowMs, s.cost ?? 1);
    args.push(ttl, v.createdAt, v.id, v.status === 'pending' ? '1' : '0', ...verificationFields(v));
    const keys = specs.map((s) => this.k.c + s.key);
    keys.push(this.k.v + v.id, this.pendingKey(v.to, v.channel));
    if (journal) {
      keys.push(this.k.journal, this.k.journalAt);
      args.push(...journalArgs(journal));
    }
    const name = journal ? 'otpsConsumeLimitsAndCreateJournaled' : 'otpsConsumeLimitsAndCreate';
    return this.limitOutcome(specs, (await this.script(name, keys, args)) as [number, number[], number[]]);
  }

  async getVerification(id: string): Promise<Verification | null> {
    return verificationFromHash(await this.rt(this.redis.hgetall(this.k.v + id)));
  }

  async findPending(to: string, channel: Channel, now: number): Promise<Verification | null> {
    const r = await this.script('otpsFindPending', [this.pendingKey(to, channel)], [now, this.k.v, to, channel]);
    return r ? verificationFromHash(pairs(r)) : null;
  }

  async addCode(id: string, code: StoredCode, opts: AddCodeOptions): Promise<Verification | null> {
    const stored: StoredCode = { kid: code.kid, hash: code.hash, expiresAt: code.expiresAt };
    const keys = [this.k.v + id];
    const args: (string | number)[] = [
      opts.now, JSON.stringify(stored), Math.max(1, Math.floor(opts.keep)), opts.resendAfter, code.expiresAt,
      this.retentionMs, this.k.p,
    ];
    if (opts.journal) {
      keys.push(this.k.journal, this.k.journalAt);
      args.push(...journalArgs(opts.journal));
    }
    const r = await this.script('otpsAddCode', keys, args);
    return r ? verificationFromHash(pairs(r)) : null;
  }

  async withdrawCode(id: string, hash: string, now: number): Promise<boolean> {
    return (await this.script('otpsWithdrawCode', [this.k.v + id], [now, hash])) === 1;
  }

  async reserveAttempt(id: string, now: number): Promise<AttemptResult> {
    const r = (await this.script('otpsReserveAttempt', [this.k.v + id], [now, this.k.p])) as [string, unknown?];
    const reason = r[0];
    const v = r[1] === undefined ? null : verificationFromHash(pairs(r[1]));
    if (reason === 'ok' && v) return { ok: true, verification: v };
    if (reason === 'not_found' || !v) return { ok: false, reason: 'not_found', verification: null };
    return { ok: false, reason: reason as 'expired' | 'locked' | 'not_pending', verification: v };
  }

  async transition(
    id: string,
    status: Exclude<VerificationStatus, 'pending' | 'expired'>,
    now: number,
    extra?: { failureReason?: string; sender?: string; approvedBy?: string },
  ): Promise<boolean> {
    const args: (string | number)[] = [status, now, this.k.p];
    if (extra?.failureReason !== undefined) args.push('failureReason', extra.failureReason);
    if (extra?.sender !== undefined) args.push('sender', extra.sender);
    if (extra?.approvedBy !== undefined) args.push('approvedBy', extra.approvedBy);
    return Number(await this.script('otpsTransition', [this.k.v + id], args)) === 1;
  }

  // ---- rate-limit counters ----

  async consumeLimits(specs: LimitSpec[], now: number): Promise<LimitOutcome> {
    return this.consumeSpecs(specs, now);
  }

  /** consumeLimits' body; `tally` calls it directly so that monitoring counts a tally as one store operation. */
  private async consumeSpecs(specs: LimitSpec[], now: number): Promise<LimitOutcome> {
    validateSpecs(specs);
    if (specs.length === 0) return { allowed: true, denied: [], counts: [] };
    const args: number[] = [now];
    for (const s of specs) args.push(s.limit, s.windowMs, s.cost ?? 1);
    return this.limitOutcome(specs, (await this.script('otpsConsumeLimits', specs.map((s) => this.k.c + s.key), args)) as [number, number[], number[]]);
  }

  /** A consume script's reply {allowed, counts, flat (specIndex, retryAfterMs) pairs} as a LimitOutcome. */
  private limitOutcome(specs: LimitSpec[], r: [number, number[], number[]]): LimitOutcome {
    const counts = r[1].map(Number);
    if (Number(r[0]) === 1) return { allowed: true, denied: [], counts };
    const denied: LimitOutcome['denied'] = [];
    for (let i = 0; i + 1 < r[2].length; i += 2) {
      const spec = specs[Number(r[2][i]) - 1]!;
      denied.push({ reason: spec.reason, key: spec.key, retryAfterMs: Number(r[2][i + 1]) });
    }
    return { allowed: false, denied, counts };
  }

  async peekLimits(specs: LimitSpec[], now: number): Promise<number[]> {
    return this.peekSpecs(specs, now);
  }

  /** peekLimits' body (also `tally`'s reads). */
  private async peekSpecs(specs: LimitSpec[], now: number): Promise<number[]> {
    validateSpecs(specs);
    if (specs.length === 0) return [];
    // Read-only: one MGET, then the pure window.ts rule in JS.
    const raw = await this.rt(this.redis.mget(...specs.map((s) => this.k.c + s.key)));
    const states = new Map<string, WindowState>();
    specs.forEach((s, i) => states.set(s.key, decodeWindow(raw[i])));
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
    await this.rt(this.redis.del(...keys.map((k) => this.k.c + k)));
  }

  // ---- one-time tokens ----

  async useOnce(key: string, ttlMs: number, now: number): Promise<boolean> {
    const ttl = Math.ceil(ttlMs);
    if (!(ttl > 0)) return true; // nothing to remember
    return Number(await this.script('otpsUseOnce', [this.k.o + key], [now, ttl])) === 1;
  }

  // ---- API keys ----

  async putApiKey(k: ApiKeyRecord): Promise<void> {
    await this.script('otpsPutApiKey', [this.k.apiKey + k.id, this.k.apiKeys], [k.id, ...apiKeyFields(k)]);
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    return apiKeyFromHash(await this.rt(this.redis.hgetall(this.k.apiKey + id)));
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = (await this.script('otpsListApiKeys', [this.k.apiKeys], [this.k.apiKey])) as unknown[];
    return rows
      .map((r) => apiKeyFromHash(pairs(r)))
      .filter((k): k is ApiKeyRecord => k !== null)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    return Number(await this.script('otpsRevokeApiKey', [this.k.apiKey + id], [now])) === 1;
  }

  async touchApiKey(id: string, now: number): Promise<void> {
    await this.script('otpsTouchApiKey', [this.k.apiKey + id], [now]);
  }

  // ---- block/allow lists ----

  async putListEntry(e: ListEntry): Promise<void> {
    await this.script('otpsPutListEntry', [this.k.lists, this.k.listsVersion], [e.id, JSON.stringify(e)]);
  }

  async removeListEntry(id: string): Promise<boolean> {
    return Number(await this.script('otpsRemoveListEntry', [this.k.lists, this.k.listsVersion], [id])) === 1;
  }

  async listEntries(now: number, filter?: { list?: ListAction; kind?: ListKind }): Promise<ListEntry[]> {
    const all = await this.rt(this.redis.hvals(this.k.lists));
    return all
      .map((j) => JSON.parse(j) as ListEntry)
      .filter((e) => (e.expiresAt === null || e.expiresAt > now)
        && (filter?.list === undefined || e.list === filter.list)
        && (filter?.kind === undefined || e.kind === filter.kind))
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async listsVersion(): Promise<number> {
    return Number((await this.rt(this.redis.get(this.k.listsVersion))) ?? 0);
  }

  // ---- settings ----

  async getSetting<T = unknown>(key: string, now?: number): Promise<T | null> {
    const r = await this.script('otpsGetSetting', [this.k.settings, this.k.settingsExp], [key, now ?? this.clock()]);
    return typeof r === 'string' ? (JSON.parse(r) as T) : null;
  }

  async putSetting(key: string, value: unknown, ttlMs?: number, now?: number): Promise<void> {
    const t = now ?? this.clock();
    await this.script('otpsPutSetting', [this.k.settings, this.k.settingsExp, this.k.settingsLex], [
      key, JSON.stringify(value ?? null), ttlMs === undefined ? '' : t + ttlMs, t,
    ]);
  }

  async deleteSetting(key: string): Promise<void> {
    await this.script('otpsDeleteSetting', [this.k.settings, this.k.settingsExp, this.k.settingsLex], [key]);
  }

  async listSettings<T = unknown>(prefix: string, now?: number): Promise<{ key: string; value: T }[]> {
    const flat = (await this.script('otpsListSettings', [this.k.settings, this.k.settingsExp, this.k.settingsLex], [prefix, now ?? this.clock()])) as string[];
    const out: { key: string; value: T }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ key: flat[i]!, value: JSON.parse(flat[i + 1]!) as T });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  // ---- journal ----

  async putJournal(key: string, at: number, value: unknown): Promise<void> {
    await this.script('otpsPutJournal', [this.k.journal, this.k.journalAt], journalArgs({ key, at, value }));
  }

  async deleteJournal(key: string): Promise<void> {
    await this.script('otpsDeleteIndexedField', [this.k.journal, this.k.journalAt], [key]);
  }

  async listJournal<T = unknown>(before: number, limit: number): Promise<JournalRecord<T>[]> {
    if (limit <= 0) return [];
    const flat = (await this.script('otpsListJournal', [this.k.journal, this.k.journalAt], [before, Math.floor(limit)])) as string[];
    const out: JournalRecord<T>[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) out.push({ key: flat[i]!, at: Number(flat[i + 1]), value: JSON.parse(flat[i + 2]!) as T });
    return out;
  }

  // ---- audit events ----

  async appendEvents(events: AuditEvent[], forget?: string): Promise<void> {
    if (events.length === 0 && forget === undefined) return;
    const args: (string | number)[] = [this.maxEvents, forget ?? ''];
    for (const e of events) args.push(e.at, JSON.stringify(eventBody(e)));
    const keys = [this.k.events, this.k.eventsLast];
    // One script: the journal entry goes only with its events (KEYS[3], KEYS[4] given: ARGV[2] is its key).
    if (forget !== undefined) keys.push(this.k.journal, this.k.journalAt);
    await this.script('otpsAppendEvents', keys, args);
  }

  /**
   * Pages through the stream (newest or oldest first) and filters in JS. Seq cursors and `from` bound the
   * range (entry ms >= at); other filters may scan many entries: the stream is an audit log, not an index.
   */
  async queryEvents(q: EventQuery): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    if (q.limit <= 0) return out;
    let lo = Math.max(0, q.after !== undefined ? q.after + 1 : 0, q.from !== undefined ? q.from * 1000 : 0);
    let hi = q.before !== undefined ? q.before - 1 : Number.MAX_SAFE_INTEGER;
    const asc = q.order === 'asc';
    while (lo <= hi && out.length < q.limit) {
      const start = idOfSeq(lo);
      const end = hi === Number.MAX_SAFE_INTEGER ? '+' : idOfSeq(hi);
      const page = asc
        ? await this.rt(this.redis.xrange(this.k.events, start, end, 'COUNT', EVENT_PAGE))
        : await this.rt(this.redis.xrevrange(this.k.events, end, start, 'COUNT', EVENT_PAGE));
      for (const [id, fields] of page) {
        const seq = seqOfId(id);
        const json = fields[1];
        if (json === undefined) continue;
        const e = { ...(JSON.parse(json) as AuditEvent), seq };
        if (eventMatches(e, q)) {
          out.push(e);
          if (out.length >= q.limit) break;
        }
      }
      if (page.length < EVENT_PAGE) break;
      const lastSeq = seqOfId(page[page.length - 1]![0]);
      if (asc) lo = lastSeq + 1;
      else hi = lastSeq - 1;
    }
    return out;
  }

  /**
   * SCAN, XRANGE and hash reads over everything (an erasure is rare; its cost is the store's size). Not one atomic
   * step: an erasure that fails midway is repeated (it finds what is left). With AOF, deleted data stays in the
   * append-only file until its next rewrite (BGREWRITEAOF; docs/privacy.md).
   */
  async subjectRecords(names: readonly string[], erase: boolean, keyParts: readonly string[] = names): Promise<SubjectRecords> {
    const r = this.redis;
    const out: SubjectRecords = { verifications: [], events: [], listEntries: [], keys: [], journal: [] };
    const scan = async (match: string): Promise<string[]> => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await this.rt(r.scan(cursor, 'MATCH', match, 'COUNT', 1000));
        cursor = next;
        found.push(...batch);
      } while (cursor !== '0');
      return found;
    };
    const glob = (n: string) => n.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
    // Verifications: by their `to` field (no index names a finished one).
    const vKeys = await scan(`${glob(this.k.v)}*`);
    for (let i = 0; i < vKeys.length; i += 500) {
      const batch = vKeys.slice(i, i + 500);
      const tos = await this.rt(Promise.all(batch.map((k) => r.hget(k, 'to'))));
      for (const [j, to] of tos.entries()) {
        if (to === null || !names.includes(to)) continue;
        const v = verificationFromHash(await this.rt(r.hgetall(batch[j]!)));
        if (v) out.verifications.push(v);
      }
    }
    // Events: the whole stream, a page at a time.
    const eventIds: string[] = [];
    let start = '-';
    for (;;) {
      const page = await this.rt(r.xrange(this.k.events, start, '+', 'COUNT', EVENT_PAGE));
      for (const [id, fields] of page) {
        const json = fields[1];
        if (json === undefined || !textNames(json, names)) continue;
        eventIds.push(id);
        out.events.push({ ...(JSON.parse(json) as AuditEvent), seq: seqOfId(id) });
      }
      if (page.length < EVENT_PAGE) break;
      start = `(${page[page.length - 1]![0]}`;
    }
    out.listEntries = (await this.rt(r.hvals(this.k.lists))).map((j) => JSON.parse(j) as ListEntry).filter((e) => names.includes(e.value) || textNames(e.note, names));
    const counterKeys = new Set<string>();
    const tokenKeys = new Set<string>();
    for (const n of keyParts) {
      for (const k of await scan(`${glob(this.k.c)}*${glob(n)}*`)) if (keyNames(k.slice(this.k.c.length), keyParts)) counterKeys.add(k);
      for (const k of await scan(`${glob(this.k.o)}*${glob(n)}*`)) if (keyNames(k.slice(this.k.o.length), keyParts)) tokenKeys.add(k);
    }
    const settings = (await this.rt(r.hkeys(this.k.settings))).filter((k) => keyNames(k, keyParts));
    out.keys = [...[...counterKeys].map((k) => k.slice(this.k.c.length)), ...[...tokenKeys].map((k) => k.slice(this.k.o.length)), ...settings].sort();
    const journal = await this.rt(r.hgetall(this.k.journal));
    out.journal = Object.entries(journal).filter(([, v]) => textNames(v, names)).map(([k]) => k).sort();
    if (!erase) return out;
    const dels = [...out.verifications.flatMap((v) => [this.k.v + v.id, this.pendingKey(v.to, v.channel)]), ...counterKeys, ...tokenKeys];
    for (let i = 0; i < dels.length; i += 500) await this.rt(r.del(...dels.slice(i, i + 500)));
    for (let i = 0; i < eventIds.length; i += 500) await this.rt(r.xdel(this.k.events, ...eventIds.slice(i, i + 500)));
    for (const e of out.listEntries) {
      if (entryIsSubject(e, names)) await this.removeListEntry(e.id);
      else await this.putListEntry({ ...e, note: e.note === null ? null : redactText(e.note, names) });
    }
    for (const k of settings) await this.deleteSetting(k);
    for (const k of out.journal) await this.deleteJournal(k);
    return out;
  }

  /**
   * XTRIM MINID: removes entries whose id ms < before. Since ms >= at, no event with at >= before is ever
   * removed; an event appended out of `at` order may outlive the purge until a later one.
   */
  async purgeEvents(before: number): Promise<number> {
    return Number(await this.rt(this.redis.xtrim(this.k.events, 'MINID', `${Math.max(0, Math.floor(before))}-0`)));
  }
}
