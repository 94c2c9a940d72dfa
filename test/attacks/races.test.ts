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

  it('60 parallel wrong codes from one address across 12 verifications: exactly the per-IP failure budget (30) is compared', async () => {
    const targets: { id: string; code: string }[] = [];
    for (let i = 0; i < 12; i++) {
      const to = freshNumber();
      const s = await send(to, ipFor(700 + i));
      assert.equal(s.status, 201, s.text);
      targets.push({ id: s.body.id, code: t.lastCode(to)! });
    }
    const attacker = '36.72.200.7';
    // Through the service, all in one event-loop turn: with the embedded SQLite store every store call
    // resolves at once, so HTTP requests (one socket read each) would not interleave; over Redis or
    // PostgreSQL, or several requests parsed in one turn, they do — this is that case, on any store.
    const guesses = targets.flatMap(({ id, code }) =>
      [1, 2, 3, 4, 5].map((k) =>
        t.ctx.verifications.check({ id, code: String((Number(code) + k) % 1_000_000).padStart(6, '0'), client: { ip: attacker } }).then(
          (r) => r.status,
          (err: { code?: string }) => err.code ?? 'error',
        ),
      ),
    );
    const rs = await Promise.all(guesses);
    assert.ok(rs.every((r) => r === 'denied' || r === 'rate_limited'), rs.join(','));
    assert.equal(rs.filter((r) => r === 'denied').length, 30, rs.join(','));
    const [failures] = await t.ctx.store.peekLimits([{ reason: 'x', key: `cfi:${attacker}:1h`, limit: 30, windowMs: 3_600_000 }], t.clock());
    assert.equal(failures, 30);
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

describe('parallel races against the IPv6 subnet failure budget', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  const send = (to: string, ip: string) => t.request('POST', '/v1/verifications', { to, client: client(ip) });

  it('60 parallel wrong codes from 60 /64s of one IPv6 /56: exactly the budget of one address (30) is compared', async () => {
    const targets: { id: string; code: string }[] = [];
    for (let i = 0; i < 12; i++) {
      const to = freshNumber();
      const s = await send(to, ipFor(720 + i));
      assert.equal(s.status, 201, s.text);
      targets.push({ id: s.body.id, code: t.lastCode(to)! });
    }
    // Each guess from its own /64, so the per-address counters never see the same client twice; the /56's
    // counter is what is raced (service/verifications.ts queues checks by it).
    const guesses = targets.flatMap(({ id, code }, v) =>
      [1, 2, 3, 4, 5].map((k) =>
        t.ctx.verifications.check({ id, code: String((Number(code) + k) % 1_000_000).padStart(6, '0'), client: { ip: `2001:db8:77:${(v * 5 + k).toString(16)}::1` } }).then(
          (r) => r.status,
          (err: { code?: string }) => err.code ?? 'error',
        ),
      ),
    );
    const rs = await Promise.all(guesses);
    assert.ok(rs.every((r) => r === 'denied' || r === 'rate_limited'), rs.join(','));
    assert.equal(rs.filter((r) => r === 'denied').length, 30, rs.join(','));
  });
});
