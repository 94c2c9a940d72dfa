/**
 * Prometheus metrics (prom-client) in a registry of their own per application context, so several apps in
 * one process (tests, replay) never share or clash on metric names.
 *
 * Label values are bounded: countries (ISO regions), channels, senders, decisions and reason codes are
 * fixed sets; routes are route patterns, never raw URLs. Number prefixes are deliberately NOT a label
 * (thousands of series under an attack); they are in the stats API instead.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MonitorFact } from './facts.ts';
import type { PoolStats } from '../store/interface.ts';
import { maskedScope } from '../service/read-masking.ts';

export interface GaugeSources {
  /** Tightened throttle scopes (`global`, `country:ID`, `prefix:+62812`). */
  throttled(): string[];
  quarantines(): { scope: string; mode: string }[];
  pauses(): string[];
  /** Conversion over the last hour on this instance, per scope (`global`, `country:ID`). */
  conversion(): Map<string, { started: number; approved: number }>;
  /** The store's connection pool, when it has one (PostgreSQL). */
  pool?(): PoolStats | null;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** A provider's API answers in tens of ms to seconds; a sender's timeout is 10 s by default. */
const SENDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export function createMetrics(sources: GaugeSources, o: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (o.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'otpshield_' });
  const registers = [registry];
  // Money is added up in integer micro-units and divided once per scrape: float increments (0.21 + 0.42 …)
  // drift (0.6299999999999999), the totals of the stats API do not.
  type MoneyLabels = { country: string; channel: string; currency: string };
  const money = { spend: new Map<string, { labels: MoneyLabels; micros: number }>(), savings: new Map<string, { labels: MoneyLabels; micros: number }>() };
  const moneyCounter = (name: string, help: string, totals: Map<string, { labels: MoneyLabels; micros: number }>) =>
    new Counter({
      name,
      help,
      labelNames: ['country', 'channel', 'currency'] as const,
      registers,
      collect() {
        this.reset();
        for (const t of totals.values()) this.inc(t.labels, t.micros / 1e6);
      },
    });

  const m = {
    registry,
    httpRequests: new Counter({ name: 'otpshield_http_requests_total', help: 'HTTP requests by route pattern, method and status.', labelNames: ['route', 'method', 'status'] as const, registers }),
    httpDuration: new Histogram({ name: 'otpshield_http_request_duration_seconds', help: 'HTTP request latency by route pattern.', labelNames: ['route', 'method'] as const, buckets: LATENCY_BUCKETS, registers }),
    sendRequests: new Counter({ name: 'otpshield_send_requests_total', help: 'Send requests by decision, channel and country of the number.', labelNames: ['decision', 'channel', 'country'] as const, registers }),
    decisionReasons: new Counter({ name: 'otpshield_decision_reasons_total', help: 'Reason codes of send decisions (a decision may have several).', labelNames: ['decision', 'reason'] as const, registers }),
    sends: new Counter({ name: 'otpshield_sends_total', help: 'Messages handed to a sender.', labelNames: ['sender', 'channel', 'country'] as const, registers }),
    senderDuration: new Histogram({
      name: 'otpshield_sender_duration_seconds',
      help: "How long each sender took to accept a message (or fail): the provider's latency as seen from here, by sender, channel and result.",
      labelNames: ['sender', 'channel', 'result'] as const,
      buckets: SENDER_BUCKETS,
      registers,
    }),
    senderAttempts: new Counter({ name: 'otpshield_sender_attempts_total', help: 'Attempts at a message by sender and result: a failure here with a fallback that delivered is no failed send.', labelNames: ['sender', 'channel', 'result'] as const, registers }),
    deliveryFailures: new Counter({ name: 'otpshield_delivery_failures_total', help: 'Sends every sender refused (the verification failed).', labelNames: ['channel', 'country'] as const, registers }),
    receipts: new Counter({ name: 'otpshield_delivery_receipts_total', help: 'Delivery receipts (status callbacks) by final status.', labelNames: ['sender', 'status', 'country'] as const, registers }),
    receiptsRejected: new Counter({ name: 'otpshield_delivery_receipts_rejected_total', help: 'Status callbacks refused (bad signature, unknown sender).', labelNames: ['sender', 'reason'] as const, registers }),
    checks: new Counter({ name: 'otpshield_checks_total', help: 'Code checks by result.', labelNames: ['result'] as const, registers }),
    verificationsStarted: new Counter({ name: 'otpshield_verifications_started_total', help: 'Verifications whose first code was sent.', labelNames: ['country'] as const, registers }),
    verificationsApproved: new Counter({ name: 'otpshield_verifications_approved_total', help: 'Verifications approved.', labelNames: ['country'] as const, registers }),
    spend: moneyCounter('otpshield_spend_total', 'Estimated spend on sent messages, from the price table.', money.spend),
    savings: moneyCounter('otpshield_savings_total', 'Estimated spend avoided: price of blocked and tarpitted requests.', money.savings),
    /** Add `micros` to the spend or savings of a label set. */
    addMoney(kind: 'spend' | 'savings', labels: MoneyLabels, micros: number): void {
      const key = `${labels.country}|${labels.channel}|${labels.currency}`;
      const t = money[kind].get(key);
      if (t) t.micros += micros;
      else money[kind].set(key, { labels, micros });
    },
    events: new Counter({ name: 'otpshield_audit_events_total', help: 'Audit events written, by type.', labelNames: ['type'] as const, registers }),
    storeDuration: new Histogram({ name: 'otpshield_store_operation_duration_seconds', help: 'Store operation latency.', labelNames: ['op'] as const, buckets: STORE_BUCKETS, registers }),
    storeErrors: new Counter({ name: 'otpshield_store_errors_total', help: 'Store operations that threw.', labelNames: ['op'] as const, registers }),
    alerts: new Counter({ name: 'otpshield_alerts_total', help: 'Alerts raised, by rule.', labelNames: ['rule', 'severity'] as const, registers }),
    alertSinkFailures: new Counter({ name: 'otpshield_alert_sink_failures_total', help: 'Alert deliveries that failed, by sink.', labelNames: ['sink'] as const, registers }),
    breakerTrips: new Counter({ name: 'otpshield_budget_breaker_trips_total', help: 'Countries paused by the daily budget circuit breaker.', labelNames: ['country'] as const, registers }),
  };

  new Gauge({
    name: 'otpshield_throttle_tightened',
    help: 'Scopes currently tightened by dynamic throttling (1 per scope).',
    labelNames: ['scope'] as const,
    registers,
    collect() {
      this.reset();
      for (const s of sources.throttled()) this.set({ scope: s }, 1);
    },
  });
  new Gauge({
    name: 'otpshield_quarantines_active',
    help: 'Active quarantines (1 per scope).',
    labelNames: ['scope', 'mode'] as const,
    registers,
    collect() {
      this.reset();
      for (const q of sources.quarantines()) this.set({ scope: q.scope, mode: q.mode }, 1);
    },
  });
  new Gauge({
    name: 'otpshield_pauses_active',
    help: 'Active emergency pauses (1 per scope: all, country:XX, prefix:+…, channel:…).',
    labelNames: ['scope'] as const,
    registers,
    collect() {
      this.reset();
      // A pause on a whole number would put the number in a label (every scraper's storage): masked.
      for (const p of sources.pauses()) this.set({ scope: maskedScope(p) }, 1);
    },
  });
  new Gauge({
    name: 'otpshield_store_pool_connections',
    help: 'PostgreSQL connections of this instance: total open, idle, requests waiting for one, and those held by slow queries (search, export, purge, sweep).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      this.reset();
      const p = sources.pool?.() ?? null;
      if (!p) return;
      this.set({ state: 'total' }, p.total);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
      this.set({ state: 'slow' }, p.slow);
    },
  });
  new Gauge({
    name: 'otpshield_conversion_ratio',
    help: 'Approved / started verifications over the last hour on this instance (scopes with starts only).',
    labelNames: ['scope'] as const,
    registers,
    collect() {
      this.reset();
      for (const [scope, c] of sources.conversion()) if (c.started > 0) this.set({ scope }, c.approved / c.started);
    },
  });
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

const label = (v: string | null | undefined) => v ?? 'unknown';

/** Count one monitoring fact. */
export function countFact(m: Metrics, f: MonitorFact, currency: string): void {
  switch (f.kind) {
    case 'event':
      m.events.inc({ type: f.type });
      break;
    case 'request':
      m.sendRequests.inc({ decision: f.decision, channel: f.channel, country: label(f.country) });
      for (const r of f.reasons) m.decisionReasons.inc({ decision: f.decision, reason: r });
      if (f.decision === 'block' || f.decision === 'tarpit') m.addMoney('savings', { country: label(f.country), channel: f.channel, currency }, f.priceMicros);
      break;
    case 'sent':
      m.sends.inc({ sender: f.sender, channel: f.channel, country: label(f.country) });
      m.addMoney('spend', { country: label(f.country), channel: f.channel, currency }, f.priceMicros);
      if (f.first) m.verificationsStarted.inc({ country: label(f.country) });
      break;
    case 'delivery_failed':
      m.deliveryFailures.inc({ channel: f.channel, country: label(f.country) });
      break;
    case 'attempt':
      m.senderAttempts.inc({ sender: f.sender, channel: f.channel, result: f.ok ? 'ok' : 'failed' });
      if (f.ms !== undefined) m.senderDuration.observe({ sender: f.sender, channel: f.channel, result: f.ok ? 'ok' : 'failed' }, f.ms / 1000);
      break;
    case 'approved':
      m.verificationsApproved.inc({ country: label(f.country) });
      break;
    case 'check':
      m.checks.inc({ result: f.result });
      break;
    case 'receipt':
      m.receipts.inc({ sender: f.sender, status: f.status, country: label(f.country) });
      break;
  }
}
