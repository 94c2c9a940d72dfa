/**
 * A policy saved on one instance applies to another instance's next request once its shared state is due
 * for a refresh (1 s), for sends, checks and challenges alike. A multi-instance review found sends decided
 * under the policy read before the refresh (four sends to a country denied seconds earlier went out) and
 * checks that never refreshed it (a lowered failed-check limit took up to a minute to apply).
 * Two application contexts share one store and one clock here, as two servers share Redis.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'th-TH', elapsedMs: 5400 });
const NO_COOLDOWN = { limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 } } };

describe('a policy saved on one instance, on the other', () => {
  let a: TestApp;
  let b: TestApp;
  before(async () => {
    a = await startTestApp();
    b = await startTestApp({ store: a.ctx.store, clock: a.clock });
    assert.equal((await a.request('PUT', '/v1/admin/policy', NO_COOLDOWN, { key: a.adminKey })).status, 200);
    a.clock.advance(1500);
  });
  after(async () => {
    // b shares a's store, which a.close() closes.
    await b.detach();
    await a.close();
  });

  it("decides the other instance's next send", async () => {
    assert.equal((await b.request('POST', '/v1/verifications', { to: '+66812345001', client: client('49.228.10.1') })).status, 201, 'Thailand allowed');
    const saved = await a.request('PUT', '/v1/admin/policy', { ...NO_COOLDOWN, numbers: { denyCountries: ['TH'] } }, { key: a.adminKey });
    assert.equal(saved.status, 200, saved.text);
    a.clock.advance(1500);
    const refused = await b.request('POST', '/v1/verifications', { to: '+66812345002', client: client('49.228.10.2') });
    assert.equal(refused.status, 403, refused.text);
    assert.deepEqual(refused.body.error.reasons, ['country.number']);
  });

  it("limits the other instance's checks", async () => {
    const to = '+6281234588001';
    const sent = await b.request('POST', '/v1/verifications', { to, client: client('36.72.88.1') });
    assert.equal(sent.status, 201, sent.text);
    // b's snapshot is fresh: a check now loads nothing; the lowered limit is saved on a after it.
    assert.equal((await b.request('POST', '/v1/verifications/check', { to: '+6281234588999', code: '000000', client: { ip: '203.0.113.50' } })).status, 404);
    const lowered = await a.request('PUT', '/v1/admin/policy', { ...NO_COOLDOWN, limits: { ...NO_COOLDOWN.limits, check: { failuresPerIp: { limit: 2, windowSeconds: 3600 } } } }, { key: a.adminKey });
    assert.equal(lowered.status, 200, lowered.text);
    a.clock.advance(1500);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await b.request('POST', '/v1/verifications/check', { to: `+628123458899${i}`, code: '000000', client: { ip: '203.0.113.50' } })).status);
    // The failure before the change counts too: the second failure reaches the new limit of 2.
    assert.deepEqual(statuses, [404, 429, 429]);
  });

  it("limits the other instance's challenges", async () => {
    assert.equal((await b.request('POST', '/v1/challenges', undefined, { key: null })).status, 201);
    const lowered = await a.request('PUT', '/v1/admin/policy', { ...NO_COOLDOWN, limits: { ...NO_COOLDOWN.limits, challengesPerIp: { limit: 1, windowSeconds: 600 } } }, { key: a.adminKey });
    assert.equal(lowered.status, 200, lowered.text);
    a.clock.advance(1500);
    assert.equal((await b.request('POST', '/v1/challenges', undefined, { key: null })).status, 429);
  });
});
