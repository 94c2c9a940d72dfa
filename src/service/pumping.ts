/**
 * The SMS-pumping defense layer (docs/sms-pumping.md): counts messages and approvals per destination prefix
 * and country in the store's sliding windows (once per number per hour), asks the pure detector (src/engine/pumping.ts) after every
 * message, and quarantines a scope when it fires — as a setting with a TTL (`quarantine:prefix:+62812`) that
 * the shared state serves to every instance, with a `quarantine.start` audit event carrying the figures.
 *
 * A quarantine challenges or blocks (per policy) sends to the scope, except to numbers that verified before:
 * the engine exempts those, so the real users of a range keep getting their codes. It ends by itself
 * (`quarantine.end`, reason `expired`) or when an admin lifts it (reason `lifted`, then a grace period
 * without automatic quarantines for that scope). Repeat quarantines of a scope within a week last longer.
 *
 * Multi-instance: counts live in the store, so every instance judges the same totals. Recent numbers (for
 * dense/sequential detection) and the hourly profile (off-hours bursts) are kept per instance — each sees
 * its share of the traffic, which is enough for both signals.
 *
 * Reads its thresholds from the policy's `pumping` section (defaults when absent or invalid).
 */
import type { Logger } from 'pino';
import {
  APPROVAL_WINDOWS,
  DEFAULT_PUMPING,
  SEND_WINDOWS,
  densityOf,
  DensityTracker,
  isProven,
  judgeDensity,
  judgeRenewal,
  judgeScope,
  newProfile,
  offHoursBurst,
  ownBaseline,
  parsePumpingConfig,
  quarantineMinutes,
  recordSend,
  type ApprovalCounts,
  type Finding,
  type HourProfile,
  type PumpingConfig,
  type SendCounts,
} from '../engine/pumping.ts';
import type { AuditEvent, LimitSpec, Store, TallySpec } from '../store/interface.ts';
import { recordedStep, type StepClaim } from './journal.ts';
import type { Decision } from '../engine/decide.ts';
import type { SendFacts } from '../engine/facts.ts';
import type { Policy } from '../engine/policy.ts';
import { UNLIMITED } from '../engine/limits.ts';
import type { AppContext } from './context.ts';
import type { Signals } from './ports.ts';
import { SETTING, type Quarantine, type SharedState } from './state.ts';
import { eventId } from './ids.ts';
import type { ServiceHooks } from './verifications.ts';
import { adminQuarantineRoutes } from '../http/routes/admin-quarantines.ts';
import { isEmailKey } from '../signals/email.ts';
import { inEffect } from './quarantine-view.ts';

const MINUTE = 60_000;
const WEEK = 7 * 86_400_000;
/** A quarantine still refusing requests this close to its end is judged for renewal then, not after it. */
const RENEW_AHEAD_MS = 5 * MINUTE;
const HISTORY = 'pumping:history:';
/**
 * `pumping:open:<scope>|<since>`: a quarantine whose end is not recorded yet, kept a week past its end. The
 * quarantine's own setting lapses with it, so after a restart (or on an instance that never saw it) this is how
 * its expiry is still found and recorded (`endExpired` from the timer).
 */
const OPEN = 'pumping:open:';
const openKey = (q: Pick<Quarantine, 'scope' | 'since'>) => `${OPEN}${q.scope}|${q.since}`;
/** How often each instance looks for quarantines whose time is up (when no request comes to notice it). */
export const END_CHECK_MS = MINUTE;
const GRACE = 'pumping:grace:';
/** Memory bounds for the per-instance structures. */
const MAX_SCOPES = 20_000;

export type QuarantineScope = `prefix:${string}` | `country:${string}`;

/** Per scope, a week: quarantines so far (for repeat durations) and the usual hourly volume (for renewals). */
interface History {
  count: number;
  last: number;
  usual?: number;
}

export interface QuarantineView extends Quarantine {
  remainingMs: number;
}

interface Deps {
  store: Store;
  state: SharedState;
  signals: Signals;
  policy: () => Policy;
  clock: () => number;
  log: Logger;
}

function scopeKey(scope: string): string {
  return scope.startsWith('prefix:') ? `px:${scope.slice(7)}` : `cc:${scope.slice(8)}`;
}

const SEND_WINDOWS_MS = SEND_WINDOWS.map((w) => w * MINUTE);
const APPROVAL_WINDOWS_MS = APPROVAL_WINDOWS.map((w) => w * MINUTE);

/**
 * A scope's messages in every send window: one multi-window counter (`Store.tally`), so a message is one key
 * to update per scope instead of 13. (Stores that keep one key per window name them `pp:s:<scope>:<s>s`.)
 */
function sendTally(scope: string, cost: number): TallySpec {
  return { key: `pp:s:${scopeKey(scope)}`, windowsMs: SEND_WINDOWS_MS, cost };
}

/** A scope's approved numbers in every approval window (one multi-window counter). */
function approvalTally(scope: string, cost: number): TallySpec {
  return { key: `pp:a:${scopeKey(scope)}`, windowsMs: APPROVAL_WINDOWS_MS, cost };
}

/** Distinct numbers of a scope refused by its quarantine in the last hour (counted once per number per hour). */
function refusedSpec(scope: string, cost: number): LimitSpec {
  return { reason: 'pumping', key: `pp:q:${scopeKey(scope)}:3600s`, limit: UNLIMITED, windowMs: 60 * MINUTE, cost };
}

/** Allows one event per number per hour: as the first spec of a call or a tally's gate, it makes the call count once. */
function onceSpec(kind: 'n' | 'a' | 'q', e164: string): LimitSpec {
  return { reason: 'pumping', key: `pp:${kind}:${e164}`, limit: 1, windowMs: 60 * MINUTE };
}

// Count records are object literals: building them key by key (window keys such as 0.25 are converted to
// strings every time) was 2.5–4 % of the replay's CPU. The literal's keys are checked by the compiler; their
// order against the windows is checked here, once.
if (SEND_WINDOWS.join() !== '0.25,0.5,0.75,1,1.5,2,3,5,10,15,30,60,1440' || APPROVAL_WINDOWS.join() !== '5,15,60,1440') {
  throw new Error('pumping windows changed: update toSends/toApprovals');
}

function toSends(c: readonly number[]): SendCounts {
  return { 0.25: c[0]!, 0.5: c[1]!, 0.75: c[2]!, 1: c[3]!, 1.5: c[4]!, 2: c[5]!, 3: c[6]!, 5: c[7]!, 10: c[8]!, 15: c[9]!, 30: c[10]!, 60: c[11]!, 1440: c[12]! };
}

function toApprovals(c: readonly number[]): ApprovalCounts {
  return { 5: c[0]!, 15: c[1]!, 60: c[2]!, 1440: c[3]! };
}

/** A Map that forgets its oldest entries past a size (insertion order), so attackers cannot grow it. */
function capped<K, V>(m: Map<K, V>, max: number): void {
  while (m.size > max) m.delete(m.keys().next().value as K);
}

export class PumpingDefense {
  private cached: { policy: Policy; config: PumpingConfig } | null = null;
  /** Quarantines this instance knows of (own and from the shared state), to notice when they end. */
  private readonly active = new Map<string, Quarantine>();
  /**
   * prefix → unconverted numbers sent to recently (number → sent at, oldest first), and the same numbers in
   * a DensityTracker, which says cheaply whether the density rule could fire.
   */
  private readonly recent = new Map<string, { at: Map<string, number>; density: DensityTracker }>();
  private readonly profiles = new Map<string, HourProfile>();
  private readonly regionOfPrefix = new Map<string, string>();
  private readonly grace = new Map<string, number>();

  constructor(private readonly d: Deps) {}

  /** The policy's `pumping` section over the defaults (invalid → defaults, logged once per policy). */
  config(): PumpingConfig {
    const policy = this.d.policy();
    if (this.cached?.policy === policy) return this.cached.config;
    const res = parsePumpingConfig((policy as unknown as { pumping?: unknown }).pumping);
    if (!res.ok) this.d.log.error({ errors: res.errors }, 'invalid pumping section in the policy; using defaults');
    this.cached = { policy, config: res.ok ? res.config : DEFAULT_PUMPING };
    return this.cached.config;
  }

  readonly hooks: ServiceHooks = {
    // Email is not pumped (nobody earns from delivering it) and an address has no range: only numbers count.
    afterSent: (m, now) => (m.prefix !== null && m.region !== null ? this.onSent(m.to, m.prefix, m.region, now) : undefined),
    afterApproved: (v, now) => (isEmailKey(v.to) ? undefined : this.onApproved(v.to, now)),
    afterDecision: (facts, decision, now) => this.onDecision(facts, decision, now),
  };

  /**
   * Count a request its scope's quarantine refused (for renewal) — and, in the quarantine's last minutes,
   * renew it at once if the scope is still hammered, so that no request slips through at its end — then end
   * the quarantines whose time is up.
   */
  private async onDecision(facts: SendFacts, decision: Decision, now: number): Promise<void> {
    const scope = facts.state.quarantine?.scope;
    if (scope && decision.decision !== 'allow' && decision.reasons.some((r) => r.startsWith('quarantine.'))) {
      const cfg = this.config();
      if (cfg.enabled && cfg.renew.enabled) {
        await this.d.store.consumeLimits([onceSpec('q', facts.number.e164), refusedSpec(scope, 1)], now);
        const q = this.d.state.quarantines.get(scope) ?? this.active.get(scope);
        if (q && q.until > now && q.until - now <= RENEW_AHEAD_MS) await this.renew(q, now);
      }
    }
    await this.endExpired(now);
  }

  /**
   * Renew `q` before its end if its scope is still hammered, and record its end as `renewed`. When another
   * instance renews it first (or an admin's lift left a grace period), nothing happens here.
   */
  private async renew(q: Quarantine, now: number): Promise<void> {
    const renewal = await this.renewal(q, now);
    if (!renewal) return;
    const next = await this.start(q.scope as QuarantineScope, q.mode, 'attack_persists', now, { figures: renewal, by: null, usual: renewal.usual });
    if (!next) return;
    // Journaled ahead of the claim: an instance that claims the end and stops before the event leaves its entry.
    const claim = this.endClaim(q);
    const claimed = await recordedStep(this.d.store, this.endEvent(q, 'renewed', null, now), (take) => take(), (first, e) => (first ? e : null), claim);
    if (claimed) this.d.log.info({ scope: q.scope, reason: 'renewed' }, 'quarantine ended');
  }

  private async onSent(e164: string, prefix: string, region: string, now: number): Promise<void> {
    const cfg = this.config();
    if (!cfg.enabled) return;
    const pScope = `prefix:${prefix}`;
    const cScope = `country:${region}`;
    this.regionOfPrefix.delete(prefix);
    this.regionOfPrefix.set(prefix, region);
    capped(this.regionOfPrefix, MAX_SCOPES);

    // One store call: count this message in every send window of both scopes and read the approvals — but
    // only for the first message to this number within the hour (the limit-1 gate makes the call count
    // nothing otherwise). Pumping is many numbers; resends and a bombed victim are one number.
    const { counted, counts } = await this.d.store.tally(
      onceSpec('n', e164),
      [sendTally(pScope, 1), sendTally(cScope, 1), approvalTally(pScope, 0), approvalTally(cScope, 0)],
      now,
    );
    const recent = this.track(prefix, e164, now, cfg);
    if (!counted) return;
    const pSends = toSends(counts[0]!);
    const cSends = toSends(counts[1]!);
    const pApprovals = toApprovals(counts[2]!);
    const cApprovals = toApprovals(counts[3]!);

    const pProfile = this.profile(pScope, now);
    const cProfile = this.profile(cScope, now);

    const findings: Finding[] = [];
    if (!this.isQuarantined(cScope, now)) {
      const f = judgeScope({ scope: cScope, kind: 'country', sends: cSends, approvals: cApprovals, countryBaseline: null, offHours: offHoursBurst(cProfile, now, cfg) }, cfg);
      if (f) findings.push(f);
    }
    if (!this.isQuarantined(pScope, now)) {
      const countryBaseline = ownBaseline(cSends, cApprovals, cfg);
      const f =
        judgeScope({ scope: pScope, kind: 'prefix', sends: pSends, approvals: pApprovals, countryBaseline, offHours: offHoursBurst(pProfile, now, cfg) }, cfg) ??
        (recent.density.mayFire(cfg) ? judgeDensity(pScope, densityOf([...recent.at.keys()], cfg), cfg) : null);
      if (f) findings.push({ ...f, figures: { ...f.figures, ...(f.rule.endsWith('_numbers') ? { sends: pSends, approvalsByWindow: pApprovals } : {}) } });
    }
    for (const f of findings) {
      const mode = f.scope.startsWith('prefix:') ? cfg.mode.prefix : isProven(cApprovals, cfg) ? cfg.mode.country : cfg.mode.unprovenCountry;
      await this.start(f.scope as QuarantineScope, mode, f.rule, now, { figures: f.figures, by: null, region });
    }
  }

  private async onApproved(to: string, now: number): Promise<void> {
    const cfg = this.config();
    if (!cfg.enabled) return;
    const prefix = this.d.signals.prefixOf(to, this.d.policy().limits.prefixDigits);
    let region = this.regionOfPrefix.get(prefix);
    if (region === undefined) {
      const p = this.d.signals.parsePhone(to);
      if (!p.ok) return;
      region = p.region;
    }
    const recent = this.recent.get(prefix);
    if (recent?.at.delete(to)) recent.density.delete(to);
    // Once per number per hour, like the messages it answers.
    await this.d.store.tally(onceSpec('a', to), [approvalTally(`prefix:${prefix}`, 1), approvalTally(`country:${region}`, 1)], now);
  }

  /** Remember `e164` as an unconverted recent number of `prefix`; returns the prefix's numbers still in the window. */
  private track(prefix: string, e164: string, now: number, cfg: PumpingConfig): { at: Map<string, number>; density: DensityTracker } {
    let r = this.recent.get(prefix);
    if (!r || r.density.digits !== cfg.density.blockDigits) {
      // New prefix, or the policy changed the block size: (re)build the tracker from what is remembered.
      const at = r?.at ?? new Map<string, number>();
      const density = new DensityTracker(cfg.density.blockDigits);
      for (const n of at.keys()) density.add(n);
      this.recent.set(prefix, (r = { at, density }));
      capped(this.recent, MAX_SCOPES);
    }
    const { at, density } = r;
    at.delete(e164);
    at.set(e164, now);
    density.add(e164);
    const horizon = now - cfg.density.windowMinutes * MINUTE;
    for (const [k, t] of at) {
      if (t > horizon && at.size <= cfg.density.maxTracked) break;
      at.delete(k);
      density.delete(k);
    }
    return r;
  }

  private profile(scope: string, now: number): HourProfile {
    const next = recordSend(this.profiles.get(scope) ?? newProfile(now), now);
    this.profiles.delete(scope);
    this.profiles.set(scope, next);
    capped(this.profiles, MAX_SCOPES);
    return next;
  }

  private isQuarantined(scope: string, now: number): boolean {
    const own = this.active.get(scope);
    const shared = this.d.state.quarantines.get(scope);
    if ((own && own.until > now) || (shared && shared.until > now)) return true;
    const g = this.grace.get(scope);
    return g !== undefined && g > now;
  }

  /** Start (or replace) a quarantine. Returns it, or null when another instance just started one. */
  async start(
    scope: QuarantineScope,
    mode: Quarantine['mode'],
    reason: string,
    now: number,
    o: { figures?: Record<string, unknown>; by: string | null; minutes?: number; region?: string | null; usual?: number },
  ): Promise<Quarantine | null> {
    const store = this.d.store;
    const automatic = o.by === null && o.minutes === undefined;
    if (automatic) {
      // An admin lift earlier on any instance: respect its grace period.
      const grace = await store.getSetting<number>(GRACE + scope, now);
      if (grace !== null && grace > now) {
        this.grace.set(scope, grace);
        return null;
      }
      // Several instances may see the same figures at once: one of them writes.
      if (!(await store.useOnce(`pumping:start:${scope}`, MINUTE, now))) return null;
    }
    // One of this scope that ran out unrecorded (this start came first, e.g. from the detector on the first send
    // after it): its end now, without a renewal (this start is what follows it). A store another process
    // shares still has its open record for the timer, but this instance's memory is all a memory store has.
    const previous = this.active.get(scope);
    if (previous && previous.until <= now) {
      this.active.delete(scope);
      await this.end(previous, now, false);
    }
    const cfg = this.config();
    const history = await store.getSetting<History>(HISTORY + scope, now);
    const repeats = history && now - history.last < WEEK ? history.count : 0;
    // The volume a renewal compares with: taken before the scope's quarantines began, carried through renewals
    // (a quarantine holds the scope's volume down, so a later one keeps the higher figure of the week).
    const usual = o.usual ?? Math.max(await this.usualVolume(scope, now), repeats > 0 ? (history?.usual ?? 0) : 0);
    const minutes = o.minutes ?? quarantineMinutes(cfg, repeats);
    const q: Quarantine = { scope, mode, reason, since: now, until: now + minutes * MINUTE };
    const isPrefix = scope.startsWith('prefix:');
    const region = isPrefix ? (o.region ?? this.regionOfPrefix.get(scope.slice(7)) ?? null) : scope.slice(8);
    const event: AuditEvent = {
      id: eventId(),
      at: now,
      type: 'quarantine.start',
      prefix: isPrefix ? scope.slice(7) : null,
      country: region,
      decision: mode,
      reasons: [reason],
      data: { scope, mode, since: now, until: q.until, minutes, repeat: repeats, by: o.by, ...(o.figures ? { figures: o.figures } : {}) },
    };
    // Journaled ahead (service/journal.ts recordedStep): a quarantine in force always has its event.
    await recordedStep(store, event, async () => {
      // The TTL runs on the store's clock like every other setting; `until` (service clock) is what is enforced.
      await store.putSetting(SETTING.quarantine + scope, q, minutes * MINUTE);
      await store.putSetting(openKey(q), q, minutes * MINUTE + WEEK);
      await store.putSetting(HISTORY + scope, { count: repeats + 1, last: now, usual } satisfies History, WEEK);
      // A quarantine this one replaces while it runs (an admin's over an automatic one, a renewal) gets no end
      // of its own; one that already ran out keeps its record until its end is recorded (`endExpired`).
      for (const r of await store.listSettings<Quarantine>(`${OPEN}${scope}|`, now)) if (r.key !== openKey(q) && r.value.until > now) await store.deleteSetting(r.key);
      this.active.set(scope, q);
      this.d.state.invalidate();
    });
    this.d.log.warn({ scope, mode, reason, minutes }, 'quarantine started');
    return q;
  }

  /** Lift a quarantine now (admin). Returns false when the scope was not quarantined. */
  async lift(scope: QuarantineScope, by: string | null, now: number): Promise<false | { graceUntil: number | null }> {
    const store = this.d.store;
    const q = (await store.getSetting<Quarantine>(SETTING.quarantine + scope, now)) ?? this.active.get(scope) ?? null;
    if (!q || q.until <= now) return false;
    let graceUntil: number | null = null;
    await recordedStep(store, this.endEvent(q, 'lifted', by, now), async (take) => {
      await store.deleteSetting(SETTING.quarantine + scope);
      await store.deleteSetting(openKey(q));
      this.active.delete(scope);
      const cfg = this.config();
      if (cfg.liftGraceMinutes > 0) {
        const until = now + cfg.liftGraceMinutes * MINUTE;
        await store.putSetting(GRACE + scope, until, cfg.liftGraceMinutes * MINUTE);
        this.grace.set(scope, until);
        graceUntil = until;
      }
      this.d.state.invalidate();
      // Claim the end record so that no instance reports this quarantine as `expired` later. Last: a lift that
      // fails before it did not happen, leaves no entry (recordedStep), and the quarantine's expiry is recorded.
      await take();
    }, undefined, this.endClaim(q));
    this.d.log.info({ scope, reason: 'lifted' }, 'quarantine ended');
    return { graceUntil };
  }

  /**
   * Quarantines whose time is up: forget them and record the end once (across instances). Called after every
   * send decision with what this instance knows, and every minute by the server (`ctx.background`) with the stored
   * open quarantines too (`fromStore`), so that an end is recorded within a minute with no traffic to the
   * scope, after a restart, and on an instance that never saw the quarantine.
   */
  async endExpired(now: number, fromStore = false): Promise<void> {
    for (const [scope, q] of this.d.state.quarantines) {
      const mine = this.active.get(scope);
      if (!mine || mine.since !== q.since) this.active.set(scope, q);
    }
    const due: Quarantine[] = [];
    for (const [scope, q] of this.active) {
      if (q.until > now) continue;
      this.active.delete(scope);
      due.push(q);
    }
    if (fromStore) {
      for (const { value: q } of await this.d.store.listSettings<Quarantine>(OPEN, now)) {
        if (q.until <= now && !due.some((x) => x.scope === q.scope && x.since === q.since)) due.push(q);
      }
    }
    for (const q of due) await this.end(q, now);
  }

  /** Record `q`'s end once across instances: renewed if its scope is still hammered, else expired. */
  private async end(q: Quarantine, now: number, renew = true): Promise<void> {
    const scope = q.scope;
    // One instance claims the end; it renews the quarantine if the scope is still hammered. Journaled ahead
    // of the claim: an instance that claims it and stops before the event leaves its entry.
    const expired = this.endEvent(q, 'expired', null, now);
    const claim = this.endClaim(q);
    const ended = await recordedStep(
      this.d.store,
      expired,
      async (take) => {
        if (!(await take())) return null;
        // Claimed: from here on the end must be recorded (the claim keeps every other instance from it for a
        // week), so a failed renewal ends the quarantine as expired instead of throwing the record away. (An end
        // found long after it, after a restart, is judged on the last hour's refusals too: there were none.)
        try {
          const renewal = renew ? await this.renewal(q, now) : null;
          const next = renewal ? await this.start(scope as QuarantineScope, q.mode, 'attack_persists', now, { figures: renewal, by: null, usual: renewal.usual }) : null;
          return { next };
        } catch (err) {
          this.d.log.error({ err, scope }, 'quarantine renewal failed; recorded as expired');
          return { next: null };
        }
      },
      // Not claimed: another instance records it (this entry is deleted, nothing written).
      (won, e) => (won === null ? null : won.next ? this.endEvent(q, 'renewed', null, now, e.id) : e),
      claim,
    );
    // Recorded here or by another instance: nothing is left open. Best effort (a week's TTL otherwise).
    await this.d.store.deleteSetting(openKey(q)).catch(() => {});
    if (ended) this.d.log.info({ scope, reason: ended.next ? 'renewed' : 'expired' }, 'quarantine ended');
  }

  /** Figures for renewing an ending quarantine whose scope is still hammered, or null. */
  private async renewal(q: Quarantine, now: number): Promise<(Record<string, unknown> & { usual: number }) | null> {
    const cfg = this.config();
    if (!cfg.enabled || !cfg.renew.enabled) return null;
    const history = await this.d.store.getSetting<History>(HISTORY + q.scope, now);
    const [refused] = await this.d.store.peekLimits([refusedSpec(q.scope, 0)], now);
    const usual = history?.usual ?? (await this.usualVolume(q.scope, now));
    const r = judgeRenewal(q.reason, refused ?? 0, usual, cfg);
    return r ? { ...r, renews: q.since } : null;
  }

  /**
   * The scope's usual hourly volume (messages to distinct numbers): the larger of its last day's average and
   * its last hour — the larger, so that a scope with little history is not renewed on its real traffic alone.
   */
  private async usualVolume(scope: string, now: number): Promise<number> {
    const { counts } = await this.d.store.tally(null, [sendTally(scope, 0)], now);
    const sends = toSends(counts[0]!);
    return Math.max(sends[1440] / 24, sends[60]);
  }

  /** The once-only claim of recording `q`'s end (one instance records it), and how to find its record. */
  private endClaim(q: Quarantine): StepClaim {
    const isPrefix = q.scope.startsWith('prefix:');
    return {
      key: `pumping:end:${q.scope}:${q.since}`,
      ttlMs: WEEK,
      find: { query: { type: 'quarantine.end', from: q.since, ...(isPrefix ? { prefix: q.scope.slice(7) } : {}) }, data: { scope: q.scope, since: q.since } },
    };
  }

  private endEvent(q: Quarantine, reason: 'expired' | 'lifted' | 'renewed', by: string | null, now: number, id = eventId()): AuditEvent {
    const isPrefix = q.scope.startsWith('prefix:');
    return {
      id,
      at: now,
      type: 'quarantine.end',
      prefix: isPrefix ? q.scope.slice(7) : null,
      country: isPrefix ? (this.regionOfPrefix.get(q.scope.slice(7)) ?? null) : q.scope.slice(8),
      decision: null,
      reasons: [reason],
      // An expiry ended at `until`, whenever it is recorded (`at`: within a minute by the timer; later after a restart).
      data: { scope: q.scope, mode: q.mode, reason: q.reason, since: q.since, until: q.until, endedAt: reason === 'expired' ? Math.min(q.until, now) : now, by },
    };
  }

  /** Active quarantines, soonest ending first. */
  async list(now: number): Promise<QuarantineView[]> {
    const rows = await this.d.store.listSettings<Quarantine>(SETTING.quarantine, now);
    return rows
      .map((r) => r.value)
      .filter((q) => q.until > now)
      .sort((a, b) => a.until - b.until)
      .map((q) => ({ ...q, remainingMs: q.until - now }));
  }
}

const installed = new WeakMap<AppContext, PumpingDefense>();

/** The defense installed on a context (admin tools, tests), if any. */
export function pumpingDefenseOf(ctx: AppContext): PumpingDefense | undefined {
  return installed.get(ctx);
}

/** Layer installer (src/service/layers.ts): the hooks and the admin quarantine routes. */
export function installPumpingDefense(ctx: AppContext): void {
  const defense = new PumpingDefense({ store: ctx.store, state: ctx.state, signals: ctx.signals, policy: ctx.policy, clock: ctx.clock, log: ctx.log });
  installed.set(ctx, defense);
  ctx.hooks.push(defense.hooks);
  // Ends are recorded within a minute even when no request comes to the scope.
  // A memory store is one process's alone (the replay, tests): what this instance knows is all there is.
  const shared = ctx.store.kind !== 'memory';
  ctx.background.push({ name: 'quarantine ends', everyMs: END_CHECK_MS, run: (now) => defense.endExpired(now, shared) });
  ctx.extraRoutes.push((c) => adminQuarantineRoutes(c, defense));
  // Quarantines of a prefix of another length (stored before they were refused, or before limits.prefixDigits
  // changed) apply to no send: said once at start-up, where an operator reads after an upgrade.
  void defense
    .list(ctx.clock())
    .then((list) => {
      const digits = ctx.policy().limits.prefixDigits;
      const stale = list.filter((q) => !inEffect(q.scope, digits)).map((q) => q.scope);
      if (stale.length > 0) ctx.log.warn({ scopes: stale }, `quarantines not in effect: a quarantined prefix must be a calling code and ${digits} more digits; lift them (otp-shield quarantines lift <scope>) and pause or quarantine the range instead`);
    })
    .catch(() => {});
}
