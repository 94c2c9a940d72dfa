/**
 * The monitoring runtime of one application context: wires the audit-event tap and the service hooks to
 * the metrics, the hourly aggregates, the alert engine and the budget breaker, and owns the timers
 * (aggregate flush, alert evaluation) while a server runs.
 *
 * Everything on the request path is in memory except two things: the budget counters (one store call per
 * sent message, only when budgets are configured) and the breaker's pause. Failures here are logged and
 * counted, never thrown into a request: monitoring must not take sends down with it.
 */
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../service/context.ts';
import type { ServiceHooks } from '../service/verifications.ts';
import type { AuditEvent, Verification } from '../store/interface.ts';
import { AlertEngine, utcDay, type Alert } from './alerts.ts';
import { HOUR_MS, OTHER, StatsAggregator, hourOf } from './aggregate.ts';
import { BUDGET_REASON, recordSpend, reservationSpec, spendToday, tripBreaker, type BreakerTrip } from './budget.ts';
import type { Decision } from '../engine/decide.ts';
import type { SendFacts } from '../engine/facts.ts';
import {
  monitoringSection,
  resolveMonitoringConfig,
  resolveMonitoringPolicy,
  type MonitoringConfig,
  type MonitoringPolicy,
} from './config.ts';
import { factsFromEvent, type MonitorFact } from './facts.ts';
import { countFact, createMetrics, type Metrics } from './metrics.ts';
import { priceMicros } from './prices.ts';
import { logSink, webhookSink, type AlertSink } from './sinks.ts';
import { computeStats, type GroupBy, type StatsResult } from './stats.ts';
import { instrumentStore } from './store-instrument.ts';
import { deepMerge } from '../lib/merge.ts';
import { every } from '../lib/every.ts';
import { maskPhone } from '../signals/phone.ts';
import { isEmailKey, maskEmail } from '../signals/email.ts';

const registry = new WeakMap<AppContext, Monitoring>();

/** The monitoring runtime installed on a context, if any. */
export function monitoringOf(ctx: AppContext): Monitoring | undefined {
  return registry.get(ctx);
}

/** Numbers (and addresses) in alerts are masked as in logs and exports, so one search finds them in all three. */
export const maskNumber = (to: string): string => (isEmailKey(to) ? maskEmail(to) : maskPhone(to));

type Overrides = { policy?: Record<string, unknown>; config?: Record<string, unknown> };

export class Monitoring {
  readonly instanceId = randomBytes(6).toString('base64url');
  readonly metrics: Metrics;
  readonly aggregator: StatsAggregator;
  readonly alerts: AlertEngine;
  private overrides: Overrides = {};
  private cachedPolicy: { src: unknown; ov: Overrides; value: MonitoringPolicy } | null = null;
  private cachedConfig: { ov: Overrides; value: MonitoringConfig; sinks: AlertSink[] } | null = null;
  private readonly pending = new Set<Promise<unknown>>();
  private timers: NodeJS.Timeout[] = [];
  private warnedPolicy = false;

  constructor(readonly ctx: AppContext) {
    this.metrics = createMetrics({
      throttled: () => [...ctx.state.throttles].filter(([, s]) => s.tightenedSince !== null).map(([k]) => k),
      quarantines: () => [...ctx.state.quarantines].filter(([, q]) => q.until > ctx.clock()).map(([scope, q]) => ({ scope, mode: q.mode })),
      pauses: () => [...ctx.state.pauses.keys()],
      conversion: () => this.alerts.conversionBetween(ctx.clock() - HOUR_MS, ctx.clock() + 1),
      pool: () => ctx.store.poolStats?.() ?? null,
    });
    this.aggregator = new StatsAggregator({
      instanceId: this.instanceId,
      maxPrefixes: () => this.config().stats.maxPrefixesPerHour,
      retentionMs: () => this.config().stats.retentionDays * 86_400_000,
    });
    const mask = ctx.config.privacy.maskNumbersInLogs;
    this.alerts = new AlertEngine(mask ? { maskNumber } : {});
    instrumentStore(ctx.store, {
      op: (name, seconds, ok) => {
        this.metrics.storeDuration.observe({ op: name }, seconds);
        if (!ok) this.metrics.storeErrors.inc({ op: name });
      },
      events: (events) => this.observeEvents(events),
    });
    registry.set(ctx, this);
  }

  /**
   * Overrides merged over the policy's and the configuration's `monitoring` sections. For embedding and
   * tests, and for deployments whose policy/config schema does not declare `monitoring` yet.
   */
  setOverrides(o: Overrides): void {
    this.overrides = o;
    this.cachedPolicy = null;
    this.cachedConfig = null;
  }

  /** Prices, budgets and alert rules: defaults ← policy `monitoring` ← overrides. */
  policy(): MonitoringPolicy {
    const src = monitoringSection(this.ctx.policy());
    const c = this.cachedPolicy;
    if (c && c.src === src && c.ov === this.overrides) return c.value;
    const doc = deepMerge((src as Record<string, unknown> | undefined) ?? {}, this.overrides.policy ?? {});
    const res = resolveMonitoringPolicy(doc);
    if (!res.ok && !this.warnedPolicy) {
      this.warnedPolicy = true;
      this.ctx.log.warn({ errors: res.errors }, 'invalid monitoring section in the policy; using the defaults');
    }
    this.cachedPolicy = { src, ov: this.overrides, value: res.value };
    return res.value;
  }

  /** Sinks, metrics port, receipts, stats: defaults ← configuration `monitoring` ← overrides. */
  config(): MonitoringConfig {
    return this.configEntry().value;
  }

  private configEntry(): { value: MonitoringConfig; sinks: AlertSink[] } {
    const c = this.cachedConfig;
    if (c && c.ov === this.overrides) return c;
    const doc = deepMerge((monitoringSection(this.ctx.config) as Record<string, unknown> | undefined) ?? {}, this.overrides.config ?? {});
    const res = resolveMonitoringConfig(doc);
    if (!res.ok) this.ctx.log.warn({ errors: res.errors }, 'invalid monitoring configuration; using the defaults');
    const value = res.value;
    const sinks: AlertSink[] = [];
    if (value.alerts.log) sinks.push(logSink(this.ctx.log));
    for (const w of value.alerts.webhooks) sinks.push(webhookSink(w, { app: this.ctx.config.appName, now: this.ctx.clock }));
    this.cachedConfig = { ov: this.overrides, value, sinks };
    return this.cachedConfig;
  }

  // ------------------------------------------------------------------ inputs

  /** The audit-event tap (see store-instrument.ts). Never throws. */
  observeEvents(events: AuditEvent[]): void {
    try {
      const p = this.policy();
      for (const e of events) for (const f of factsFromEvent(e, p.prices)) this.apply(f);
    } catch (err) {
      this.ctx.log.error({ err }, 'monitoring: cannot observe events');
    }
  }

  private apply(f: MonitorFact): void {
    const p = this.policy();
    countFact(this.metrics, f, p.prices.currency);
    this.aggregator.apply(f);
    this.alerts.observe(f, p.alerts);
  }

  /** Listeners on the verification flow. Errors are contained: a hook error would fail the request. */
  readonly hooks: ServiceHooks = {
    afterSent: async (m, now) => {
      try {
        const p = this.policy();
        const price = priceMicros(p.prices, m.region, m.channel);
        const out = await recordSpend(this.ctx.store, p, { country: m.region, priceMicros: price, now });
        if (!out) return;
        this.alerts.observeSpend(out.snapshot);
        if (out.trip) this.tripped(out.trip, now);
      } catch (err) {
        this.ctx.log.error({ err }, 'monitoring: budget accounting failed');
      }
    },
    // The price of each allowed send, reserved against its country's budget with the send's own limits.
    sendLimits: (facts: SendFacts, now: number) => {
      const p = this.policy();
      const country = facts.number.region;
      const spec = reservationSpec(p, { country, priceMicros: priceMicros(p.prices, country, facts.channel), now, breakerOff: country !== null && this.ctx.state.breakerOffFor(country, utcDay(now)) });
      return spec ? [spec] : [];
    },
    // A send its country's budget refused trips the breaker (once a day: the first such refusal, when no send
    // reached the budget exactly).
    afterDecision: async (facts: SendFacts, decision: Decision, now: number) => {
      const country = facts.number.region;
      if (country === null || !decision.reasons.includes(BUDGET_REASON)) return;
      try {
        const p = this.policy();
        const spent = await spendToday(this.ctx.store, [country], now);
        const trip = await tripBreaker(this.ctx.store, p, { country, spendMicros: spent.countries.get(country) ?? 0, now });
        if (trip) this.tripped(trip, now);
      } catch (err) {
        this.ctx.log.error({ err }, 'monitoring: cannot trip the budget breaker');
      }
    },
    afterApproved: (v: Verification, now: number) => {
      try {
        if (v.tarpit || v.sender === 'test-number') return;
        const p = this.policy();
        const phone = this.ctx.signals.parsePhone(v.to);
        const country = phone.ok ? phone.region : null;
        const prefix = phone.ok ? this.ctx.signals.prefixOf(phone.e164, this.ctx.policy().limits.prefixDigits) : null;
        this.apply({ kind: 'approved', at: now, country, prefix, channel: v.channel, spendMicros: priceMicros(p.prices, country, v.channel) * v.sends });
      } catch (err) {
        this.ctx.log.error({ err }, 'monitoring: cannot count an approval');
      }
    },
  };

  /** The breaker paused a country: every instance's next refresh sees the pause; this one's at once. */
  private tripped(t: BreakerTrip, now: number): void {
    const p = this.policy();
    this.ctx.state.invalidate();
    this.metrics.breakerTrips.inc({ country: t.country });
    const money = (m: number) => `${(m / 1e6).toFixed(2)} ${p.prices.currency}`;
    this.track(
      this.emit({
        rule: 'budget_breaker',
        scope: `country:${t.country}`,
        key: `budget_breaker:${t.country}:${utcDay(now)}`,
        severity: 'critical',
        message: `Sends to ${t.country} are paused until ${new Date(t.until).toISOString()}: spend today ${money(t.spendMicros)} reached the daily budget of ${money(t.budgetMicros)}.`,
        value: t.spendMicros / 1e6,
        threshold: t.budgetMicros / 1e6,
        at: now,
        quietMs: t.until - now + 60_000,
        data: { country: t.country, until: new Date(t.until).toISOString() },
      }),
    );
  }

  // ------------------------------------------------------------------ alerts

  /** Evaluate the alert rules at the context's clock and dispatch what fires. Returns the alerts sent. */
  async tick(): Promise<Alert[]> {
    const now = this.ctx.clock();
    const fired = this.alerts.evaluate(now, this.policy());
    const sent: Alert[] = [];
    for (const a of fired) if (await this.emit(a)) sent.push(a);
    return sent;
  }

  /**
   * Send one alert to every sink, unless another instance (or this one) sent the same key within the
   * cooldown: the store's one-time token is the fleet-wide de-duplication.
   */
  async emit(a: Alert): Promise<boolean> {
    const p = this.policy();
    const { sinks } = this.configEntry();
    try {
      if (!(await this.ctx.store.useOnce(`mon:alert:${a.key}`, a.quietMs ?? p.alerts.cooldownMinutes * 60_000, a.at))) return false;
      this.metrics.alerts.inc({ rule: a.rule, severity: a.severity });
      await this.ctx.store.appendEvents([
        { id: `ev_${randomBytes(12).toString('base64url')}`, at: a.at, type: 'alert', decision: a.severity, reasons: [a.rule], data: { ...a } },
      ]);
    } catch (err) {
      this.ctx.log.error({ err, alert: a.key }, 'monitoring: cannot record an alert');
    }
    const results = await Promise.allSettled(sinks.map((s) => s.send(a)));
    results.forEach((r, i) => {
      const name = sinks[i]?.name ?? 'unknown';
      if (r.status === 'fulfilled' && r.value.ok) return;
      this.metrics.alertSinkFailures.inc({ sink: name });
      this.ctx.log.warn({ sink: name, detail: r.status === 'fulfilled' ? r.value.detail : String(r.reason) }, 'alert sink failed');
    });
    return true;
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err) => this.ctx.log.error({ err }, 'monitoring: background task failed')).finally(() => this.pending.delete(q));
    this.pending.add(q);
  }

  /** Resolves when background work started so far (breaker alerts) has finished. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  // ------------------------------------------------------------------ stats

  async flush(): Promise<void> {
    await this.aggregator.flush(this.ctx.store, this.ctx.clock());
  }

  async stats(q: { from: number; to: number; groupBy: GroupBy | null; limit: number }): Promise<StatsResult> {
    const docs = await this.aggregator.read(this.ctx.store, q.from, q.to, this.ctx.clock());
    return computeStats(docs, { ...q, currency: this.policy().prices.currency });
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * The countries whose spend today is shown against a budget: those with a budget of their own and, when a
   * `defaultCountry` budget applies to every other country, each country with spend today (this deployment's
   * hourly figures, all instances), so the one its breaker paused is among them.
   */
  async budgetedCountries(now: number): Promise<string[]> {
    const b = this.policy().budgets;
    const out = new Set(Object.keys(b.countries));
    if (b.defaultCountry !== null) {
      const dayStart = Math.floor(now / 86_400_000) * 86_400_000;
      for (const d of await this.aggregator.read(this.ctx.store, dayStart, now + 1, now)) {
        for (const [c, cell] of Object.entries(d.countries)) if ((cell.spend ?? 0) > 0 && c !== OTHER) out.add(c);
      }
    }
    return [...out].sort();
  }

  /**
   * Start the timers (only while a server runs: one-shot commands and replays build contexts too, and must
   * never send alerts). Seeds the alert engine with stored history so a restart does not forget it.
   */
  async start(): Promise<void> {
    if (this.timers.length > 0) return;
    const cfg = this.config();
    const now = this.ctx.clock();
    try {
      const p = this.policy();
      const learn = p.alerts.unexpectedRegion.learnHours * HOUR_MS;
      const cd = p.alerts.conversionDrop;
      const conversionBack = cd.windowMinutes * 60_000 + cd.baselineHours * HOUR_MS;
      const docs = await this.aggregator.read(this.ctx.store, hourOf(now - Math.max(learn, conversionBack)), now + 1, now);
      // The conversion baseline too (whole hours before this one; the current hour starts from this process's
      // own facts), so that `conversion_drop` is not blind for its baseline's length after every deploy.
      this.alerts.seedConversion(docs.filter((d) => d.hour >= hourOf(now - conversionBack) && d.hour < hourOf(now)));
      // Both kinds of country the engine learns from (the numbers' and the clients' IPs'), each with the last
      // hour it was seen in: a country seen an hour before the restart is not "new" after it.
      const lastSeen = new Map<string, number>();
      for (const d of docs) {
        const seenAt = Math.min(now, d.hour + HOUR_MS - 1);
        for (const c of [...Object.keys(d.countries), ...Object.keys(d.ipCountries ?? {})]) lastSeen.set(c, Math.max(lastSeen.get(c) ?? 0, seenAt));
      }
      if (docs.length > 0) this.alerts.seedRegions(lastSeen, Math.min(...docs.map((d) => d.hour)));
      const budgetCountries = await this.budgetedCountries(now);
      if (p.budgets.dailyTotal !== null || budgetCountries.length > 0) this.alerts.observeSpend(await spendToday(this.ctx.store, budgetCountries, now));
    } catch (err) {
      this.ctx.log.warn({ err }, 'monitoring: cannot seed alert history');
    }
    const failed = (err: unknown) => this.ctx.log.error({ err }, 'monitoring: periodic task failed');
    this.timers.push(every(cfg.stats.flushSeconds * 1000, () => this.flush(), failed), every(cfg.alerts.evaluateSeconds * 1000, () => this.tick(), failed));
  }

  /** Stop the timers, finish background work and write the last aggregates. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.idle();
    try {
      await this.flush();
    } catch (err) {
      this.ctx.log.warn({ err }, 'monitoring: final flush failed');
    }
  }
}
