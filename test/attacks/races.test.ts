/**
 * Attack: race the limits. Many identical requests in flight at once, hoping they all read the counter
 * before any of them writes it. Limits are consumed atomically in the store, so the counts are exact.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { client, deliveries, freshNumber, ipFor } from './support.ts';

describe('parallel races against the limits', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  const send = (to: string, ip: string) => t.request('POST', '/v1/verifications', { to, client: client(ip) });

  it('60 parallel sends to one number from 60 addresses: one message per cooldown, three per 10 minutes', async () => {
    const to = freshNumber();
    let ipN = 0;
    const burst = async () => {
      const rs = await Promise.all(Array.from({ length: 60 }, () => send(to, ipFor(ipN++))));
      assert.ok(rs.every((r) => [201, 403, 429].includes(r.status)), rs.map((r) => r.status).join(','));
      return rs.filter((r) => r.status === 201).length;
    };
    assert.equal(await burst(), 1, 'first burst: one message, the cooldown stops the rest');
    assert.equal(deliveries(t, to).length, 1);
    // Past each cooldown (30 s, 60 s, 120 s), another burst: still at most one message each.
    for (const wait of [31_000, 61_000, 121_000]) {
      t.clock.advance(wait);
      assert.ok((await burst()) <= 1);
    }
    const n = deliveries(t, to).length;
    assert.ok(n >= 2 && n <= 3, `${n} messages within 10 minutes (limit 3)`);
  });

  it('30 parallel sends from one address to 30 numbers: no more than the per-IP limit', async () => {
    const ip = '36.72.60.1';
    const numbers = Array.from({ length: 30 }, () => freshNumber());
    const rs = await Promise.all(numbers.map((to) => send(to, ip)));
    assert.ok(rs.every((r) => [201, 403, 429].includes(r.status)));
    const n = numbers.reduce((acc, to) => acc + deliveries(t, to).length, 0);
    assert.ok(n > 0 && n <= 10, `${n} messages from one address (limit 10 per 10 minutes)`);
  });

  it('150 parallel checks, the right code among them: at most 5 evaluated, at most one approval', async () => {
    const to = freshNumber();
    const s = await send(to, ipFor(900));
    assert.equal(s.status, 201, s.text);
    const code = t.lastCode(to)!;
    const wrongs = Array.from({ length: 149 }, (_, i) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0'));
    const guesses = [...wrongs.slice(0, 75), code, ...wrongs.slice(75)];
    const rs = await Promise.all(guesses.map((g) => t.request('POST', '/v1/verifications/check', { id: s.body.id, code: g })));
    const evaluated = rs.filter((r) => r.status === 200);
    assert.ok(evaluated.length <= 5, `${evaluated.length} checks evaluated`);
    assert.ok(rs.every((r) => [200, 409, 423, 429].includes(r.status)), rs.map((r) => r.status).join(','));
    const approvals = evaluated.filter((r) => r.body.status === 'approved').length;
    assert.ok(approvals <= 1);
    const v = await t.ctx.store.getVerification(s.body.id);
    assert.ok(v && v.attempts <= 5, `stored attempts ${v?.attempts}`);
    assert.equal(v?.status === 'approved', approvals === 1, 'the store agrees with the responses');
  });

  it('the same correct code submitted 40 times at once is accepted exactly once', async () => {
    const to = freshNumber();
    const s = await send(to, ipFor(901));
    const code = t.lastCode(to)!;
    const rs = await Promise.all(Array.from({ length: 40 }, () => t.request('POST', '/v1/verifications/check', { id: s.body.id, code })));
    assert.equal(rs.filter((r) => r.body?.status === 'approved').length, 1);
    assert.ok(rs.every((r) => r.status === 200 || r.status === 409), rs.map((r) => r.status).join(','));
  });
});
