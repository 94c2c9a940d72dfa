import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_POLICY } from '../../src/engine/policy.ts';
import { savePolicy } from '../../src/service/policy-store.ts';
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
    // Accepted once, it made every send a 500 (its window in ms was beyond what a limit can hold: a
    // hostile-input review); every window of the policy is now at most 30 days.
    // Validation accepts what PUT accepts: a note beside the policy.
    const noted = await a.request('POST', '/v1/admin/policy/validate', { note: 'tighter', limits: { number: [{ limit: 2, windowSeconds: 600 }] } }, { key: a.adminKey });
    assert.equal(noted.body.valid, true, noted.text);
    const huge = await a.request('PUT', '/v1/admin/policy', { escalation: { windowSeconds: 9_007_199_254_741 } }, { key: a.adminKey });
    assert.equal(huge.status, 400, huge.text);
    assert.equal(huge.body.error.details[0].path, '/escalation/windowSeconds');
  });

  it('saves a new version that every instance follows, and keeps the history', async () => {
    const put = await a.request('PUT', '/v1/admin/policy', { note: 'tighter', limits: { number: [{ limit: 2, windowSeconds: 600 }] } }, { key: a.adminKey });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.version, 1);
    assert.equal(a.ctx.policy().limits.number[0]!.limit, 2);
    a.clock.advance(1500);
    // The other instance's admin read shows it, without any send through that instance first.
    const seen = await b.request('GET', '/v1/admin/policy', undefined, { key: b.adminKey });
    assert.equal(seen.body.version, 1);
    assert.equal(seen.body.policy.limits.number[0].limit, 2);
    assert.equal(b.ctx.policy().limits.number[0]!.limit, 2, 'the other instance picked it up');
    assert.equal(b.ctx.policyVersion(), 1);
    await a.request('PUT', '/v1/admin/policy', { note: 'back' }, { key: a.adminKey });
    const hist = await a.request('GET', '/v1/admin/policy/versions', undefined, { key: a.adminKey });
    assert.deepEqual(hist.body.versions.map((v: { version: number; note: string }) => [v.version, v.note]), [[2, 'back'], [1, 'tighter']]);
    const events = await a.ctx.store.queryEvents({ type: 'policy.update', limit: 5 });
    assert.equal(events.length, 2);
  });
});

describe('a stored policy an upgrade would refuse', () => {
  /** Start an instance on `dataDir` whose log lines are kept. */
  async function startLogged(dataDir: string): Promise<{ app: TestApp; lines: { level: number; msg: string; [k: string]: unknown }[] }> {
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    return { app: await startTestApp({ keepDataDir: dataDir, log }), lines };
  }

  it('stays in force when only a check added since fails (with a warning), and is never silently replaced by the defaults', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otps-policy-upgrade-'));
    const first = await startTestApp({ keepDataDir: dir });
    // Written as an earlier version stored it: the schema of today accepts it, the relations checked since do
    // not (relaxFactor 2 >= factor 2; UZ allowed and denied).
    const old = { ...structuredClone(DEFAULT_POLICY), name: 'prod', throttle: { ...DEFAULT_POLICY.throttle, factor: 2 }, numbers: { ...DEFAULT_POLICY.numbers, allowCountries: ['ID', 'UZ'], denyCountries: ['UZ'] } };
    await savePolicy(first.ctx.store, old, { now: first.clock(), by: null, note: 'before the upgrade' });
    await first.close();

    const { app, lines } = await startLogged(dir);
    try {
      assert.equal(app.ctx.policy().name, 'prod');
      assert.equal(app.ctx.policyVersion(), 1);
      assert.deepEqual(app.ctx.policy().numbers.denyCountries, ['UZ']);
      const warn = lines.find((l) => l.level === 40 && /a new save would refuse/.test(l.msg));
      assert.ok(warn, JSON.stringify(lines.map((l) => l.msg)));
      assert.deepEqual((warn.warnings as { path: string }[]).map((w) => w.path).sort(), ['/numbers/denyCountries', '/throttle/relaxFactor']);
      // A new save of the same document is refused: the operator fixes it then.
      const put = await app.request('PUT', '/v1/admin/policy', { name: 'prod', throttle: { factor: 2 } }, { key: app.adminKey });
      assert.equal(put.status, 400, put.text);
    } finally {
      await app.close();
    }

    // A stored document that does not load at all (a value this version cannot read; a rule or key it does not
    // know is only set aside, docs/policy.md): the defaults decide, and the log says so at error level, once.
    const second = await startTestApp({ keepDataDir: dir });
    await second.ctx.store.putSetting('policy:current', { ...old, risk: { ...old.risk, blockAt: 'high' } });
    await second.ctx.store.putSetting('policy:version', 2);
    await second.close();
    const again = await startLogged(dir);
    try {
      assert.equal(again.app.ctx.policy().name, 'default');
      const errors = again.lines.filter((l) => l.level === 50 && /stored policy does not load/.test(l.msg));
      assert.equal(errors.length, 1, JSON.stringify(again.lines.map((l) => l.msg)));
      // The refresh does not log it again for the same version.
      again.app.clock.advance(5000);
      await again.app.ctx.state.fresh();
      assert.equal(again.lines.filter((l) => l.level === 50).length, 1);
    } finally {
      await again.app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
