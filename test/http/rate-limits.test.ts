/**
 * Layer 1 over HTTP with an injected clock, against the SQLite store and (when reachable) Redis:
 * every limit, window edges, cooldown growth, the check-failure lock, the owner's separate budget, and
 * exact counts under parallel load.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { dropRedisPrefix } from '../helpers/every-store.ts';
import { parsePolicy, type Policy } from '../../src/engine/policy.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { openStore } from '../../src/store/factory.ts';
import pg from 'pg';
import type { Store } from '../../src/store/interface.ts';

const MIN = 60_000;

/**
 * These tests send to sequential, never-verified numbers: exactly what the SMS-pumping defense quarantines
 * (test/pumping/ covers that); and several unverified codes to one number, or new codes after wrong guesses,
 * which the risk rules about the number's history answer with a CAPTCHA before a limit is reached
 * (test/engine/number-history*.test.ts cover those). Both are off here, so each test sees the limit it is about.
 */
const NUMBER_HISTORY_OFF = {
  'number.unverified_sends': { action: 'score', weight: 60, mode: 'off' },
  'number.failed_checks': { action: 'score', weight: 60, mode: 'off' },
};
function policy(doc: Record<string, unknown>): Policy {
  const r = parsePolicy({ pumping: { enabled: false }, risk: { rules: NUMBER_HISTORY_OFF }, ...doc });
  assert.ok(r.ok, JSON.stringify(r));
  return r.policy;
}

const client = (ip: string, extra: Record<string, unknown> = {}) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', ...extra });
let seq = 0;
/** A fresh valid Indonesian mobile number per call. */
const freshNumber = () => `+62812${String(10_000_000 + seq++).padStart(8, '0')}`;

function rateLimitSuite(name: string, makeStore: () => Promise<Store | undefined>, cleanup?: () => Promise<void>) {
  describe(`rate limits over HTTP (${name})`, () => {
    let t: TestApp;
    before(async () => {
      const store = await makeStore();
      t = await startTestApp(store ? { store } : {});
    });
    after(async () => {
      await t.close();
      await cleanup?.();
    });

    const send = (to: string, ip: string, extra: Record<string, unknown> = {}) => t.request('POST', '/v1/verifications', { to, client: client(ip, extra) });
    /** Send and expect 201, showing the error body when it is not. */
    const sent = async (to: string, ip: string, extra: Record<string, unknown> = {}) => {
      const r = await send(to, ip, extra);
      assert.equal(r.status, 201, `${to} from ${ip}: ${r.text}`);
      return r;
    };

    it('per number: 3 per 10 minutes, one generic 429 with Retry-After, free again after the window', async () => {
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 } } }), 0);
      const to = freshNumber();
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await send(to, `36.72.20.${i + 1}`)).status);
        t.clock.advance(10_000);
      }
      assert.deepEqual(statuses, [201, 201, 201, 429]);
      const denied = await send(to, '36.72.20.9');
      assert.equal(denied.body.error.message, 'Too many requests. Please try again in a few minutes.');
      assert.deepEqual(denied.body.error.reasons, ['rate_limited.number']);
      const retry = Number(denied.headers.get('retry-after'));
      assert.ok(retry > 0 && retry <= 600 + 10, `Retry-After ${retry}`);
      t.clock.advance((retry - 1) * 1000);
      assert.equal((await send(to, '36.72.20.10')).status, 429, 'still limited one second before Retry-After');
      t.clock.advance(1000);
      assert.equal((await send(to, '36.72.20.11')).status, 201, 'allowed again at Retry-After');
    });

    it('reasons can be turned off in responses', async () => {
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, number: [{ limit: 1, windowSeconds: 600 }] }, responses: { exposeReasons: false } }), 0);
      const to = freshNumber();
      await send(to, '36.72.21.1');
      const r = await send(to, '36.72.21.2');
      assert.equal(r.status, 429);
      assert.equal(r.body.error.reasons, undefined);
    });

    it('cooldown grows between resends: 30 s, 60 s, 120 s', async () => {
      t.ctx.setPolicy(policy({ limits: { number: [{ limit: 100, windowSeconds: 600 }] } }), 0);
      const to = freshNumber();
      const first = await send(to, '36.72.22.1');
      assert.equal(first.status, 201);
      assert.equal(Date.parse(first.body.resendAfter) - t.clock(), 30_000);
      for (const wait of [30_000, 60_000, 120_000]) {
        t.clock.advance(wait - 2000);
        const early = await send(to, '36.72.22.1');
        assert.equal(early.status, 429, `resend ${wait - 2000} ms after the last is too early`);
        assert.deepEqual(early.body.error.reasons, ['cooldown']);
        t.clock.advance(2000);
        const ok = await send(to, '36.72.22.1');
        assert.equal(ok.status, 201, `resend after ${wait} ms`);
        assert.equal(ok.body.id, first.body.id, 'a resend extends the same verification');
      }
    });

    it('per IP, per subnet and per device, each with its own reason', async () => {
      t.ctx.setPolicy(
        policy({
          limits: {
            cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 },
            ip: [{ limit: 2, windowSeconds: 600 }],
            subnet: [{ limit: 3, windowSeconds: 600 }],
            device: [{ limit: 2, windowSeconds: 600 }],
          },
        }),
        0,
      );
      await sent(freshNumber(), '36.72.23.1');
      await sent(freshNumber(), '36.72.23.1');
      const ip = await send(freshNumber(), '36.72.23.1');
      assert.deepEqual(ip.body.error.reasons, ['rate_limited.ip']);
      await sent(freshNumber(), '36.72.23.2');
      const subnet = await send(freshNumber(), '36.72.23.3');
      assert.deepEqual(subnet.body.error.reasons, ['rate_limited.subnet']);
      // IPv6: the per-IP limit counts a /64 (its owner rotates the low 64 bits) …
      await sent(freshNumber(), '2001:db8:1:2::1');
      await sent(freshNumber(), '2001:db8:1:2::2');
      assert.deepEqual((await send(freshNumber(), '2001:db8:1:2::3')).body.error.reasons, ['rate_limited.ip']);
      // … and the subnet limit the /56 (a home's delegation), through which a client can rotate its /64s.
      await sent(freshNumber(), '2001:db8:1:3::1');
      assert.deepEqual((await send(freshNumber(), '2001:db8:1:4::1')).body.error.reasons, ['rate_limited.subnet']);
      await sent(freshNumber(), '2001:db8:1:100::1');
      // A /48 (256 /56s) gets four times the subnet budget in total (SITE_FACTOR): 12 here, 4 used above.
      for (let i = 2; i < 10; i++) await sent(freshNumber(), `2001:db8:1:${i}00::1`);
      assert.deepEqual((await send(freshNumber(), '2001:db8:1:a00::1')).body.error.reasons, ['rate_limited.subnet']);
      await sent(freshNumber(), '2001:db8:2:900::1');
      // device
      await sent(freshNumber(), '36.72.24.1', { deviceId: 'dev-a' });
      await sent(freshNumber(), '36.72.25.1', { deviceId: 'dev-a' });
      assert.deepEqual((await send(freshNumber(), '36.72.26.1', { deviceId: 'dev-a' })).body.error.reasons, ['rate_limited.device']);
    });

    it('per prefix, per country and global ceilings', async () => {
      t.clock.advance(60 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, prefix: [{ limit: 2, windowSeconds: 3600 }] } }), 0);
      const a = `+62813${String(seq++).padStart(8, '0')}`;
      const b = `+62813${String(seq++).padStart(8, '0')}`;
      const c = `+62813${String(seq++).padStart(8, '0')}`;
      await sent(a, '36.72.27.1');
      await sent(b, '36.72.28.1');
      assert.deepEqual((await send(c, '36.72.29.1')).body.error.reasons, ['rate_limited.prefix']);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, country: [{ limit: 1, windowSeconds: 3600 }] } }), 0);
      t.clock.advance(61 * MIN);
      await sent('+447400123456', '36.72.30.1');
      assert.deepEqual((await send('+447400123457', '36.72.31.1')).body.error.reasons, ['rate_limited.country']);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, global: [{ limit: 1, windowSeconds: 60 }] } }), 0);
      t.clock.advance(61 * MIN);
      await sent(freshNumber(), '36.72.32.1');
      assert.deepEqual((await send(freshNumber(), '36.72.33.1')).body.error.reasons, ['rate_limited.global']);
      // one window plus one slot (1/60 of the window): the rule is conservative by at most a slot
      t.clock.advance(61_000);
      await sent(freshNumber(), '36.72.34.1');
    });

    it('a denied request consumes nothing: a blocked send leaves the number budget intact', async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, number: [{ limit: 1, windowSeconds: 600 }], ip: [{ limit: 1, windowSeconds: 600 }] } }), 0);
      await sent(freshNumber(), '36.72.35.1');
      const victim = freshNumber();
      assert.equal((await send(victim, '36.72.35.1')).status, 429, 'IP limit denies');
      assert.equal((await send(victim, '36.72.36.1')).status, 201, 'the victim number budget was not spent by the denied request');
    });

    it('100 parallel sends to one number allow exactly the limit', async () => {
      t.clock.advance(61 * MIN);
      // Throttling off: a burst of 100 to one prefix would (rightly) tighten it; this test is about the number limit.
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, ip: [{ limit: 1000, windowSeconds: 600 }], subnet: [{ limit: 1000, windowSeconds: 600 }] }, throttle: { enabled: false } }), 0);
      const to = freshNumber();
      const before = t.receiver.requests.length;
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => send(to, `36.73.${Math.floor(i / 50)}.${(i % 50) + 1}`)));
      assert.equal(results.filter((r) => r.status === 201).length, 3);
      assert.equal(results.filter((r) => r.status === 429).length, 97);
      assert.equal(t.receiver.requests.slice(before).filter((r) => (r.json as { to: string }).to === to).length, 3, 'exactly 3 messages');
    });

    it('failed checks per number lock the number across verifications; new codes do not reset it', async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, number: [{ limit: 100, windowSeconds: 600 }] } }), 0);
      const to = freshNumber();
      let failures = 0;
      let lastId = '';
      for (let round = 0; round < 2; round++) {
        const s = await send(to, '36.72.40.1');
        assert.equal(s.status, 201);
        lastId = s.body.id;
        const code = t.lastCode(to)!;
        const wrong = code === '000000' ? '000001' : '000000';
        for (let i = 0; i < 5 && failures < 10; i++) {
          const r = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip: `36.74.0.${failures + 1}` } });
          assert.equal(r.status, 200);
          failures++;
        }
      }
      const pending = await send(to, '36.72.40.1');
      assert.equal(pending.status, 429, 'and no new code is sent: it could not be checked');
      assert.deepEqual(pending.body.error.reasons, ['locked.number']);
      const retryAfter = Number(pending.headers.get('retry-after'));
      assert.ok(retryAfter > 0 && retryAfter <= 3660, `Retry-After ${retryAfter}: when the hour's lock lifts (to its minute)`);
      // The last verification is still pending: its right code is refused too.
      const locked = await t.request('POST', '/v1/verifications/check', { id: lastId, code: t.lastCode(to) });
      assert.equal(locked.status, 429, 'even the right code is refused while the number is locked');
      assert.deepEqual(locked.body.error.reasons, ['locked.number']);
      t.clock.advance(61 * MIN);
      const s2 = await send(to, '36.72.40.1');
      const ok = await t.request('POST', '/v1/verifications/check', { id: s2.body.id, code: t.lastCode(to) });
      assert.deepEqual(outcome(ok.body), { status: 'approved' }, 'unlocked after the hour');
    });

    it("an attacker's failed checks lock the number for others but not for its owner's device and network", async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, number: [{ limit: 100, windowSeconds: 600 }] } }), 0);
      const to = freshNumber();
      const owner = { ip: '36.72.60.7', deviceId: 'owner-phone-checks' };
      // The owner verifies once: the number now trusts that device on that network.
      const first = await sent(to, owner.ip, { deviceId: owner.deviceId });
      const approved = await t.request('POST', '/v1/verifications/check', { id: first.body.id, code: t.lastCode(to), client: owner });
      assert.deepEqual(outcome(approved.body), { status: 'approved' });
      // An attacker spends the number's failure budget (10 per hour) from elsewhere.
      for (let round = 0; round < 2; round++) {
        const s = await sent(to, `36.75.${round}.1`);
        const wrong = t.lastCode(to) === '000000' ? '000001' : '000000';
        for (let i = 0; i < 5; i++) {
          const r = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip: `36.76.${round}.${i + 1}` } });
          assert.equal(r.status, 200);
        }
      }
      // Anyone else gets no new code for it (it could not be checked)…
      const other = await send(to, '36.75.9.1');
      assert.equal(other.status, 429, other.text);
      assert.deepEqual(other.body.error.reasons, ['locked.number']);
      // …while the owner, same device on the same network, has a budget of its own, for sends and checks.
      const mine = await sent(to, owner.ip, { deviceId: owner.deviceId });
      const refused = await t.request('POST', '/v1/verifications/check', { id: mine.body.id, code: t.lastCode(to), client: { ip: '36.75.9.1' } });
      assert.equal(refused.status, 429, 'the right code from an untrusted client is refused while the number is locked');
      assert.deepEqual(refused.body.error.reasons, ['locked.number']);
      const ok = await t.request('POST', '/v1/verifications/check', { id: mine.body.id, code: t.lastCode(to), client: { ip: '36.72.60.99', deviceId: owner.deviceId } });
      assert.deepEqual(outcome(ok.body), { status: 'approved' });
    });

    it('failed checks per IP are limited across numbers', async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, check: { failuresPerIp: { limit: 3, windowSeconds: 3600 } } } }), 0);
      const results: number[] = [];
      for (let i = 0; i < 4; i++) {
        const to = freshNumber();
        const s = await send(to, `36.72.41.${i + 1}`);
        const wrong = t.lastCode(to) === '000000' ? '000001' : '000000';
        results.push((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip: '203.0.113.99' } })).status);
      }
      assert.deepEqual(results, [200, 200, 200, 429]);
    });

    it('IPv6: an address counts as its /64, so rotating inside it buys no new budget (checks, sends)', async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, check: { failuresPerIp: { limit: 3, windowSeconds: 3600 } } } }), 0);
      const checks: number[] = [];
      for (let i = 0; i < 4; i++) {
        const to = freshNumber();
        const s = await send(to, `36.72.42.${i + 1}`);
        const wrong = t.lastCode(to) === '000000' ? '000001' : '000000';
        checks.push((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip: `2001:db8:42:7::${i + 1}` } })).status);
      }
      assert.deepEqual(checks, [200, 200, 200, 429]);
      // The per-IP send limit, with the subnet limit out of the way.
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, ip: [{ limit: 2, windowSeconds: 600 }], subnet: [{ limit: 1000, windowSeconds: 600 }] } }), 0);
      const sends: number[] = [];
      for (let i = 0; i < 3; i++) sends.push((await send(freshNumber(), `2001:db8:43:7:${i + 1}::9`)).status);
      assert.deepEqual(sends, [201, 201, 429]);
      // Another /64 has its own budget.
      assert.equal((await send(freshNumber(), '2001:db8:43:8::9')).status, 201);
    });

    it('IPv6: failed checks count the /56 and the /48 too, so rotating /64s or /56s buys no new budget', async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, check: { failuresPerIp: { limit: 3, windowSeconds: 3600 } } } }), 0);
      /** A wrong guess from `ip` at a fresh verification; its status and, for a 429, its reasons. */
      const guess = async (ip: string) => {
        const to = freshNumber();
        const s = await send(to, `36.72.44.${(seq % 200) + 1}`);
        const wrong = t.lastCode(to) === '000000' ? '000001' : '000000';
        const r = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip } });
        return r.status === 429 ? `429 ${r.body.error.reasons.join(',')}` : String(r.status);
      };
      // A new /64 for every guess, inside one /56: the /56 has the budget of one address.
      const rotated: string[] = [];
      for (let i = 0; i < 4; i++) rotated.push(await guess(`2001:db8:44:${i + 1}::1`));
      assert.deepEqual(rotated, ['200', '200', '200', '429 locked.subnet']);
      // A new /56 for every guess, inside one /48: the /48 has four times that (12), 3 used above.
      const sites: string[] = [];
      for (let i = 1; i < 11; i++) sites.push(await guess(`2001:db8:44:${i.toString(16)}00::1`));
      assert.deepEqual(sites, [...Array(9).fill('200'), '429 locked.subnet']);
      // Another /48 is not affected, and neither is an IPv4 address of a /24 whose neighbours failed.
      assert.equal(await guess('2001:db8:45:100::1'), '200');
      for (let i = 0; i < 3; i++) assert.equal(await guess(`203.0.113.${10 + i}`), '200');
      assert.equal(await guess('203.0.113.20'), '200');
    });

    it('the owner keeps a separate budget when an attacker exhausts the number', async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, number: [{ limit: 2, windowSeconds: 600 }], trustedNumber: [{ limit: 2, windowSeconds: 600 }] } }), 0);
      const to = freshNumber();
      const owner = { ip: '36.72.50.7', deviceId: 'owner-phone' };
      const s = await send(to, owner.ip, { deviceId: owner.deviceId });
      const ok = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: t.lastCode(to) });
      assert.deepEqual(outcome(ok.body), { status: 'approved' });
      // attacker burns the public budget from elsewhere
      t.clock.advance(MIN);
      await send(to, '198.51.100.1');
      assert.equal((await send(to, '198.51.100.2')).status, 429);
      // owner, same device and network, still gets a code
      const mine = await send(to, '36.72.50.99', { deviceId: owner.deviceId });
      assert.equal(mine.status, 201, JSON.stringify(mine.body));
    });

    it("resendAfter is when the next send is allowed, also when this send used up the number's budget", async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({}), 0);
      const to = freshNumber();
      const at: number[] = [];
      for (const wait of [0, 30_000, 60_000]) {
        t.clock.advance(wait);
        const r = await send(to, '36.72.21.1');
        assert.equal(r.status, 201, r.text);
        at.push(Date.parse(r.body.resendAfter) - t.clock());
      }
      // 30 s and 60 s of cooldown after the first two; the third is the number's third in ten minutes, so the
      // next is allowed when the first leaves the window (~520 s from now), not after the 120 s cooldown.
      assert.deepEqual(at.slice(0, 2), [30_000, 60_000]);
      assert.ok(at[2]! > 500_000 && at[2]! <= 530_000, `resendAfter in ${at[2]} ms`);
      const id = (await send(to, '36.72.21.1')).body;
      assert.deepEqual(id.error.reasons, ['cooldown']);
      const view = await t.request('GET', `/v1/verifications/${(await t.ctx.store.findPending(to, 'sms', t.clock()))!.id}`);
      assert.equal(Date.parse(view.body.resendAfter) - t.clock(), at[2], 'GET says the same');
      t.clock.advance(at[2]! - 1);
      const early = await send(to, '36.72.21.1');
      assert.equal(early.status, 429, early.text);
      assert.deepEqual(early.body.error.reasons, ['rate_limited.number']);
      t.clock.advance(1);
      const onTime = await send(to, '36.72.21.1');
      assert.equal(onTime.status, 201, `at resendAfter: ${onTime.text}`);
    });

    it("a failed delivery's Retry-After is when the next attempt is allowed, also when it used up the number's budget", async () => {
      t.clock.advance(61 * MIN);
      t.ctx.setPolicy(policy({}), 0);
      const to = freshNumber();
      for (const wait of [0, 30_000]) {
        t.clock.advance(wait);
        assert.equal((await send(to, '36.72.22.1')).status, 201);
      }
      t.clock.advance(60_000);
      t.receiver.setHandler(() => ({ status: 500, json: { error: 'down' } }));
      try {
        const failed = await send(to, '36.72.22.1');
        assert.equal(failed.status, 502, failed.text);
        const retry = Number(failed.headers.get('retry-after'));
        assert.ok(retry > 500 && retry <= 530, `Retry-After ${retry}: the number's budget, not the 120 s cooldown`);
        t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
        t.clock.advance(retry * 1000);
        assert.equal((await send(to, '36.72.22.1')).status, 201, 'allowed at Retry-After');
      } finally {
        t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
      }
    });
  });
}

rateLimitSuite('SQLite', async () => undefined);

await describeWithService('redis', 'rate limits over HTTP (Redis)', (url) => {
  const prefix = `otps-test:${randomTag()}:`;
  rateLimitSuite('Redis', async () => new RedisStore(url, { prefix }), () => dropRedisPrefix(url, prefix));
});

await describeWithService('postgres', 'rate limits over HTTP (PostgreSQL)', (url) => {
  const schema = `t_${randomTag()}`;
  rateLimitSuite('PostgreSQL', async () => openStore({ kind: 'postgres', postgresUrl: url, postgresSchema: schema }), async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });
});
