/**
 * Hourly aggregates and the stats computed from them: the definitions of conversion, delivery rate, spend,
 * unverified spend and savings; grouping; prefix capping; and several instances' documents summing up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.ts';
import { StatsAggregator, applyFact, emptyDoc, hourKey, hourOf, mergeDocs, OTHER } from '../../src/monitoring/aggregate.ts';
import { computeStats } from '../../src/monitoring/stats.ts';
import { factsFromEvent, type MonitorFact } from '../../src/monitoring/facts.ts';
import { DEFAULT_MONITORING_POLICY } from '../../src/monitoring/config.ts';
import { priceMicros } from '../../src/monitoring/prices.ts';

const T0 = Date.parse('2026-11-23T08:10:00.000Z');
const H = 3_600_000;
const prices = DEFAULT_MONITORING_POLICY.prices;

function req(at: number, decision: string, reasons: string[] = [], country = 'ID', prefix = '+62812'): MonitorFact {
  return { kind: 'request', at, country, prefix, channel: 'sms', number: null, ip: null, ipCountry: null, decision, reasons, priceMicros: priceMicros(prices, country, 'sms') };
}
function sent(at: number, first = true, country = 'ID', prefix = '+62812'): MonitorFact {
  return { kind: 'sent', at, country, prefix, channel: 'sms', sender: 'webhook', first, priceMicros: priceMicros(prices, country, 'sms') };
}

describe('facts from audit events', () => {
  it('a delivered send is a request and a sent message; test numbers are left out', () => {
    const facts = factsFromEvent(
      { id: 'e1', at: T0, type: 'send', to: '+6281234567890', prefix: '+62812', country: 'ID', ip: '36.72.10.5', decision: 'allow', reasons: [], data: { channel: 'sms', resend: false, ipFacts: { country: 'ID' }, delivery: { ok: true, sender: 'webhook' } } },
      prices,
    );
    assert.deepEqual(facts.map((f) => f.kind), ['event', 'request', 'sent', 'attempt'], 'the sender that delivered made an attempt');
    const s = facts[2] as Extract<MonitorFact, { kind: 'sent' }>;
    assert.equal(s.priceMicros, 400_000, 'ID default price 0.40');
    assert.equal(s.first, true);
    const test = factsFromEvent({ id: 'e2', at: T0, type: 'send', to: '+1', decision: 'allow', reasons: ['test_number'], data: { testNumber: true } }, prices);
    assert.deepEqual(test.map((f) => f.kind), ['event']);
    const failed = factsFromEvent({ id: 'e3', at: T0, type: 'send.failed', country: 'GB', decision: 'allow', reasons: [], data: { channel: 'sms', delivery: { ok: false } } }, prices);
    assert.deepEqual(failed.map((f) => f.kind), ['event', 'request', 'delivery_failed']);
    const receipt = factsFromEvent({ id: 'e4', at: T0, type: 'delivery.receipt', country: 'ID', decision: 'undelivered', data: { sender: 'tw' } }, prices);
    assert.deepEqual(receipt[1], { kind: 'receipt', at: T0, country: 'ID', prefix: null, channel: 'sms', sender: 'tw', status: 'undelivered' }, 'a receipt recorded without its channel reads as sms');
    const wa = factsFromEvent({ id: 'e5', at: T0, type: 'delivery.receipt', country: 'ID', decision: 'delivered', data: { sender: 'tw', channel: 'whatsapp' } }, prices);
    assert.equal((wa[1] as Extract<MonitorFact, { kind: 'receipt' }>).channel, 'whatsapp');
  });
});

describe('stats', () => {
  it('computes the documented numbers', () => {
    const doc = emptyDoc(hourOf(T0));
    const facts: MonitorFact[] = [
      req(T0, 'allow'), sent(T0), // verification 1
      req(T0, 'allow'), sent(T0, false), // its resend
      req(T0, 'allow'), sent(T0), // verification 2
      { kind: 'approved', at: T0, country: 'ID', prefix: '+62812', channel: 'sms', spendMicros: 800_000 }, // verification 1: 2 messages
      req(T0, 'block', ['rate_limited.number']),
      req(T0, 'tarpit', ['honeypot']),
      req(T0, 'challenge', ['pow.missing', 'form_token.missing']),
      { kind: 'receipt', at: T0, country: 'ID', prefix: '+62812', channel: 'sms', sender: 'webhook', status: 'delivered' },
      { kind: 'receipt', at: T0, country: 'ID', prefix: '+62812', channel: 'sms', sender: 'webhook', status: 'failed' },
      { kind: 'check', at: T0, result: 'approved' },
      { kind: 'check', at: T0, result: 'denied' },
    ];
    for (const f of facts) applyFact(doc, f, 100);
    const s = computeStats([doc], { from: hourOf(T0), to: hourOf(T0) + H, groupBy: null, currency: 'USD', limit: 10 });
    const t = s.totals;
    assert.equal(t.requests, 6);
    assert.equal(t.allowed, 3);
    assert.equal(t.blocked, 1);
    assert.equal(t.tarpitted, 1);
    assert.equal(t.challenged, 1);
    assert.equal(t.sends, 3);
    assert.equal(t.verifications, 2);
    assert.equal(t.approved, 1);
    assert.equal(t.conversion, 0.5);
    assert.equal(t.deliveryRate, 0.5);
    assert.equal(t.spend, 1.2, '3 messages × 0.40');
    assert.equal(t.unverifiedSpend, 0.4, 'only verification 2 is unverified');
    assert.equal(t.savings, 0.8, 'blocked + tarpitted × 0.40; challenges are not savings');
    assert.deepEqual(t.blocksByReason, { 'rate_limited.number': 1, honeypot: 1 });
    assert.deepEqual(t.checks, { approved: 1, denied: 1 });
  });

  it('groups by country, prefix, reason and hour, sorted, limited', () => {
    const d1 = emptyDoc(hourOf(T0));
    const d2 = emptyDoc(hourOf(T0) + 2 * H);
    for (let i = 0; i < 3; i++) applyFact(d1, req(T0, 'allow', [], 'ID', '+62812'), 100);
    applyFact(d1, sent(T0, true, 'ID', '+62812'), 100);
    applyFact(d1, req(T0, 'block', ['country.number'], 'NG', '+234803'), 100);
    applyFact(d2, req(T0 + 2 * H, 'block', ['country.number'], 'NG', '+234803'), 100);
    applyFact(d2, req(T0 + 2 * H, 'block', ['paused'], 'GB', '+44740'), 100);
    const q = { from: hourOf(T0), to: hourOf(T0) + 3 * H, currency: 'USD', limit: 2 };

    const byCountry = computeStats([d1, d2], { ...q, groupBy: 'country' });
    assert.deepEqual(byCountry.rows.map((r) => [r.key, r.requests]), [['ID', 3], ['NG', 2]]);
    assert.equal(byCountry.omitted, 1, 'GB is left out by limit 2');
    assert.equal(byCountry.rows[1]!.savings, 0.5, 'NG default price 0.25 × 2');

    const byPrefix = computeStats([d1, d2], { ...q, groupBy: 'prefix', limit: 10 });
    assert.deepEqual(byPrefix.rows.map((r) => r.key), ['+62812', '+234803', '+44740']);

    const byReason = computeStats([d1, d2], { ...q, groupBy: 'reason', limit: 10 });
    assert.deepEqual(byReason.rows.map((r) => [r.key, r.requests, r.blocked]), [['country.number', 2, 2], ['paused', 1, 1]], 'a reason row counts the requests that carried it');

    const byHour = computeStats([d1, d2], { ...q, groupBy: 'hour' });
    assert.deepEqual(byHour.rows.map((r) => r.requests), [4, 0, 2], 'every hour of the range, zeros included');
    assert.deepEqual(byHour.rows[2]!.blocksByReason, { 'country.number': 1, paused: 1 });
    assert.equal(byHour.rows[0]!.key, new Date(hourOf(T0)).toISOString());
  });

  it('groups by channel: every figure, an address (no country or prefix) included, and documents written before channels existed', () => {
    const d1 = emptyDoc(hourOf(T0));
    const mail = (decision: string): MonitorFact => ({ kind: 'request', at: T0, country: null, prefix: null, channel: 'email', number: null, ip: null, ipCountry: null, decision, reasons: decision === 'block' ? ['ip.hosting'] : [], priceMicros: 1_000 });
    applyFact(d1, mail('allow'), 100);
    applyFact(d1, { kind: 'sent', at: T0, country: null, prefix: null, channel: 'email', sender: 'smtp', first: true, priceMicros: 1_000 }, 100);
    applyFact(d1, { kind: 'approved', at: T0, country: null, prefix: null, channel: 'email', spendMicros: 1_000 }, 100);
    applyFact(d1, mail('block'), 100);
    applyFact(d1, req(T0, 'allow'), 100);
    applyFact(d1, sent(T0), 100);
    applyFact(d1, { kind: 'delivery_failed', at: T0, country: 'ID', prefix: '+62812', channel: 'sms', sender: 'webhook' }, 100);
    applyFact(d1, { kind: 'receipt', at: T0, country: 'ID', prefix: '+62812', channel: 'whatsapp', sender: 'tw', status: 'delivered' }, 100);
    // A document of an older version: no `channels` map at all.
    const old = emptyDoc(hourOf(T0) + H);
    applyFact(old, req(T0 + H, 'allow'), 100);
    delete old.channels;
    const s = computeStats([d1, old], { from: hourOf(T0), to: hourOf(T0) + 2 * H, groupBy: 'channel', currency: 'USD', limit: 10 });
    const row = (k: string) => s.rows.find((r) => r.key === k)!;
    assert.deepEqual(s.rows.map((r) => r.key), ['email', 'sms', 'whatsapp']);
    assert.deepEqual([row('email').requests, row('email').allowed, row('email').blocked, row('email').sends, row('email').approved, row('email').conversion, row('email').spend, row('email').unverifiedSpend, row('email').savings], [2, 1, 1, 1, 1, 1, 0.001, 0, 0.001]);
    assert.deepEqual([row('sms').requests, row('sms').sends, row('sms').approved, row('sms').conversion, row('sms').deliveryFailures], [1, 1, 0, 0, 1], 'the old document adds to the totals only');
    assert.deepEqual(row('whatsapp').receipts, { delivered: 1, undelivered: 0, failed: 0 });
    assert.equal(s.totals.requests, 4);
    // The email traffic is in no country row.
    assert.deepEqual(computeStats([d1], { from: hourOf(T0), to: hourOf(T0) + H, groupBy: 'country', currency: 'USD', limit: 10 }).rows.map((r) => [r.key, r.requests]), [['ID', 1]]);
    // Several instances' documents sum per channel.
    const merged = mergeDocs(hourOf(T0), [d1, d1]);
    assert.equal(merged.channels!.email!.req, 4);
  });

  it('caps distinct prefixes per hour into "other"', () => {
    const doc = emptyDoc(hourOf(T0));
    for (let i = 0; i < 5; i++) applyFact(doc, req(T0, 'allow', [], 'ID', `+6281${i}`), 3);
    assert.deepEqual(Object.keys(doc.prefixes).sort(), ['+62810', '+62811', '+62812', OTHER].sort());
    assert.equal(doc.prefixes[OTHER]!.req, 2);
    assert.equal(doc.total.req, 5, 'totals are never capped');
  });

  it('instances write their own documents and readers sum them', async () => {
    const store = new MemoryStore();
    const o = { maxPrefixes: () => 100, retentionMs: () => 8 * 86_400_000 };
    const a = new StatsAggregator({ instanceId: 'a', ...o });
    const b = new StatsAggregator({ instanceId: 'b', ...o });
    a.apply(req(T0, 'allow'));
    a.apply(req(T0 + H, 'allow'));
    b.apply(req(T0, 'block', ['paused']));
    await a.flush(store, T0 + H);
    await b.flush(store, T0 + H);
    const keys = (await store.listSettings('mon:h:', T0 + H)).map((r) => r.key).sort();
    assert.deepEqual(keys, [`mon:h:${hourKey(hourOf(T0))}:a`, `mon:h:${hourKey(hourOf(T0))}:b`, `mon:h:${hourKey(hourOf(T0) + H)}:a`]);
    // a writes cumulative totals again: overwriting, not adding.
    a.apply(req(T0 + H + 1, 'allow'));
    const docs = await a.read(store, hourOf(T0), hourOf(T0) + 2 * H, T0 + H + 2);
    assert.deepEqual(docs.map((d) => [d.hour, d.total.req]), [[hourOf(T0), 2], [hourOf(T0) + H, 2]]);
    // Outside the range: nothing.
    assert.deepEqual(await a.read(store, hourOf(T0) + 5 * H, hourOf(T0) + 6 * H, T0 + H + 2), []);
    // Documents expire after the retention.
    assert.deepEqual(await store.listSettings('mon:h:', T0 + 10 * 86_400_000), []);
  });

  it('a late fact for an hour already written and forgotten adds to its figures instead of replacing them', async () => {
    const store = new MemoryStore();
    const a = new StatsAggregator({ instanceId: 'a', maxPrefixes: () => 100, retentionMs: () => 8 * 86_400_000 });
    for (let i = 0; i < 100; i++) a.apply(sent(T0 + i * 1000));
    await a.flush(store, T0 + 20 * 60_000);
    await a.flush(store, hourOf(T0) + 3 * H + 60_000); // two hours later: the 08:00 document leaves memory
    assert.equal(a.local(hourOf(T0)), null);
    // A send of 08:20 recovered from the journal at 11:01 (service/journal.ts), then written.
    a.apply(sent(T0 + 10 * 60_000));
    await a.flush(store, hourOf(T0) + 3 * H + 120_000);
    const [doc] = await a.read(store, hourOf(T0), hourOf(T0) + H, hourOf(T0) + 3 * H + 180_000);
    assert.equal(doc?.total.sent, 101);
    assert.equal(doc?.countries.ID?.spend, 101 * 400_000);
    // And the next late fact of the same hour adds once more (no double merge).
    a.apply(sent(T0 + 11 * 60_000));
    await a.flush(store, hourOf(T0) + 3 * H + 240_000);
    assert.equal((await a.read(store, hourOf(T0), hourOf(T0) + H, hourOf(T0) + 3 * H + 300_000))[0]?.total.sent, 102);
  });
});
