/**
 * Unlocking a user (an on-call review: a number locked by guesses — for up to 30 days after 100 consecutive
 * failures — could not be unlocked by anyone, and an allow-list entry did not help): `POST /v1/admin/unlock`
 * and `otp-shield unlock` reset the counters that refuse a number, an address or an IP, and record it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, testClock, type TestApp, outcome } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';

const client = (ip: string, deviceId?: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400, ...(deviceId ? { deviceId } : {}) });
const NO_COOLDOWN = { limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, number: [{ limit: 100, windowSeconds: 600 }] } };

/** Spend a number's failure budget (10 per hour) over two verifications; returns the last one's id. */
async function lockNumber(t: TestApp, to: string): Promise<void> {
  for (let round = 0; round < 2; round++) {
    const s = await t.request('POST', '/v1/verifications', { to, client: client(`36.72.40.${round + 1}`) });
    assert.equal(s.status, 201, s.text);
    const wrong = t.lastCode(to) === '000000' ? '000001' : '000000';
    for (let i = 0; i < 5; i++) assert.equal((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip: `36.72.41.${round * 5 + i + 1}` } })).status, 200);
  }
}

describe('POST /v1/admin/unlock', () => {
  let t: TestApp;
  const admin = (body: unknown, key?: string) => t.request('POST', '/v1/admin/unlock', body, { key: key ?? t.adminKey });
  before(async () => {
    t = await startTestApp();
    assert.equal((await t.request('PUT', '/v1/admin/policy', NO_COOLDOWN, { key: t.adminKey })).status, 200);
  });
  after(async () => t.close());

  it('a number locked by failed checks gets codes again and can verify; the unlock is recorded', async () => {
    const to = '+6281234566001';
    await lockNumber(t, to);
    const refused = await t.request('POST', '/v1/verifications', { to, client: client('36.72.40.9') });
    assert.equal(refused.status, 429, refused.text);
    assert.deepEqual(refused.body.error.reasons, ['locked.number']);

    const r = await admin({ target: '+62 812-3456-6001' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.to, to);
    assert.ok(r.body.countersReset > 5);

    const s = await t.request('POST', '/v1/verifications', { to, client: client('36.72.40.9') });
    assert.equal(s.status, 201, s.text);
    assert.deepEqual(outcome((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: t.lastCode(to) })).body), { status: 'approved' });
    const [ev] = (await t.request('GET', '/v1/admin/events?type=unlock&mask=false', undefined, { key: t.adminKey })).body.events;
    assert.equal(ev.to, to);
    assert.equal(ev.data.by, t.adminKey.split('_')[1]);
  });

  it('an IP locked by failed checks across numbers can check again', async () => {
    assert.equal((await t.request('PUT', '/v1/admin/policy', { ...NO_COOLDOWN, limits: { ...NO_COOLDOWN.limits, check: { failuresPerIp: { limit: 2, windowSeconds: 3600 } } } }, { key: t.adminKey })).status, 200);
    const guesser = '203.0.113.77';
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const to = `+628123456610${i}`;
      const s = await t.request('POST', '/v1/verifications', { to, client: client(`36.72.42.${i + 1}`) });
      const wrong = t.lastCode(to) === '000000' ? '000001' : '000000';
      statuses.push((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip: guesser } })).status);
    }
    assert.deepEqual(statuses, [200, 200, 429]);
    const r = await admin({ target: guesser });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.ip, guesser);
    const to = '+6281234566102';
    assert.deepEqual(outcome((await t.request('POST', '/v1/verifications/check', { to, code: t.lastCode(to), client: { ip: guesser } })).body), { status: 'approved' });
  });

  it('needs an admin key and a target it can read', async () => {
    assert.equal((await admin({ target: '+6281234566001' }, t.verifyKey)).status, 403);
    const bad = await admin({ target: 'someone' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /body\.target is not an IP address, a phone number in international form or an email address/);
    assert.equal((await admin({})).status, 400);
  });
});

describe('otp-shield unlock', () => {
  it('unlocks a number in the store a server uses, in one line, and refuses what it cannot read', async () => {
    // Real time: the CLI counts windows from the wall clock.
    const t = await startTestApp({ clock: testClock(Date.now()) });
    const to = '+6281234566201';
    try {
      assert.equal((await t.request('PUT', '/v1/admin/policy', NO_COOLDOWN, { key: t.adminKey })).status, 200);
      await lockNumber(t, to);
      assert.equal((await t.request('POST', '/v1/verifications', { to, client: client('36.72.40.9') })).status, 429);
      const out = await cli(t.dataDir, ['unlock', to]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /^unlocked \+6281234566201: \d+ counters reset/);
      assert.equal((await t.request('POST', '/v1/verifications', { to, client: client('36.72.40.9') })).status, 201);
      const bad = await cli(t.dataDir, ['unlock', 'nobody']);
      assert.notEqual(bad.code, 0);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.match(bad.stderr, /"nobody" is not an IP address/);
    } finally {
      await t.close();
    }
  });
});
