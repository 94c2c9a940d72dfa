/**
 * Replay (backtest): run a recorded or synthetic trace through the real engine.
 *
 * The context is built by the server's own `buildContext` (so every installed layer — SMS-pumping defense,
 * alerts … — and the server's phone parsing and IP intel take part), on a fresh in-memory store, with a clock
 * that reads the current event's `at`. The `VerificationService` is the server's class; only its ports differ:
 * evidence outcomes come from the trace (replay signals), delivery records codes instead of sending, and the
 * challenger returns a stub. Nothing is sent and nothing leaves the process.
 *
 * One output line per input line, in order (docs/replay.md).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { Decision } from '../engine/decide.ts';
import { DEFAULT_POLICY, enforcedPolicy, type Policy } from '../engine/policy.ts';
import { buildContext, type AppContext } from '../service/context.ts';
import { ApiError } from '../service/errors.ts';
import { skipStoreTiming } from '../monitoring/store-instrument.ts';
import { isSharedSetting } from '../service/state.ts';
import type { Challenger } from '../service/ports.ts';
import { VerificationService, type ServiceHooks } from '../service/verifications.ts';
import { MemoryStore } from '../store/memory.ts';
import type { AuditEvent, Channel, ListEntry, ListKind } from '../store/interface.ts';
import { deepMerge } from '../lib/merge.ts';
import { channelKey, RecordingDelivery } from './delivery.ts';
import { parseTraceLine, type CheckResultName, type OutputLine, type SendDecisionName, type StateEventType, type TraceCheck, type TraceLine, type TraceSend } from './format.ts';
import { LIST_KINDS } from '../service/lists.ts';
import { unlock } from '../service/unlock.ts';
import { destinationKey } from '../service/destination.ts';
import { testNumbersOf } from '../service/config-checks.ts';
import { parseScopeName, pauseSends, resumeSends, type PauseScope } from '../monitoring/pause.ts';
import { replaySignals, type ReplaySignals } from './signals.ts';

export interface ReplayOptions {
  /** The policy to decide with (default: the built-in default policy). */
  policy?: Policy;
  /**
   * Extra policy sections not (yet) part of the policy schema, e.g. `pumping` (SMS-pumping thresholds);
   * layers read them from the policy object.
   */
  policyExtras?: Record<string, unknown>;
  /**
   * Service configuration overrides (codes, channels, testNumbers, dataDir for operator intel lists).
   * The store is always a fresh in-memory one and nothing is ever sent.
   */
  config?: Record<string, unknown>;
  /** A configuration loaded by the CLI (`--config`); `config` overrides apply on top. */
  baseConfig?: Config;
  /**
   * Keep every audit event in the replay's store, as the server would (to query or export them afterwards).
   * By default the per-request events (send, check …) are only counted — the output lines are their
   * record — and the rest (quarantines, throttles, alerts, pauses) is kept.
   */
  keepAuditEvents?: boolean;
}

export interface ReplaySummary {
  lines: number;
  sends: Record<SendDecisionName, number>;
  checks: Record<CheckResultName, number>;
  ignored: number;
  /** List changes, pauses and resumes of an audit export, applied to the replay's store (`{"applied": type}`). */
  applied: number;
  invalid: number;
  /** Lines whose `at` was earlier than the previous line's: replayed at the previous time. */
  outOfOrder: number;
  /** Sends whose number was masked (`+62812*****890`, an export without --no-mask): refused as invalid numbers. */
  maskedNumbers: number;
  /** Messages that would have been sent. */
  delivered: number;
  /** Audit events written during the replay, by type (send, check, quarantine.start, throttle.tightened …). */
  auditEvents: Record<string, number>;
  firstAt: string | null;
  lastAt: string | null;
  wallMs: number;
  eventsPerSecond: number;
}

/** The MemoryStore default, passed explicitly: the change tracking must know when the cap may evict. */
const MAX_KEYS = 2_000_000;
/** Audit events of single requests: counted, and stored only with `keepAuditEvents`. */
const PER_REQUEST_EVENTS = new Set(['send', 'send.failed', 'check', 'cancel']);

/**
 * The in-memory store of a replay, counting the audit events written by type.
 *
 * Only this process writes it, so it can tell the shared state which of its settings changed
 * (`settingChanges`): a reload then reads those instead of listing and copying every pause, quarantine and
 * throttle state on every replayed second (docs/benchmarks.md, replay throughput).
 */
export class ReplayStore extends MemoryStore {
  readonly eventCounts = new Map<string, number>();
  /** Quarantine and throttle events (few, and what a backtest is read for), kept whatever the event cap. */
  readonly notable: AuditEvent[] = [];
  /** Shared settings written or deleted since the last `settingChanges` call. */
  private changed = new Set<string>();
  /** Something may have changed that is not in `changed` (cap eviction, sweep): list everything again. */
  private lost = true;
  /** Expiry of every shared setting written with a TTL: its lapse changes what `listSettings` returns. */
  private readonly expiries = new Map<string, number>();
  private nextExpiry = Infinity;

  constructor(
    private readonly now: () => number,
    private readonly keepAllEvents: boolean,
  ) {
    super({ clock: now, maxKeys: MAX_KEYS });
  }

  /** Shared settings written, deleted or expired since the previous call; null: list them all. */
  settingChanges(now: number): Iterable<string> | null {
    if (now >= this.nextExpiry) {
      this.nextExpiry = Infinity;
      for (const [key, at] of this.expiries) {
        if (at <= now) {
          this.expiries.delete(key);
          this.changed.add(key);
        } else if (at < this.nextExpiry) this.nextExpiry = at;
      }
    }
    const out = this.lost ? null : this.changed;
    this.lost = false;
    this.changed = new Set();
    return out;
  }

  override async putSetting(key: string, value: unknown, ttlMs?: number, now?: number): Promise<void> {
    await super.putSetting(key, value, ttlMs, now);
    if (isSharedSetting(key)) {
      this.changed.add(key);
      if (ttlMs === undefined) this.expiries.delete(key);
      else {
        // As MemoryStore computes it; a setting is gone once `expiresAt <= now`.
        const at = (now ?? this.now()) + ttlMs;
        this.expiries.set(key, at);
        if (at < this.nextExpiry) this.nextExpiry = at;
      }
    } else if (ttlMs !== undefined && this.stats().settings >= MAX_KEYS) {
      // The TTL-settings cap may have evicted a shared setting.
      this.lost = true;
    }
  }

  override async deleteSetting(key: string): Promise<void> {
    await super.deleteSetting(key);
    if (isSharedSetting(key)) {
      this.changed.add(key);
      this.expiries.delete(key);
    }
  }

  override sweep(now: number): number {
    const n = super.sweep(now);
    this.lost = true;
    return n;
  }

  override async appendEvents(events: AuditEvent[], forget?: string): Promise<void> {
    for (const e of events) {
      this.eventCounts.set(e.type, (this.eventCounts.get(e.type) ?? 0) + 1);
      if (e.type.startsWith('quarantine.') || e.type.startsWith('throttle.')) this.notable.push(structuredClone(e));
    }
    // Nothing on the decision path reads the audit log; copying every request's event into it was a tenth
    // of a replay's time (docs/benchmarks.md).
    const kept = this.keepAllEvents ? events : events.filter((e) => !PER_REQUEST_EVENTS.has(e.type));
    if (kept.length > 0 || forget !== undefined) await super.appendEvents(kept, forget);
  }
}

const noSleep = (): Promise<void> => Promise.resolve();

/** Challenges cannot be solved in a replay: the trace says whether the client solved one. */
const stubChallenger: Challenger = {
  async issue({ level }) {
    return { replay: true, level };
  },
};

const CHECK_ERRORS: Partial<Record<string, CheckResultName>> = {
  verification_expired: 'expired',
  verification_locked: 'locked',
  // Failed-check counters lock the number (or IP) across verifications.
  rate_limited: 'locked',
  verification_not_found: 'not_found',
  // Already approved, canceled or failed: there is no pending verification to check.
  verification_not_pending: 'not_found',
  invalid_phone_number: 'not_found',
  invalid_email_address: 'not_found',
};

/** A literal guess the server would not compare (wrong length, not digits): it answers 422, counting no attempt. */
const INVALID_CODE = '/code is not a code the server compares (correct, wrong, or the configured number of digits): it answers 422 invalid_code and counts no attempt';

export class Replayer {
  private now = 0;
  private captured: Decision | null = null;
  /**
   * Newest verification id per number and channel (sms by the number alone): integrators check by id, which is
   * what tells expired from unknown, and a number may have a verification per channel.
   */
  private readonly lastVerification = new Map<string, string>();
  /** The last trace time each background task ran at (`runBackground`). */
  private readonly backgroundAt = new Map<string, number>();
  private readonly started = performance.now();
  private readonly stats: Omit<ReplaySummary, 'delivered' | 'auditEvents' | 'wallMs' | 'eventsPerSecond'> = {
    lines: 0,
    sends: { allow: 0, challenge: 0, block: 0, tarpit: 0 },
    checks: { approved: 0, denied: 0, expired: 0, locked: 0, not_found: 0 },
    ignored: 0,
    applied: 0,
    invalid: 0,
    outOfOrder: 0,
    maskedNumbers: 0,
    firstAt: null,
    lastAt: null,
  };

  private constructor(
    readonly ctx: AppContext,
    readonly service: VerificationService,
    readonly delivery: RecordingDelivery,
    private readonly signals: ReplaySignals,
    private readonly store: ReplayStore,
    private readonly codeLength: number,
    private readonly cleanup: () => void,
  ) {}

  static async create(opts: ReplayOptions = {}): Promise<Replayer> {
    let tempDir: string | null = null;
    const base = opts.baseConfig ?? null;
    const dataDir = (opts.config?.dataDir as string | undefined) ?? base?.dataDir ?? (tempDir = mkdtempSync(join(tmpdir(), 'otps-replay-')));
    const overrides: Record<string, unknown> = deepMerge(
      {
        dataDir,
        store: { kind: 'memory' },
        senders: [],
        // A throwaway secret: codes only live for the replay.
        secrets: { codeSecret: randomBytes(32).toString('base64url'), previousCodeSecrets: [] },
        logLevel: 'silent',
      },
      opts.config ?? {},
    );
    const cfg = base
      ? (deepMerge(structuredClone(base) as unknown as Record<string, unknown>, overrides) as unknown as Config)
      : loadConfig({ env: { NODE_ENV: 'test' }, overrides: overrides as Partial<Config> });
    delete (cfg as { policyFile?: string }).policyFile;

    const replayer: { r: Replayer | null } = { r: null };
    const clock = () => replayer.r?.now ?? 0;
    const store = new ReplayStore(clock, opts.keepAuditEvents ?? false);
    // Store-operation latencies of an in-memory map mean nothing and no metrics route serves them; the
    // monitoring layer still sees every audit event.
    skipStoreTiming(store);
    const delivery = new RecordingDelivery();
    const ctx = await buildContext(cfg, {
      store,
      clock,
      delivery,
      log: pino({ level: 'silent' }),
      sharedState: { settingChanges: (now) => store.settingChanges(now) },
    });
    // Version 0 = "nothing stored": the fresh store has no policy, so the stored-policy refresher never
    // replaces this one.
    ctx.setPolicy({ ...(opts.policy ?? DEFAULT_POLICY), ...(opts.policyExtras ?? {}) } as Policy, 0);

    const signals = replaySignals(ctx.signals);
    // Layers that parse numbers at call time (monitoring counts approvals by country and prefix) share the
    // memoised answers.
    ctx.signals = signals;
    const testNumbers = testNumbersOf(cfg, signals);
    const capture: ServiceHooks = {
      afterDecision: (_facts, decision) => {
        if (replayer.r) replayer.r.captured = decision;
      },
    };
    ctx.hooks.push(capture);
    const service = new VerificationService({
      store,
      clock,
      policy: enforcedPolicy(ctx.policy, Boolean(cfg.captcha)),
      keyring: () => ctx.keyring,
      signals,
      delivery,
      challenger: stubChallenger,
      state: ctx.state,
      log: ctx.log,
      codes: cfg.codes,
      channels: cfg.channels as Channel[],
      testNumbers,
      hooks: ctx.hooks,
      // The clock is the trace's: a tarpit's fake delivery delay would only slow the replay down.
      sleep: noSleep,
    });
    ctx.verifications = service;
    const r = new Replayer(ctx, service, delivery, signals, store, cfg.codes.length, () => {
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    });
    replayer.r = r;
    return r;
  }

  /**
   * An operator's change recorded in an audit export, made again in the replay's store at its time, so the
   * sends after it meet the lists and pauses the server's did. False when its data cannot be applied: a list
   * entry whose value was masked (`+62812*****890` never matches a number), or a line that is not such an event.
   */
  private async applyState(type: StateEventType, data: Record<string, unknown>, now: number): Promise<boolean> {
    const store = this.store;
    if (type === 'list.add') {
      const e = data.entry as Partial<ListEntry> | undefined;
      if (!e || typeof e.id !== 'string' || (e.list !== 'block' && e.list !== 'allow') || !LIST_KINDS.includes(e.kind as ListKind) || typeof e.value !== 'string') return false;
      if (e.value.includes('*')) return false;
      const expiresAt = typeof e.expiresAt === 'number' ? e.expiresAt : typeof e.expiresAt === 'string' ? Date.parse(e.expiresAt) : null;
      await store.putListEntry({ id: e.id, list: e.list, kind: e.kind as ListKind, value: e.value, note: typeof e.note === 'string' ? e.note : null, createdAt: now, expiresAt: expiresAt !== null && Number.isFinite(expiresAt) ? expiresAt : null });
    } else if (type === 'list.remove') {
      if (typeof data.id !== 'string') return false;
      await store.removeListEntry(data.id);
    } else if (type === 'unlock') {
      // The counters an operator reset (service/unlock.ts), reset again; a masked number (`+62812*****890`) is no one.
      const target = typeof data.ip === 'string' ? data.ip : typeof data.to === 'string' ? data.to : null;
      if (target === null || target.includes('*') || target.includes('…')) return false;
      return (await unlock({ store, signals: this.signals, policy: this.ctx.policy() }, target, { now, by: 'replay' })).ok;
    } else {
      const scope = typeof data.scope === 'string' ? data.scope : '';
      let parsed: PauseScope;
      try {
        parsed = parseScopeName(scope);
      } catch {
        return false;
      }
      if (type === 'resume') await resumeSends(store, parsed, { now, by: 'replay' });
      else {
        const until = typeof data.until === 'number' ? data.until : null;
        if (until !== null && until <= now) return true;
        await pauseSends(store, parsed, { now, note: typeof data.note === 'string' ? data.note : null, by: 'replay', ttlMs: until !== null ? until - now : null });
      }
    }
    this.ctx.state.invalidate();
    return true;
  }

  /** Replay one raw input line. Returns null for blank lines (they produce no output). */
  async line(raw: string): Promise<OutputLine | null> {
    if (raw.trim() === '') return null;
    return this.step(parseTraceLine(raw));
  }

  async step(t: TraceLine): Promise<OutputLine> {
    this.stats.lines++;
    if (t.kind === 'invalid') {
      this.stats.invalid++;
      return { error: 'invalid_line', message: t.message };
    }
    if (t.at < this.now) this.stats.outOfOrder++;
    else {
      await this.runBackground(t.at);
      this.now = t.at;
    }
    const iso = new Date(this.now).toISOString();
    this.stats.firstAt ??= iso;
    this.stats.lastAt = iso;
    if (t.kind === 'other') {
      this.stats.ignored++;
      return { ignored: t.type };
    }
    if (t.kind === 'state') {
      if (await this.applyState(t.type, t.data, this.now)) {
        this.stats.applied++;
        return { applied: t.type };
      }
      this.stats.ignored++;
      return { ignored: t.type };
    }
    if (t.kind === 'send') {
      const out = await this.send(t.event);
      this.stats.sends[out.decision]++;
      return out;
    }
    const result = await this.check(t.event);
    if (result === 'invalid_code') {
      this.stats.invalid++;
      return { error: 'invalid_line', message: INVALID_CODE };
    }
    this.stats.checks[result]++;
    return { result };
  }

  /**
   * The server's background tasks (`ctx.background`: an idle throttle scope relaxing, a quarantine's end) on
   * trace time, as a server runs them every `everyMs` with no request to trigger them: at every boundary up to
   * `until`, the tasks due at a boundary together, the clock moving forward only. A gap between lines runs
   * every boundary of its last 7 days (a scope relaxes, or a quarantine ends, at its own time); a run that
   * throws is dropped as a server's is logged and retried. The first line of a trace starts the schedule.
   */
  private async runBackground(until: number): Promise<void> {
    const tasks = this.ctx.background;
    if (tasks.length === 0) return;
    const horizon = until - 7 * 86_400_000;
    for (const task of tasks) {
      const last = this.backgroundAt.get(task.name);
      const floor = Math.floor(until / task.everyMs) * task.everyMs;
      if (last === undefined) this.backgroundAt.set(task.name, floor);
      else if (last < horizon) this.backgroundAt.set(task.name, Math.floor(horizon / task.everyMs) * task.everyMs);
    }
    for (;;) {
      let next = Infinity;
      for (const task of tasks) next = Math.min(next, this.backgroundAt.get(task.name)! + task.everyMs);
      if (next > until) return;
      this.now = next;
      for (const task of tasks) {
        if (this.backgroundAt.get(task.name)! + task.everyMs !== next) continue;
        this.backgroundAt.set(task.name, next);
        await task.run(next).catch(() => {});
      }
    }
  }

  private async send(e: TraceSend): Promise<{ decision: SendDecisionName; reasons: string[]; score: number }> {
    this.captured = null;
    if (e.to.includes('*')) this.stats.maskedNumbers++;
    this.delivery.failNext = e.deliveryFailed === true;
    try {
      const res = await this.service.send({
        to: e.to,
        channel: e.channel ?? 'sms',
        locale: e.locale ?? null,
        ...(e.defaultRegion ? { defaultRegion: e.defaultRegion } : {}),
        client: this.signals.clientFor(e.client),
      });
      this.lastVerification.set(channelKey(res.verification.to, res.verification.channel), res.verification.id);
      return { decision: res.decision.decision, reasons: res.decision.reasons, score: res.decision.score };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const d = this.captured as Decision | null;
      if (d) return { decision: d.decision, reasons: d.reasons, score: d.score };
      // Refused before any decision (invalid number, disabled channel): a block in the output's terms.
      return { decision: 'block', reasons: [err.code], score: 0 };
    } finally {
      // A send that never reached delivery (refused, tarpitted) must not pass its failure to the next one.
      this.delivery.failNext = false;
    }
  }

  private async check(e: TraceCheck): Promise<CheckResultName | 'invalid_code'> {
    if (e.to === null) return 'not_found';
    const channel = e.channel ?? 'sms';
    const dest = destinationKey(this.signals, channel, e.to);
    const e164 = dest.ok ? dest.key : null;
    let code: string;
    if (e.code === 'correct') code = (e164 && this.delivery.lastCode(e164, channel)) ?? this.delivery.wrongCode(e164 ?? '', this.codeLength, channel);
    else if (e.code === 'wrong') code = this.delivery.wrongCode(e164 ?? '', this.codeLength, channel);
    else code = e.code; // a literal guess
    const id = e164 ? this.lastVerification.get(channelKey(e164, channel)) : undefined;
    const client: { ip?: string; deviceId?: string } = {};
    if (e.client?.ip) client.ip = e.client.ip;
    if (e.client?.deviceId) client.deviceId = e.client.deviceId;
    try {
      const res = await this.service.check({ code, ...(id ? { id } : { to: e.to, channel }), client });
      return res.status;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.code === 'invalid_code') return 'invalid_code';
      return CHECK_ERRORS[err.code] ?? 'not_found';
    }
  }

  /** Quarantine and throttle events written during the replay, oldest first. */
  notableEvents(): readonly AuditEvent[] {
    return this.store.notable;
  }

  summary(): ReplaySummary {
    const wallMs = performance.now() - this.started;
    return {
      ...this.stats,
      sends: { ...this.stats.sends },
      checks: { ...this.stats.checks },
      delivered: this.delivery.delivered,
      auditEvents: Object.fromEntries([...this.store.eventCounts].sort(([a], [b]) => a.localeCompare(b))),
      wallMs: Math.round(wallMs),
      eventsPerSecond: wallMs > 0 ? Math.round((this.stats.lines / wallMs) * 1000) : 0,
    };
  }

  async close(): Promise<void> {
    await this.ctx.close();
    this.cleanup();
  }
}

/**
 * Replay every line of the input, writing one JSON line per non-blank input line through `write` (which may
 * return a promise to apply backpressure). Returns the summary.
 *
 * `open` is called only once the replayer is ready: a readline interface created earlier would emit lines
 * while nobody listens (and they would be lost).
 */
export async function replayLines(
  open: () => AsyncIterable<string>,
  write: (line: string) => void | Promise<void>,
  opts: ReplayOptions = {},
): Promise<ReplaySummary> {
  const r = await Replayer.create(opts);
  try {
    for await (const raw of open()) {
      const out = await r.line(raw);
      if (out) await write(JSON.stringify(out));
    }
    return r.summary();
  } finally {
    await r.close();
  }
}
