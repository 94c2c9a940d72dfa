/**
 * A country's daily budget holds across instances and concurrent sends: the price of each send is reserved
 * in its atomic limits step, so the message that would take the country past its budget is refused before
 * it leaves. A multi-instance review sent 16 times a 0.40 budget through three instances when the breaker
 * acted only after each send (a pause the other instances saw a second later), and counted 8 pauses for one
 * trip. Two application contexts share one store and one clock here, as servers share Redis.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const client = (i: number) => ({ ip: `36.72.${90 + (i % 50)}.${1 + Math.floor(i / 50)}`, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });
const POLICY = {
  limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 } },
  monitoring: { prices: { countries: { ID: { sms: 0.3 } } }, budgets: { countries: { ID: 1 }, circuitBreaker: true } },
};

describe('a country budget across two instances', () => {
  let a: TestApp;
  let b: TestApp;
  before(async () => {
    a = await startTestApp();
    b = await startTestApp({ store: a.ctx.store, clock: a.clock });
    const saved = await a.request('PUT', '/v1/admin/policy', POLICY, { key: a.adminKey });
    assert.equal(saved.status, 200, saved.text);
    a.clock.advance(1500);
  });
  after(async () => {
    // b shares a's store, which a.close() closes.
    await b.detach();
    await a.close();
  });

  it('30 concurrent sends over both allow exactly what the budget pays for, and trip the breaker once', async () => {
    const sends = Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).request('POST', '/v1/verifications', { to: `+62812345691${String(i).padStart(2, '0')}`, client: client(i) }));
    const statuses = (await Promise.all(sends)).map((r) => r.status);
    // 3 × 0.30 = 0.90; a fourth would make 1.20.
    assert.equal(statuses.filter((s) => s === 201).length, 3, statuses.join());
    assert.ok(statuses.every((s) => s === 201 || s === 403), statuses.join());
    assert.equal(a.receiver.requests.length + b.receiver.requests.length, 3, 'three messages left');

    const events = await a.ctx.store.queryEvents({ limit: 1000 });
    const pauses = events.filter((e) => e.type === 'pause');
    assert.equal(pauses.length, 1, 'one pause for the trip');
    assert.equal((pauses[0]!.data as { by?: string }).by, 'budget');
    const refused = events.filter((e) => e.type === 'send' && e.decision === 'block');
    assert.equal(refused.length, 27);
    assert.ok(refused.every((e) => (e.reasons ?? []).every((r) => r === 'budget.country' || r === 'paused')), JSON.stringify(refused.map((e) => e.reasons)));

    // Both instances refuse now, by the pause.
    a.clock.advance(1500);
    for (const t of [a, b]) {
      const r = await t.request('POST', '/v1/verifications', { to: '+6281234569200', client: client(40) });
      assert.equal(r.status, 403);
      assert.deepEqual(r.body.error.reasons, ['paused']);
    }
  });

  it("an admin's resume on one instance lets the country send on both, for the rest of the day", async () => {
    const resumed = await a.request('POST', '/v1/admin/resume', { country: 'ID', note: 'campaign day' }, { key: a.adminKey });
    assert.equal(resumed.status, 200, resumed.text);
    a.clock.advance(1500);
    for (const [i, t] of [a, b].entries()) {
      const r = await t.request('POST', '/v1/verifications', { to: `+628123456930${i}`, client: client(41 + i) });
      assert.equal(r.status, 201, r.text);
    }
  });

  it("the resume ends at midnight UTC, on an instance whose copy of the shared state is from before it", async () => {
    const midnight = Date.parse('2026-11-24T00:00:00.000Z');
    a.clock.advance(midnight - 300 - a.clock());
    // b loads the shared state 0.3 s before midnight, with the resume in it...
    assert.equal((await b.request('POST', '/v1/verifications', { to: '+6281234569400', client: client(44) })).status, 201);
    a.clock.advance(500);
    // ...and uses it 0.2 s after: the new day's budget pays for 3 sends (the override was yesterday's).
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) statuses.push((await b.request('POST', '/v1/verifications', { to: `+62812345694${String(i).padStart(2, '0')}`, client: client(44 + i) })).status);
    assert.deepEqual(statuses, [201, 201, 201, 403, 403]);
  });

  it('a send refused by the budget and a rate limit at once is blocked (403), without a Retry-After of days', async () => {
    const ip = client(49).ip;
    const lowered = await a.request('PUT', '/v1/admin/policy', { ...POLICY, limits: { ...POLICY.limits, ip: [{ limit: 1, windowSeconds: 600 }] } }, { key: a.adminKey });
    assert.equal(lowered.status, 200, lowered.text);
    a.clock.advance(86_400_000 + 1500);
    const first = await a.request('POST', '/v1/verifications', { to: '+6281234569500', client: { ...client(49), ip } });
    assert.equal(first.status, 201, first.text);
    // Spend the rest of the day's budget from other addresses: 2 × 0.30 more, so any further send would pass 1.00.
    for (let i = 1; i <= 2; i++) assert.equal((await a.request('POST', '/v1/verifications', { to: `+628123456950${i}`, client: client(60 + i) })).status, 201);
    const both = await a.request('POST', '/v1/verifications', { to: '+6281234569509', client: { ...client(49), ip } });
    assert.equal(both.status, 403, both.text);
    assert.deepEqual([...both.body.error.reasons].sort(), ['budget.country', 'rate_limited.ip']);
    assert.equal(both.headers.get('retry-after'), null);
  });
});
