/**
 * The alert rules engine on its own: facts in, alerts out, time given explicitly. Each rule fires above its
 * threshold and not at or below it, and a firing key is not repeated within the cooldown.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AlertEngine, isOffHours, utcOffsetText, type Alert } from '../../src/monitoring/alerts.ts';
import { DEFAULT_MONITORING_POLICY, type MonitoringPolicy } from '../../src/monitoring/config.ts';
import type { MonitorFact } from '../../src/monitoring/facts.ts';
import { deepMerge } from '../../src/lib/merge.ts';

const T0 = Date.parse('2026-11-23T08:00:00.000Z');
const MIN = 60_000;

const OFF = {
  checkFailureRate: { enabled: false },
  requestSpike: { enabled: false },
  conversionDrop: { enabled: false },
  unexpectedRegion: { enabled: false },
  outsideHours: { enabled: false },
  deliveryRateDrop: { enabled: false },
  senderFailures: { enabled: false },
  quarantineStarted: { enabled: false },
  dailySpend: { enabled: false },
};

/** Every rule off except what `alerts` turns on. */
function policy(alerts: Record<string, unknown>, extra: Record<string, unknown> = {}): MonitoringPolicy {
  return deepMerge(structuredClone(DEFAULT_MONITORING_POLICY) as unknown as Record<string, unknown>, {
    ...extra,
    alerts: deepMerge(OFF, alerts),
  }) as unknown as MonitoringPolicy;
}

function request(at: number, o: Partial<Extract<MonitorFact, { kind: 'request' }>> = {}): MonitorFact {
  return { kind: 'request', at, country: 'ID', prefix: '+62812', channel: 'sms', number: '+6281234567890', ip: '36.72.10.5', ipCountry: 'ID', decision: 'allow', reasons: [], priceMicros: 400_000, ...o };
}

const rules = (a: Alert[]) => a.map((x) => `${x.rule}|${x.scope}`).sort();

describe('alert engine', () => {
  it('check failure rate: fires above the ratio with enough checks, then stays quiet for the cooldown', () => {
    const p = policy({ checkFailureRate: { enabled: true, windowMinutes: 10, minChecks: 10, maxFailureRatio: 0.5 } });
    const e = new AlertEngine();
    for (let i = 0; i < 5; i++) e.observe({ kind: 'check', at: T0 + i * 1000, result: 'denied' }, p.alerts);
    for (let i = 0; i < 5; i++) e.observe({ kind: 'check', at: T0 + i * 1000, result: 'approved' }, p.alerts);
    assert.deepEqual(e.evaluate(T0 + MIN, p), [], '5 of 10 is not above 50 %');
    e.observe({ kind: 'check', at: T0 + 30_000, result: 'not_found' }, p.alerts);
    const fired = e.evaluate(T0 + MIN, p);
    assert.deepEqual(rules(fired), ['check_failure_rate|global']);
    assert.equal(fired[0]!.value, 6 / 11);
    assert.deepEqual(e.evaluate(T0 + 2 * MIN, p), [], 'same key inside the cooldown');
    // The window slides: 11 minutes later the failures are out of it.
    assert.deepEqual(e.evaluate(T0 + 12 * MIN, p), []);
  });

  it('check failure rate: too few checks never fire', () => {
    const p = policy({ checkFailureRate: { enabled: true, windowMinutes: 10, minChecks: 10, maxFailureRatio: 0.5 } });
    const e = new AlertEngine();
    for (let i = 0; i < 9; i++) e.observe({ kind: 'check', at: T0, result: 'denied' }, p.alerts);
    assert.deepEqual(e.evaluate(T0 + 1000, p), []);
  });

  it('request spikes per number, IP, prefix and country, with masked numbers in the message', () => {
    const p = policy({ requestSpike: { enabled: true, windowMinutes: 10, perNumber: 3, perIp: 4, perPrefix: 5, perCountry: 6 } });
    const e = new AlertEngine({ maskNumber: (n) => n.slice(0, 4) + '…' });
    // 3 requests: nothing is above its threshold.
    for (let i = 0; i < 3; i++) e.observe(request(T0 + i * 1000), p.alerts);
    assert.deepEqual(e.evaluate(T0 + 5000, p), []);
    e.observe(request(T0 + 6000), p.alerts); // 4: number over 3
    assert.deepEqual(rules(e.evaluate(T0 + 7000, p)), ['request_spike|number:+628…']);
    e.observe(request(T0 + 8000, { number: '+6281200000001' }), p.alerts); // 5: ip over 4
    e.observe(request(T0 + 9000, { number: '+6281200000002' }), p.alerts); // 6: prefix over 5
    e.observe(request(T0 + 9500, { number: '+6281200000003', prefix: '+62813' }), p.alerts); // 7: country over 6
    const fired = e.evaluate(T0 + 10_000, p);
    assert.deepEqual(rules(fired), ['request_spike|country:ID', 'request_spike|ip:36.72.10.5', 'request_spike|prefix:+62812']);
    const numberAlert = e.evaluate(T0 + 10_000, p);
    assert.deepEqual(numberAlert, [], 'the number alert is in its cooldown');
    const fresh = new AlertEngine({ maskNumber: (n) => n.slice(0, 4) + '…' });
    for (let i = 0; i < 4; i++) fresh.observe(request(T0), p.alerts);
    const alert = fresh.evaluate(T0 + 1, p).find((a) => a.scope.startsWith('number:'))!;
    assert.ok(alert.message.includes('+628…'), alert.message);
    assert.ok(!JSON.stringify(alert).includes('+6281234567890'), `masked in every field: ${JSON.stringify(alert)}`);
  });

  it('request spikes: requests older than the window do not count', () => {
    const p = policy({ requestSpike: { enabled: true, windowMinutes: 10, perNumber: 3, perIp: 0, perPrefix: 0, perCountry: 0 } });
    const e = new AlertEngine();
    for (let i = 0; i < 2; i++) e.observe(request(T0), p.alerts);
    for (let i = 0; i < 2; i++) e.observe(request(T0 + 11 * MIN), p.alerts);
    assert.deepEqual(e.evaluate(T0 + 11 * MIN + 1000, p), []);
  });

  it('conversion drop against the baseline, per scope', () => {
    const p = policy({ conversionDrop: { enabled: true, windowMinutes: 10, baselineHours: 1, minVerifications: 4, dropRatio: 0.5 } });
    const e = new AlertEngine();
    const sent = (at: number, country = 'ID'): MonitorFact => ({ kind: 'sent', at, country, prefix: '+62812', channel: 'sms', sender: 'w', first: true, priceMicros: 1 });
    const approved = (at: number, country = 'ID'): MonitorFact => ({ kind: 'approved', at, country, prefix: '+62812', channel: 'sms', spendMicros: 1 });
    // Baseline: 4 of 4 converted.
    for (let i = 0; i < 4; i++) {
      e.observe(sent(T0 + i * 1000), p.alerts);
      e.observe(approved(T0 + i * 1000 + 500), p.alerts);
    }
    const later = T0 + 30 * MIN;
    // Window: 4 started, 2 approved = 50 %: not below 0.5 × 100 %.
    for (let i = 0; i < 4; i++) e.observe(sent(later + i * 1000), p.alerts);
    for (let i = 0; i < 2; i++) e.observe(approved(later + 5000 + i), p.alerts);
    assert.deepEqual(e.evaluate(later + MIN, p), []);
    e.observe(sent(later + 6000), p.alerts); // 2 of 5 = 40 %
    assert.deepEqual(rules(e.evaluate(later + MIN, p)), ['conversion_drop|country:ID', 'conversion_drop|global']);
  });

  it('conversion drop needs a baseline', () => {
    const p = policy({ conversionDrop: { enabled: true, windowMinutes: 10, baselineHours: 1, minVerifications: 2, dropRatio: 0.5 } });
    const e = new AlertEngine();
    for (let i = 0; i < 10; i++) e.observe({ kind: 'sent', at: T0, country: 'ID', prefix: null, channel: 'sms', sender: 'w', first: true, priceMicros: 1 }, p.alerts);
    assert.deepEqual(e.evaluate(T0 + MIN, p), []);
  });

  it('unexpected regions: configured list', () => {
    const p = policy({ unexpectedRegion: { enabled: true, windowMinutes: 10, minRequests: 2, expectedCountries: ['ID'], learnHours: 24 } });
    const e = new AlertEngine();
    e.observe(request(T0, { country: 'US', ipCountry: 'ID' }), p.alerts);
    assert.deepEqual(e.evaluate(T0 + 1000, p), [], 'one request is below minRequests');
    e.observe(request(T0 + 1000, { country: 'ID', ipCountry: 'US' }), p.alerts); // the IP's country counts too
    assert.deepEqual(rules(e.evaluate(T0 + 2000, p)), ['unexpected_region|country:US']);
  });

  it('unexpected regions: learned mode stays quiet while learning, then flags a new country', () => {
    const p = policy({ unexpectedRegion: { enabled: true, windowMinutes: 10, minRequests: 2, expectedCountries: [], learnHours: 2 } });
    const e = new AlertEngine();
    for (let i = 0; i < 3; i++) e.observe(request(T0 + i), p.alerts);
    assert.deepEqual(e.evaluate(T0 + MIN, p), [], 'still learning');
    const t = T0 + 3 * 60 * MIN;
    for (let i = 0; i < 3; i++) e.observe(request(t + i), p.alerts); // ID again: known
    for (let i = 0; i < 3; i++) e.observe(request(t + i, { country: 'NG', ipCountry: 'NG' }), p.alerts);
    // ID was last seen 3 h ago: more than learnHours, so it counts as new again, like NG.
    assert.deepEqual(rules(e.evaluate(t + 1000, p)), ['unexpected_region|country:ID', 'unexpected_region|country:NG']);

    const seeded = new AlertEngine();
    seeded.seedRegions([['ID', T0 - 2 * 60 * MIN]], T0 - 2 * 60 * MIN);
    for (let i = 0; i < 3; i++) seeded.observe(request(T0 + i), p.alerts);
    assert.deepEqual(seeded.evaluate(T0 + 1000, p), [], 'seeded history: ID is known after a restart');
  });

  it('outside configured hours, also across midnight and with an offset', () => {
    const r = { enabled: true, fromHour: 9, toHour: 17, utcOffsetMinutes: 0, windowMinutes: 10, minRequests: 2 };
    assert.equal(isOffHours(Date.parse('2026-11-23T08:59:00Z'), r), true);
    assert.equal(isOffHours(Date.parse('2026-11-23T09:00:00Z'), r), false);
    assert.equal(isOffHours(Date.parse('2026-11-23T17:00:00Z'), r), true);
    assert.equal(isOffHours(Date.parse('2026-11-23T08:00:00Z'), { ...r, utcOffsetMinutes: 60 }), false, '09:00 at UTC+1');
    const night = { ...r, fromHour: 22, toHour: 6 };
    assert.equal(isOffHours(Date.parse('2026-11-23T23:00:00Z'), night), false);
    assert.equal(isOffHours(Date.parse('2026-11-23T12:00:00Z'), night), true);

    const p = policy({ outsideHours: r });
    const e = new AlertEngine();
    e.observe(request(T0), p.alerts); // 08:00Z: outside 9–17
    assert.deepEqual(e.evaluate(T0 + 1000, p), []);
    e.observe(request(T0 + 1000), p.alerts);
    assert.deepEqual(rules(e.evaluate(T0 + 2000, p)), ['outside_hours|global']);

    // The message names the offset as people write it (India: +05:30, not +5.5).
    const india = policy({ outsideHours: { ...r, utcOffsetMinutes: 330 } });
    const e2 = new AlertEngine();
    e2.observe(request(T0 - 4 * 3_600_000), india.alerts); // 09:30 at +05:30 is inside; 04:00Z = 09:30 local
    e2.observe(request(T0 + 3 * 3_600_000), india.alerts); // 11:00Z = 16:30 local: inside
    e2.observe(request(T0 + 4 * 3_600_000), india.alerts); // 12:00Z = 17:30 local: outside
    e2.observe(request(T0 + 4 * 3_600_000 + 1), india.alerts);
    const [alert] = e2.evaluate(T0 + 4 * 3_600_000 + 1000, india);
    assert.match(alert?.message ?? '', /\(UTC\+05:30\)\.$/);
    assert.deepEqual([utcOffsetText(-180), utcOffsetText(0), utcOffsetText(-570)], ['-03:00', '+00:00', '-09:30']);
  });

  it('delivery rate drop per sender and country', () => {
    const p = policy({ deliveryRateDrop: { enabled: true, windowMinutes: 60, minReceipts: 4, minRate: 0.75 } });
    const e = new AlertEngine();
    const receipt = (status: 'delivered' | 'failed' | 'undelivered', at: number): MonitorFact => ({ kind: 'receipt', at, country: 'ID', prefix: null, channel: 'sms', sender: 'twilio', status });
    for (let i = 0; i < 3; i++) e.observe(receipt('delivered', T0 + i), p.alerts);
    e.observe(receipt('failed', T0 + 10), p.alerts);
    assert.deepEqual(e.evaluate(T0 + MIN, p), [], '3 of 4 = 75 % is not below 75 %');
    e.observe(receipt('undelivered', T0 + 20), p.alerts);
    assert.deepEqual(rules(e.evaluate(T0 + MIN, p)), ['delivery_rate_drop|country:ID', 'delivery_rate_drop|sender:twilio']);
  });

  it('sender failures: over the ratio with enough attempts; critical only when its own channel\'s sends failed', () => {
    const p = policy({ senderFailures: { enabled: true, windowMinutes: 15, minAttempts: 10, maxFailureRatio: 0.2 } });
    const e = new AlertEngine();
    const attempt = (sender: string, ok: boolean, at: number, channel: 'sms' | 'email' = 'sms'): MonitorFact => ({ kind: 'attempt', at, channel, sender, ok });
    for (let i = 0; i < 7; i++) e.observe(attempt('primary', true, T0 + i), p.alerts);
    for (let i = 0; i < 2; i++) e.observe(attempt('primary', false, T0 + 10 + i), p.alerts);
    assert.deepEqual(e.evaluate(T0 + MIN, p), [], '9 attempts: below minAttempts');
    e.observe(attempt('primary', false, T0 + 20), p.alerts);
    // An email send that failed on its own sender: not the SMS primary's doing.
    e.observe(attempt('smtp', false, T0 + 30, 'email'), p.alerts);
    e.observe({ kind: 'delivery_failed', at: T0 + 30, country: null, prefix: null, channel: 'email', sender: null }, p.alerts);
    const [a, ...rest] = e.evaluate(T0 + MIN, p);
    assert.deepEqual(rest, [], '3 of 10 = 30 % > 20 %; smtp has 1 attempt');
    assert.deepEqual([a?.rule, a?.scope, a?.severity, a?.data?.failedSends], ['sender_failures', 'sender:primary', 'warning', 0]);
    // An SMS send that failed on every sender: critical, once the cooldown allows a new alert.
    const e2 = new AlertEngine();
    for (let i = 0; i < 10; i++) e2.observe(attempt('primary', false, T0 + i), p.alerts);
    e2.observe({ kind: 'delivery_failed', at: T0 + 5, country: 'ID', prefix: '+62812', channel: 'sms', sender: null }, p.alerts);
    assert.equal(e2.evaluate(T0 + MIN, p)[0]?.severity, 'critical');
  });

  it('daily spend over the total and country budgets, once per day', () => {
    const p = policy({ dailySpend: { enabled: true } }, { budgets: { dailyTotal: 10, countries: { ID: 5 }, defaultCountry: null, circuitBreaker: true } });
    const e = new AlertEngine();
    e.observeSpend({ day: '2026-11-23', totalMicros: 9_990_000, countries: new Map([['ID', 4_990_000]]) });
    assert.deepEqual(e.evaluate(T0, p), []);
    e.observeSpend({ day: '2026-11-23', totalMicros: 10_000_000, countries: new Map([['ID', 5_000_000]]) });
    const fired = e.evaluate(T0, p);
    assert.deepEqual(rules(fired), ['daily_spend|country:ID', 'daily_spend|total']);
    assert.deepEqual(e.evaluate(T0 + 2 * 3_600_000, p), [], 'the keys carry the day; the cooldown keeps them quiet');
    // A stale snapshot from yesterday does not alert today.
    const e2 = new AlertEngine();
    e2.observeSpend({ day: '2026-11-22', totalMicros: 99_000_000, countries: new Map() });
    assert.deepEqual(e2.evaluate(T0, p), []);
  });

  it('alerts.enabled false silences every rule', () => {
    const p = policy({ enabled: false, checkFailureRate: { enabled: true, windowMinutes: 10, minChecks: 1, maxFailureRatio: 0 } });
    const e = new AlertEngine();
    e.observe({ kind: 'check', at: T0, result: 'denied' }, p.alerts);
    assert.deepEqual(e.evaluate(T0 + 1, p), []);
  });
});
