/**
 * The alert rules engine: pure, in memory, driven by monitoring facts and an explicit `now`.
 *
 * Facts are counted in one-minute buckets; `evaluate(now)` sums the buckets of each rule's window and
 * returns the alerts that fire, each with a stable `key` (rule + scope). A key that fired is not returned
 * again within the cooldown, so a lasting condition produces one alert per cooldown, not one per
 * evaluation. (The runtime also de-duplicates across instances through the store, see monitor.ts.)
 *
 * Each instance sees its own traffic: with several instances behind a balancer, per-number and per-IP
 * spikes are judged on each instance's share. Daily spend is the exception: it comes from the budget
 * counters, which are shared and exact (budget.ts).
 */
import type { MonitoringPolicy } from './config.ts';
import { FAILED_CHECK_RESULTS, type MonitorFact } from './facts.ts';
import { OTHER, type HourDoc } from './aggregate.ts';

export const ALERT_RULES = [
  'check_failure_rate',
  'request_spike',
  'conversion_drop',
  'unexpected_region',
  'outside_hours',
  'delivery_rate_drop',
  'sender_failures',
  'quarantine_started',
  'daily_spend',
  'budget_breaker',
] as const;
export type AlertRule = (typeof ALERT_RULES)[number];

export interface Alert {
  rule: AlertRule;
  /** What the alert is about: `global`, `country:ID`, `prefix:+62812`, `ip:…`, `number:…`, `sender:…`. */
  scope: string;
  /** De-duplication key: rule + scope (+ day for daily rules). */
  key: string;
  severity: 'warning' | 'critical';
  message: string;
  value: number;
  threshold: number;
  at: number;
  /** How long this key stays quiet after firing, when not the rule cooldown (daily rules: to the day's end). */
  quietMs?: number;
  data?: Record<string, unknown>;
}

type Rules = MonitoringPolicy['alerts'];

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** At most this many alerts of one rule per evaluation: the worst first, the rest summarised. */
const MAX_PER_RULE = 20;

interface Ratio {
  n: number;
  d: number;
}

interface Bucket {
  checks: Ratio; // n = failed, d = all
  spikes: { number: Map<string, number>; ip: Map<string, number>; prefix: Map<string, number>; country: Map<string, number> } | null;
  regions: Map<string, number>;
  offHours: number;
  conversion: Map<string, Ratio>; // scope → n = approved, d = started
  delivery: Map<string, Ratio>; // scope → n = delivered, d = receipts
  attempts: Map<string, Ratio>; // `sender channel` → n = failed, d = attempts
  failedSends: Map<string, number>; // channel → sends every sender refused
}

export interface SpendSnapshot {
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  totalMicros: number;
  countries: Map<string, number>;
}

export interface AlertEngineOptions {
  /** Distinct numbers/IPs/prefixes counted per minute and dimension; beyond it new keys are not tracked. */
  maxKeysPerBucket?: number;
  /** How numbers appear in alerts (messages, scopes and keys) when masking is on. */
  maskNumber?: (e164: string) => string;
}

function inc(map: Map<string, number>, key: string | null, cap: number): void {
  if (!key) return;
  const cur = map.get(key);
  if (cur !== undefined) map.set(key, cur + 1);
  else if (map.size < cap) map.set(key, 1);
}

function incRatio(map: Map<string, Ratio>, key: string, n: number, d: number): void {
  const r = map.get(key);
  if (r) {
    r.n += n;
    r.d += d;
  } else map.set(key, { n, d });
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

export function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

export class AlertEngine {
  private readonly buckets = new Map<number, Bucket>();
  /** Country → first time seen in the current run of traffic (a gap longer than learnHours restarts it). */
  private readonly regions = new Map<string, { first: number; last: number }>();
  /** Key → time until which it stays quiet. */
  private readonly quietUntil = new Map<string, number>();
  private readonly cap: number;
  private readonly mask: (e164: string) => string;
  private spend: SpendSnapshot | null = null;
  /** Quarantine starts since the last evaluation. */
  private quarantines: Extract<MonitorFact, { kind: 'quarantine' }>[] = [];
  private learningSince: number | null = null;

  constructor(o: AlertEngineOptions = {}) {
    this.cap = o.maxKeysPerBucket ?? 50_000;
    this.mask = o.maskNumber ?? ((x) => x);
  }

  private bucket(at: number): Bucket {
    const start = Math.floor(at / MINUTE) * MINUTE;
    let b = this.buckets.get(start);
    if (!b) {
      b = {
        checks: { n: 0, d: 0 },
        spikes: { number: new Map(), ip: new Map(), prefix: new Map(), country: new Map() },
        regions: new Map(),
        offHours: 0,
        conversion: new Map(),
        delivery: new Map(),
        attempts: new Map(),
        failedSends: new Map(),
      };
      this.buckets.set(start, b);
    }
    return b;
  }

  /**
   * Countries known from before this engine started (the last day of stored aggregates), each with the time
   * it was last seen, so the learned unexpected-region rule does not treat every country as new after a
   * restart. `since`: the start of that history.
   */
  seedRegions(lastSeen: Iterable<[country: string, at: number]>, since: number): void {
    for (const [c, at] of lastSeen) {
      const known = this.regions.get(c);
      if (!known) this.regions.set(c, { first: since, last: at });
      else known.last = Math.max(known.last, at);
    }
    this.learningSince ??= since;
  }

  /**
   * Verifications started and approved per hour before a restart (the deployment's hourly documents), for the
   * `conversion_drop` baseline: one bucket at each hour's start, globally and per country.
   */
  seedConversion(docs: readonly Pick<HourDoc, 'hour' | 'total' | 'countries'>[]): void {
    for (const d of docs) {
      const b = this.bucket(d.hour);
      incRatio(b.conversion, 'global', d.total.appr ?? 0, d.total.ver ?? 0);
      for (const [c, cell] of Object.entries(d.countries)) {
        if (c !== OTHER && ((cell.ver ?? 0) > 0 || (cell.appr ?? 0) > 0)) incRatio(b.conversion, `country:${c}`, cell.appr ?? 0, cell.ver ?? 0);
      }
      b.spikes = null; // no per-number detail in a seeded bucket
    }
  }

  /** The shared daily spend counters (budget.ts) after the latest send. */
  observeSpend(s: SpendSnapshot): void {
    if (this.spend && this.spend.day === s.day) {
      this.spend.totalMicros = Math.max(this.spend.totalMicros, s.totalMicros);
      for (const [c, v] of s.countries) this.spend.countries.set(c, Math.max(this.spend.countries.get(c) ?? 0, v));
    } else this.spend = { day: s.day, totalMicros: s.totalMicros, countries: new Map(s.countries) };
  }

  observe(f: MonitorFact, rules: Rules): void {
    this.learningSince ??= f.at;
    switch (f.kind) {
      case 'request': {
        const b = this.bucket(f.at);
        if (b.spikes) {
          inc(b.spikes.number, f.number, this.cap);
          inc(b.spikes.ip, f.ip, this.cap);
          inc(b.spikes.prefix, f.prefix, this.cap);
          inc(b.spikes.country, f.country, this.cap);
        }
        for (const c of new Set([f.country, f.ipCountry])) {
          if (!c || c === '001' || c === 'ZZ') continue;
          inc(b.regions, c, this.cap);
          const seen = this.regions.get(c);
          const gap = rules.unexpectedRegion.learnHours * HOUR;
          if (!seen || f.at - seen.last > gap) this.regions.set(c, { first: f.at, last: f.at });
          else seen.last = Math.max(seen.last, f.at);
        }
        if (isOffHours(f.at, rules.outsideHours)) b.offHours++;
        break;
      }
      case 'sent':
        if (f.first) {
          const b = this.bucket(f.at);
          incRatio(b.conversion, 'global', 0, 1);
          if (f.country) incRatio(b.conversion, `country:${f.country}`, 0, 1);
        }
        break;
      case 'approved': {
        const b = this.bucket(f.at);
        incRatio(b.conversion, 'global', 1, 0);
        if (f.country) incRatio(b.conversion, `country:${f.country}`, 1, 0);
        break;
      }
      case 'check': {
        const b = this.bucket(f.at);
        b.checks.d++;
        if (FAILED_CHECK_RESULTS.has(f.result)) b.checks.n++;
        break;
      }
      case 'attempt':
        incRatio(this.bucket(f.at).attempts, `${f.sender} ${f.channel}`, f.ok ? 0 : 1, 1);
        break;
      case 'delivery_failed': {
        const m = this.bucket(f.at).failedSends;
        m.set(f.channel, (m.get(f.channel) ?? 0) + 1);
        break;
      }
      case 'quarantine':
        // Kept until the next evaluation reports it (bounded: the detector starts a scope at most once a minute).
        if (this.quarantines.length < MAX_PER_RULE * 5) this.quarantines.push(f);
        break;
      case 'receipt': {
        const b = this.bucket(f.at);
        const ok = f.status === 'delivered' ? 1 : 0;
        incRatio(b.delivery, `sender:${f.sender}`, ok, 1);
        if (f.country) incRatio(b.delivery, `country:${f.country}`, ok, 1);
        break;
      }
      default:
        break;
    }
  }

  /** Started and approved verifications per scope in [from, to) (for the conversion gauge). */
  conversionBetween(from: number, to: number): Map<string, { started: number; approved: number }> {
    const out = new Map<string, { started: number; approved: number }>();
    for (const b of this.range(from, to)) {
      for (const [k, x] of b.conversion) {
        const cur = out.get(k) ?? { started: 0, approved: 0 };
        cur.started += x.d;
        cur.approved += x.n;
        out.set(k, cur);
      }
    }
    return out;
  }

  /** Buckets with start in [from, to). */
  private range(from: number, to: number): Bucket[] {
    const out: Bucket[] = [];
    for (const [start, b] of this.buckets) if (start >= from && start < to) out.push(b);
    return out;
  }

  private prune(now: number, rules: Rules): void {
    const spikeHorizon = now - (rules.requestSpike.windowMinutes + 1) * MINUTE;
    const longest =
      Math.max(
        rules.checkFailureRate.windowMinutes,
        rules.requestSpike.windowMinutes,
        rules.conversionDrop.windowMinutes + rules.conversionDrop.baselineHours * 60,
        rules.unexpectedRegion.windowMinutes,
        rules.outsideHours.windowMinutes,
        rules.deliveryRateDrop.windowMinutes,
        rules.senderFailures.windowMinutes,
      ) + 1;
    for (const [start, b] of this.buckets) {
      if (start < now - longest * MINUTE) this.buckets.delete(start);
      // Per-number/IP maps are the big ones and only the spike rule needs them.
      else if (start < spikeHorizon) b.spikes = null;
    }
    const gap = rules.unexpectedRegion.learnHours * HOUR;
    for (const [c, s] of this.regions) if (now - s.last > gap) this.regions.delete(c);
    for (const [k, until] of this.quietUntil) if (until <= now) this.quietUntil.delete(k);
  }

  /** Every alert that fires at `now` and is not in its cooldown. Marks the returned ones as fired. */
  evaluate(now: number, policy: MonitoringPolicy): Alert[] {
    const rules = policy.alerts;
    this.prune(now, rules);
    if (!rules.enabled) {
      this.quarantines = [];
      return [];
    }
    const all: Alert[] = [
      ...this.checkFailures(now, rules),
      ...this.spikes(now, rules),
      ...this.conversion(now, rules),
      ...this.unexpectedRegions(now, rules),
      ...this.outsideHours(now, rules),
      ...this.delivery(now, rules),
      ...this.senderFailures(now, rules),
      ...this.quarantineStarts(now, rules),
      ...this.dailySpend(now, policy),
    ];
    const out: Alert[] = [];
    for (const a of all) {
      const until = this.quietUntil.get(a.key);
      if (until !== undefined && now < until) continue;
      this.quietUntil.set(a.key, now + (a.quietMs ?? rules.cooldownMinutes * MINUTE));
      out.push(a);
    }
    return out;
  }

  private checkFailures(now: number, rules: Rules): Alert[] {
    const r = rules.checkFailureRate;
    if (!r.enabled) return [];
    let failed = 0;
    let all = 0;
    for (const b of this.range(now - r.windowMinutes * MINUTE, now + 1)) {
      failed += b.checks.n;
      all += b.checks.d;
    }
    if (all < r.minChecks || failed / all <= r.maxFailureRatio) return [];
    return [
      {
        rule: 'check_failure_rate',
        scope: 'global',
        key: 'check_failure_rate:global',
        severity: 'warning',
        message: `${pct(failed / all)} of ${all} code checks failed in the last ${r.windowMinutes} min (threshold ${pct(r.maxFailureRatio)}): someone may be guessing codes.`,
        value: failed / all,
        threshold: r.maxFailureRatio,
        at: now,
        data: { failed, checks: all, windowMinutes: r.windowMinutes },
      },
    ];
  }

  private spikes(now: number, rules: Rules): Alert[] {
    const r = rules.requestSpike;
    if (!r.enabled) return [];
    const buckets = this.range(now - r.windowMinutes * MINUTE, now + 1);
    const out: Alert[] = [];
    const dims = [
      ['number', r.perNumber],
      ['ip', r.perIp],
      ['prefix', r.perPrefix],
      ['country', r.perCountry],
    ] as const;
    for (const [dim, threshold] of dims) {
      if (threshold <= 0) continue;
      const sums = new Map<string, number>();
      for (const b of buckets) for (const [k, n] of b.spikes?.[dim] ?? []) sums.set(k, (sums.get(k) ?? 0) + n);
      const hits = [...sums].filter(([, n]) => n > threshold).sort((a, b) => b[1] - a[1]);
      for (const [k, n] of hits.slice(0, MAX_PER_RULE)) {
        // Alerts travel (webhooks, audit events, exports): a number appears masked everywhere, its key too.
        // Two numbers with the same masked form share a cooldown; that costs at most a duplicate page.
        const shown = dim === 'number' ? this.mask(k) : k;
        out.push({
          rule: 'request_spike',
          scope: `${dim}:${shown}`,
          key: `request_spike:${dim}:${shown}`,
          severity: dim === 'country' || dim === 'prefix' ? 'critical' : 'warning',
          message: `${n} send requests for ${dim} ${shown} in the last ${r.windowMinutes} min (threshold ${threshold}).`,
          value: n,
          threshold,
          at: now,
          data: { dimension: dim, value: shown, requests: n, windowMinutes: r.windowMinutes, ...(hits.length > MAX_PER_RULE ? { moreScopes: hits.length - MAX_PER_RULE } : {}) },
        });
      }
    }
    return out;
  }

  private conversion(now: number, rules: Rules): Alert[] {
    const r = rules.conversionDrop;
    if (!r.enabled) return [];
    const windowStart = now - r.windowMinutes * MINUTE;
    const cur = new Map<string, Ratio>();
    const base = new Map<string, Ratio>();
    for (const b of this.range(windowStart, now + 1)) for (const [k, x] of b.conversion) incRatio(cur, k, x.n, x.d);
    for (const b of this.range(windowStart - r.baselineHours * HOUR, windowStart)) for (const [k, x] of b.conversion) incRatio(base, k, x.n, x.d);
    const out: Alert[] = [];
    for (const [scope, c] of cur) {
      const bl = base.get(scope);
      if (!bl || c.d < r.minVerifications || bl.d < r.minVerifications) continue;
      const now_ = c.n / c.d;
      const before = bl.n / bl.d;
      if (before <= 0 || now_ >= r.dropRatio * before) continue;
      out.push({
        rule: 'conversion_drop',
        scope,
        key: `conversion_drop:${scope}`,
        severity: 'critical',
        message: `Conversion for ${scope} fell to ${pct(now_)} in the last ${r.windowMinutes} min from ${pct(before)} over the previous ${r.baselineHours} h: codes are being sent that nobody enters (SMS pumping?).`,
        value: now_,
        threshold: r.dropRatio * before,
        at: now,
        data: { started: c.d, approved: c.n, baseline: before, windowMinutes: r.windowMinutes },
      });
    }
    return out.sort((a, b) => a.value - b.value).slice(0, MAX_PER_RULE);
  }

  private unexpectedRegions(now: number, rules: Rules): Alert[] {
    const r = rules.unexpectedRegion;
    if (!r.enabled) return [];
    const windowStart = now - r.windowMinutes * MINUTE;
    const learned = r.expectedCountries.length === 0;
    // Learned mode needs history: stay quiet until the engine has watched (or was seeded with) a full period.
    if (learned && (this.learningSince === null || now - this.learningSince < r.learnHours * HOUR)) return [];
    const expected = new Set(r.expectedCountries);
    const counts = new Map<string, number>();
    for (const b of this.range(windowStart, now + 1)) for (const [c, n] of b.regions) counts.set(c, (counts.get(c) ?? 0) + n);
    const out: Alert[] = [];
    for (const [c, n] of counts) {
      if (n < r.minRequests) continue;
      const known = learned ? (this.regions.get(c)?.first ?? now) < windowStart : expected.has(c);
      if (known) continue;
      out.push({
        rule: 'unexpected_region',
        scope: `country:${c}`,
        key: `unexpected_region:${c}`,
        severity: 'warning',
        message: learned
          ? `${n} send requests involving ${c} in the last ${r.windowMinutes} min, a country not seen in the previous ${r.learnHours} h.`
          : `${n} send requests involving ${c} in the last ${r.windowMinutes} min, which is not an expected country.`,
        value: n,
        threshold: r.minRequests,
        at: now,
        data: { country: c, requests: n, mode: learned ? 'learned' : 'configured' },
      });
    }
    return out.sort((a, b) => b.value - a.value).slice(0, MAX_PER_RULE);
  }

  private outsideHours(now: number, rules: Rules): Alert[] {
    const r = rules.outsideHours;
    if (!r.enabled) return [];
    let n = 0;
    for (const b of this.range(now - r.windowMinutes * MINUTE, now + 1)) n += b.offHours;
    if (n < r.minRequests) return [];
    return [
      {
        rule: 'outside_hours',
        scope: 'global',
        key: 'outside_hours:global',
        severity: 'warning',
        message: `${n} send requests in the last ${r.windowMinutes} min outside the configured hours ${r.fromHour}:00–${r.toHour}:00 (UTC${utcOffsetText(r.utcOffsetMinutes)}).`,
        value: n,
        threshold: r.minRequests,
        at: now,
        data: { requests: n, windowMinutes: r.windowMinutes },
      },
    ];
  }

  private delivery(now: number, rules: Rules): Alert[] {
    const r = rules.deliveryRateDrop;
    if (!r.enabled) return [];
    const sums = new Map<string, Ratio>();
    for (const b of this.range(now - r.windowMinutes * MINUTE, now + 1)) for (const [k, x] of b.delivery) incRatio(sums, k, x.n, x.d);
    const out: Alert[] = [];
    for (const [scope, x] of sums) {
      if (x.d < r.minReceipts || x.n / x.d >= r.minRate) continue;
      out.push({
        rule: 'delivery_rate_drop',
        scope,
        key: `delivery_rate_drop:${scope}`,
        severity: 'warning',
        message: `Delivery rate for ${scope} is ${pct(x.n / x.d)} over the last ${r.windowMinutes} min (${x.d} receipts, threshold ${pct(r.minRate)}).`,
        value: x.n / x.d,
        threshold: r.minRate,
        at: now,
        data: { delivered: x.n, receipts: x.d, windowMinutes: r.windowMinutes },
      });
    }
    return out.sort((a, b) => a.value - b.value).slice(0, MAX_PER_RULE);
  }

  /**
   * A sender refusing messages, seen when it happens (delivery_rate_drop needs receipts, which a provider that
   * refuses at once never sends): its failed attempts. Critical when sends failed in the window (every sender
   * refused: users got a 502 and no code), a warning while other senders still delivered every message.
   */
  private senderFailures(now: number, rules: Rules): Alert[] {
    const r = rules.senderFailures;
    if (!r.enabled) return [];
    const sums = new Map<string, Ratio>();
    const channelsOf = new Map<string, Set<string>>();
    const failedByChannel = new Map<string, number>();
    for (const b of this.range(now - r.windowMinutes * MINUTE, now + 1)) {
      for (const [k, x] of b.attempts) {
        const [sender, channel] = [k.slice(0, k.lastIndexOf(' ')), k.slice(k.lastIndexOf(' ') + 1)];
        incRatio(sums, sender, x.n, x.d);
        let set = channelsOf.get(sender);
        if (!set) channelsOf.set(sender, (set = new Set()));
        set.add(channel);
      }
      for (const [c, n] of b.failedSends) failedByChannel.set(c, (failedByChannel.get(c) ?? 0) + n);
    }
    const out: Alert[] = [];
    for (const [sender, x] of sums) {
      if (x.d < r.minAttempts || x.n / x.d <= r.maxFailureRatio) continue;
      // Failed sends of the channels this sender carried: another channel's outage is not this sender's.
      let failedSends = 0;
      for (const c of channelsOf.get(sender) ?? []) failedSends += failedByChannel.get(c) ?? 0;
      out.push({
        rule: 'sender_failures',
        scope: `sender:${sender}`,
        key: `sender_failures:${sender}`,
        severity: failedSends > 0 ? 'critical' : 'warning',
        message:
          `Sender ${sender} failed ${x.n} of ${x.d} attempts (${pct(x.n / x.d)}) in the last ${r.windowMinutes} min (threshold ${pct(r.maxFailureRatio)}); ` +
          (failedSends > 0 ? `${failedSends} sends failed on every sender (users got no code). ` : 'other senders delivered every message. ') +
          'Check the provider (status page, credentials, balance); the reasons are in the send events (GET /v1/admin/events?type=send.failed, data.delivery.failed) and the process log ("delivery attempt").',
        value: x.n / x.d,
        threshold: r.maxFailureRatio,
        at: now,
        data: { failed: x.n, attempts: x.d, failedSends, windowMinutes: r.windowMinutes },
      });
    }
    return out.sort((a, b) => b.value - a.value).slice(0, MAX_PER_RULE);
  }

  /**
   * Each quarantine the detector started: it refuses or challenges every new number of a range or country, which
   * is what a "users get no code" page is about, so it is said where on-call looks, with how to lift it.
   */
  private quarantineStarts(now: number, rules: Rules): Alert[] {
    const started = this.quarantines.splice(0);
    if (!rules.quarantineStarted.enabled) return [];
    return started.slice(0, MAX_PER_RULE).map((q) => ({
      rule: 'quarantine_started' as const,
      scope: q.scope,
      key: `quarantine_started:${q.scope}:${q.at}`,
      severity: 'warning' as const,
      message:
        `SMS-pumping quarantine of ${q.scope} (${q.reason}${q.repeat > 0 ? `, repeat ${q.repeat}` : ''}): new numbers are ${q.mode === 'block' ? 'refused' : 'asked for a challenge'} until ` +
        `${new Date(q.until).toISOString()}; numbers that verified before still get codes. If it is wrong, lift it: ` +
        `DELETE /v1/admin/quarantines/${encodeURIComponent(q.scope)} (no automatic quarantine of it for pumping.liftGraceMinutes after).`,
      value: q.repeat,
      threshold: 0,
      at: now,
      data: { mode: q.mode, reason: q.reason, since: new Date(q.at).toISOString(), until: new Date(q.until).toISOString(), repeat: q.repeat },
    }));
  }

  private dailySpend(now: number, policy: MonitoringPolicy): Alert[] {
    if (!policy.alerts.dailySpend.enabled || !this.spend || this.spend.day !== utcDay(now)) return [];
    const { day, totalMicros, countries } = this.spend;
    const b = policy.budgets;
    const cur = policy.prices.currency;
    const out: Alert[] = [];
    const money = (m: number) => `${(m / 1e6).toFixed(2)} ${cur}`;
    // Once per day: quiet until the UTC day ends (plus a minute of clock skew between instances).
    const quietMs = Math.floor(now / 86_400_000) * 86_400_000 + 86_400_000 - now + MINUTE;
    if (b.dailyTotal !== null && totalMicros >= b.dailyTotal * 1e6) {
      out.push({
        rule: 'daily_spend',
        scope: 'total',
        key: `daily_spend:total:${day}`,
        severity: 'critical',
        message: `Spend today (${day} UTC) is ${money(totalMicros)}, over the daily budget of ${money(b.dailyTotal * 1e6)}.`,
        value: totalMicros / 1e6,
        threshold: b.dailyTotal,
        at: now,
        quietMs,
        data: { day },
      });
    }
    for (const [c, m] of countries) {
      const budget = b.countries[c] ?? b.defaultCountry;
      if (budget === null || budget === undefined || m < budget * 1e6) continue;
      out.push({
        rule: 'daily_spend',
        scope: `country:${c}`,
        key: `daily_spend:country:${c}:${day}`,
        severity: 'critical',
        message: `Spend today (${day} UTC) on ${c} is ${money(m)}, over its daily budget of ${money(budget * 1e6)}.`,
        value: m / 1e6,
        threshold: budget,
        at: now,
        quietMs,
        data: { day, country: c },
      });
    }
    return out;
  }
}

/** Whether `at` falls outside [fromHour, toHour) in the configured local time (the range may wrap midnight). */
export function isOffHours(at: number, r: Rules['outsideHours']): boolean {
  if (!r.enabled) return false;
  const local = new Date(at + r.utcOffsetMinutes * MINUTE).getUTCHours();
  const inside = r.fromHour <= r.toHour ? local >= r.fromHour && local < r.toHour : local >= r.fromHour || local < r.toHour;
  return !inside;
}

/** `+05:30`, `-03:00`, `+00:00`: an offset as people and ISO 8601 write it (not `+5.5`). */
export function utcOffsetText(minutes: number): string {
  const m = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}
