/**
 * Least privilege for admin keys: `read` (the admin surface's reads, numbers and addresses masked) and
 * `metrics` (`/metrics` only), besides `verify` and `admin`. Before, a Prometheus scraper or a read-only
 * dashboard had to hold an `admin` key, which can change the policy, lift blocks and erase data.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { API_SCOPES, createApiKey, grants } from '../../src/service/api-keys.ts';
import type { ApiScope } from '../../src/store/interface.ts';

const NUMBER = '+6281234577001';
const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

describe('grants', () => {
  it('admin includes read, read includes metrics; verify stands apart', () => {
    const table = API_SCOPES.map((held) => [held, API_SCOPES.filter((needed) => grants([held], needed))]);
    assert.deepEqual(table, [
      ['verify', ['verify']],
      ['admin', ['admin', 'read', 'metrics']],
      ['read', ['read', 'metrics']],
      ['metrics', ['metrics']],
    ]);
    assert.equal(grants(['verify', 'metrics'] as ApiScope[], 'verify'), true);
    assert.equal(grants([], 'metrics'), false);
  });
});

describe('read and metrics keys over HTTP', () => {
  let t: TestApp;
  let read: string;
  let metrics: string;
  const as = (key: string, method: string, path: string, body?: unknown) => t.request(method, path, body, { key });
  before(async () => {
    t = await startTestApp();
    read = (await createApiKey(t.ctx.store, { scopes: ['read'], name: 'grafana', now: t.clock() })).key;
    metrics = (await createApiKey(t.ctx.store, { scopes: ['metrics'], name: 'prometheus', now: t.clock() })).key;
    assert.equal((await t.request('POST', '/v1/verifications', { to: NUMBER, client: client('36.72.77.1') })).status, 201);
    assert.equal((await as(t.adminKey, 'POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281234577002', note: `same person as ${NUMBER}` })).status, 201);
    assert.equal((await as(t.adminKey, 'POST', '/v1/admin/lists', { list: 'block', kind: 'prefix', value: '+62899' })).status, 201);
  });
  after(async () => t.close());

  it('a read key reads stats, state, alerts, policy, pauses, quarantines and metrics, and validates a policy', async () => {
    for (const path of ['/v1/admin/stats', '/v1/admin/monitoring/state', '/v1/admin/monitoring/alerts', '/v1/admin/policy', '/v1/admin/policy/versions', '/v1/admin/pauses', '/v1/admin/quarantines', '/metrics']) {
      const r = await as(read, 'GET', path);
      assert.equal(r.status, 200, `${path}: ${r.text}`);
    }
    assert.equal((await as(read, 'POST', '/v1/admin/policy/validate', { limits: { number: [{ limit: 2, windowSeconds: 600 }] } })).status, 200);
  });

  it('a read key sees events and list entries with numbers masked, and cannot ask for them in full', async () => {
    const events = await as(read, 'GET', '/v1/admin/events?type=send');
    assert.equal(events.status, 200, events.text);
    assert.ok(events.body.events.length >= 1);
    assert.ok(events.body.events.every((e: { to: string }) => e.to !== NUMBER && /\*/.test(e.to)), JSON.stringify(events.body.events.map((e: { to: string }) => e.to)));
    const full = await as(read, 'GET', '/v1/admin/events?type=send&mask=false');
    assert.equal(full.status, 403);
    assert.match(full.body.error.message, /admin key/);
    // Not recorded as a read in full: nothing was handed out.
    const reads = await as(t.adminKey, 'GET', '/v1/admin/events?type=data.read');
    assert.equal(reads.body.events.length, 0);

    const lists = await as(read, 'GET', '/v1/admin/lists');
    const byKind = Object.fromEntries(lists.body.entries.map((e: { kind: string }) => [e.kind, e]));
    assert.match(byKind.number.value, /^\+62812\*+002$/);
    assert.doesNotMatch(byKind.number.note, /4577001/);
    assert.equal(byKind.prefix.value, '+62899', 'a range stays readable');
    const adminLists = await as(t.adminKey, 'GET', '/v1/admin/lists');
    assert.ok(adminLists.body.entries.some((e: { value: string; note: string }) => e.value === '+6281234577002' && e.note === `same person as ${NUMBER}`), 'an admin key sees them in full');
    const adminEvents = await as(t.adminKey, 'GET', '/v1/admin/events?type=send&mask=false');
    assert.ok(adminEvents.body.events.some((e: { to: string }) => e.to === NUMBER));
  });

  it('a read key sees pauses, the monitoring state and alerts with numbers masked; metrics labels mask them for everyone', async () => {
    const whole = '+6281234577009';
    assert.equal((await as(t.adminKey, 'POST', '/v1/admin/pause', { prefix: whole, note: `abuse of ${whole}` })).status, 200);
    await t.ctx.store.appendEvents([{ id: 'ev_alert_read', at: t.clock(), type: 'alert', decision: 'warning', reasons: ['request_spike'], data: { rule: 'request_spike', scope: `prefix:${whole}`, message: `spike for ${whole}` } }]);
    t.clock.advance(1500);
    const pauses = (await as(read, 'GET', '/v1/admin/pauses')).body.pauses;
    const state = (await as(read, 'GET', '/v1/admin/monitoring/state')).body.pauses;
    const alerts = (await as(read, 'GET', '/v1/admin/monitoring/alerts')).body.alerts;
    const metricsText = (await as(metrics, 'GET', '/metrics')).text;
    for (const [what, text] of [['pauses', JSON.stringify(pauses)], ['state', JSON.stringify(state)], ['alerts', JSON.stringify(alerts)], ['metrics', metricsText]] as const) {
      assert.doesNotMatch(text, /6281234577009/, `${what}: ${text.slice(0, 300)}`);
    }
    assert.ok(pauses.some((p: { scope: string; note: string }) => /^prefix:\+62812\*+009$/.test(p.scope) && /\*/.test(p.note)), JSON.stringify(pauses));
    assert.match(metricsText, /otpshield_pauses_active\{scope="prefix:\+62812\*+009"\} 1/);
    // An admin key sees them in full.
    assert.ok((await as(t.adminKey, 'GET', '/v1/admin/pauses')).body.pauses.some((p: { scope: string }) => p.scope === `prefix:${whole}`));
    assert.match(JSON.stringify((await as(t.adminKey, 'GET', '/v1/admin/monitoring/alerts')).body.alerts), /6281234577009/);
    assert.equal((await as(t.adminKey, 'POST', '/v1/admin/resume', { prefix: whole })).status, 200);
  });

  it('a read key changes nothing and cannot send or read a person\'s records; its dashboard session is read-only', async () => {
    const refused: [string, string, unknown][] = [
      ['POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '203.0.113.5' }],
      ['PUT', '/v1/admin/policy', {}],
      ['POST', '/v1/admin/pause', {}],
      ['POST', '/v1/admin/resume', {}],
      ['POST', '/v1/admin/quarantines', { scope: 'prefix:+62899', mode: 'block', ttlSeconds: 60 }],
      ['POST', '/v1/admin/unlock', { target: NUMBER }],
      ['POST', '/v1/admin/subjects/access', { destination: NUMBER }],
      ['POST', '/v1/admin/subjects/erase', { destination: NUMBER }],
      ['POST', '/v1/verifications', { to: NUMBER, client: client('36.72.77.2') }],
    ];
    for (const [method, path, body] of refused) assert.equal((await as(read, method, path, body)).status, 403, `${method} ${path}`);
    // Its dashboard session has the read scope only (the page itself: test/browser/dashboard.test.ts).
    const login = await t.request('POST', '/dashboard/api/login', { key: read }, { key: null });
    assert.equal(login.status, 200, login.text);
    const cookie = /otps_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!;
    const viaCookie = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: null, headers: { cookie: `otps_session=${cookie}`, 'x-otpshield-dashboard': '1' } });
    assert.deepEqual((await viaCookie('GET', '/dashboard/api/session')).body.scopes, ['read']);
    assert.equal((await viaCookie('GET', '/v1/admin/stats')).status, 200);
    assert.equal((await viaCookie('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '203.0.113.5' })).status, 403);
    assert.equal((await viaCookie('GET', '/v1/admin/events?mask=false')).status, 403);
    // A metrics key does not sign in.
    assert.equal((await t.request('POST', '/dashboard/api/login', { key: metrics }, { key: null })).status, 403);
  });

  it('a metrics key reads /metrics and nothing else', async () => {
    const r = await as(metrics, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.text, /otpshield_/);
    for (const path of ['/v1/admin/stats', '/v1/admin/events', '/v1/admin/lists', '/v1/admin/policy']) assert.equal((await as(metrics, 'GET', path)).status, 403, path);
    assert.equal((await as(metrics, 'POST', '/v1/verifications', { to: NUMBER })).status, 403);
  });

  it('the OpenAPI document says which key each operation needs', async () => {
    const doc = (await t.request('GET', '/openapi.json', undefined, { key: null })).body;
    assert.match(doc.paths['/v1/admin/events'].get.description, /scope: `read`/);
    assert.match(doc.paths['/v1/admin/lists'].post.description, /scope: `admin`/);
    assert.match(doc.paths['/metrics'].get.description, /scope: `metrics`/);
    assert.match(doc.paths['/v1/verifications'].post.description, /scope: `verify`/);
    // Once each (a GET's automatic HEAD route shares its schema: the note was added twice).
    const twice = Object.entries(doc.paths as Record<string, Record<string, { description?: string }>>).flatMap(([p, ops]) =>
      Object.entries(ops).filter(([, op]) => (op.description ?? '').split('API key scope:').length > 2).map(([m]) => `${m} ${p}`),
    );
    assert.deepEqual(twice, []);
  });
});
