import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('policy admin API', () => {
  let a: TestApp;
  let b: TestApp;
  before(async () => {
    a = await startTestApp();
    // a second instance on the same SQLite file: one fleet
    b = await startTestApp({ keepDataDir: a.dataDir, clock: a.clock });
  });
  after(async () => {
    await b.close();
    await a.close();
  });

  it('shows the current policy with its defaults', async () => {
    const r = await a.request('GET', '/v1/admin/policy', undefined, { key: a.adminKey });
    assert.equal(r.status, 200);
    assert.equal(r.body.version, 0);
    assert.equal(r.body.policy.limits.number[0].limit, 3);
    // The test app has no CAPTCHA provider: the rules only a CAPTCHA clears are listed as not enforced.
    assert.deepEqual(
      r.body.notEnforced.map((x: { rule: string }) => x.rule),
      ['number.unverified_sends', 'number.failed_checks', 'ip.many_countries', 'quarantine.captcha'],
    );
  });

  it('lists nothing as not enforced where a CAPTCHA provider is configured', async () => {
    const c = await startTestApp({ config: { captcha: { provider: 'turnstile', secret: 'test-never-called', verifyUrl: 'http://127.0.0.1:9/' } } });
    try {
      const r = await c.request('GET', '/v1/admin/policy', undefined, { key: c.adminKey });
      assert.deepEqual(r.body.notEnforced, []);
    } finally {
      await c.close();
    }
  });

  it('admin reads that take no query parameters refuse unknown ones (a mistyped filter is not silently ignored)', async () => {
    const paths = ['/v1/admin/policy?x=1', '/v1/admin/policy/versions?limit=abc', '/v1/admin/pauses?x=1', '/v1/admin/quarantines?scope=x', '/v1/admin/monitoring/state?x=1'];
    for (const path of paths) {
      const r = await a.request('GET', path, undefined, { key: a.adminKey });
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.equal(r.body.error.code, 'invalid_request');
      const plain = await a.request('GET', path.split('?')[0]!, undefined, { key: a.adminKey });
      assert.equal(plain.status, 200, `${path}: ${plain.text}`);
    }
  });

  it('requires the admin scope', async () => {
    assert.equal((await a.request('GET', '/v1/admin/policy')).status, 403);
    assert.equal((await a.request('GET', '/v1/admin/policy', undefined, { key: null })).status, 401);
  });

  it('validates without saving, and refuses invalid documents with the failing path', async () => {
    const v = await a.request('POST', '/v1/admin/policy/validate', { risk: { challengeAt: 50, blockAt: 40 } }, { key: a.adminKey });
    assert.equal(v.body.valid, false);
    assert.equal(v.body.errors[0].path, '/risk/blockAt');
    const bad = await a.request('PUT', '/v1/admin/policy', { limits: { number: [{ limit: 'three', windowSeconds: 600 }] } }, { key: a.adminKey });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_request');
    assert.match(bad.body.error.details[0].path, /^\/limits\/number/);
  });

  it('saves a new version that every instance follows, and keeps the history', async () => {
    const put = await a.request('PUT', '/v1/admin/policy', { note: 'tighter', limits: { number: [{ limit: 2, windowSeconds: 600 }] } }, { key: a.adminKey });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.version, 1);
    assert.equal(a.ctx.policy().limits.number[0]!.limit, 2);
    a.clock.advance(1500);
    await b.ctx.state.fresh();
    assert.equal(b.ctx.policy().limits.number[0]!.limit, 2, 'the other instance picked it up');
    assert.equal(b.ctx.policyVersion(), 1);
    await a.request('PUT', '/v1/admin/policy', { note: 'back' }, { key: a.adminKey });
    const hist = await a.request('GET', '/v1/admin/policy/versions', undefined, { key: a.adminKey });
    assert.deepEqual(hist.body.versions.map((v: { version: number; note: string }) => [v.version, v.note]), [[2, 'back'], [1, 'tighter']]);
    const events = await a.ctx.store.queryEvents({ type: 'policy.update', limit: 5 });
    assert.equal(events.length, 2);
  });
});
