/**
 * Attack: reach the admin surface without an admin key. Every admin route in the OpenAPI document (so
 * routes added later are covered too) is called with no key, a `verify` key, a revoked and an expired admin
 * key, a malformed key, the key in the query string, as Basic auth, and as a dashboard cookie without the
 * dashboard header. Then: path spellings that might route around the check, the failed-authentication limit,
 * the admin IP allowlist against spoofed addresses, and no endpoint ever returning a secret.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, testClock, WEBHOOK_SECRET, type TestApp } from '../helpers/app.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { createApiKey } from '../../src/service/api-keys.ts';
import { client, freshNumber, ipFor, Transcript } from './support.ts';

const CODE_SECRET = 'test-code-secret-0123456789abcdefghijkl';

interface Route {
  method: string;
  path: string;
}

/** Key-protected routes from the OpenAPI document, with path parameters filled in. */
async function protectedRoutes(t: TestApp): Promise<{ admin: Route[]; verify: Route[] }> {
  const doc = (await t.request('GET', '/openapi.json', undefined, { key: null })).body as { paths: Record<string, Record<string, { security?: unknown[] }>> };
  const admin: Route[] = [];
  const verify: Route[] = [];
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      // API-key routes (the dashboard's session routes declare their cookie instead: dashboard tests cover them).
      if (!op.security?.some((r) => Object.hasOwn(r as object, 'apiKey'))) continue;
      const route = { method: method.toUpperCase(), path: p.replace(/\{[^}]+\}/g, 'x1') };
      (p.startsWith('/v1/verifications') ? verify : admin).push(route);
    }
  }
  return { admin, verify };
}

describe('admin routes with the wrong credentials', () => {
  let t: TestApp;
  let routes: { admin: Route[]; verify: Route[] };
  let revoked: string;
  let expired: string;
  let addr = 0;
  const seen = new Transcript();

  before(async () => {
    // 127.0.0.1 plays a trusted proxy so every request can come from its own client address: the
    // failed-authentication limit (per address) is tested separately below and must not mask these results.
    t = await startTestApp({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } });
    const now = t.clock();
    const r = await createApiKey(t.ctx.store, { scopes: ['admin'], name: 'to revoke', now });
    await t.ctx.store.revokeApiKey(r.record.id, now);
    revoked = r.key;
    expired = (await createApiKey(t.ctx.store, { scopes: ['admin'], name: 'short-lived', now, expiresAt: now + 60_000 })).key;
    t.clock.advance(60_001);
    routes = await protectedRoutes(t);
  });
  after(async () => t.close());

  const call = async (r: Route, opts: { key?: string | null; headers?: Record<string, string>; query?: string } = {}) => {
    const headers = { 'x-forwarded-for': `203.0.113.${(addr++ % 250) + 1}`, ...(opts.headers ?? {}) };
    const body = r.method === 'POST' || r.method === 'PUT' ? {} : undefined;
    return seen.add(await t.request(r.method, r.path + (opts.query ?? ''), body, { key: opts.key ?? null, headers }));
  };

  it('the document lists the admin routes (so the loops below test something)', () => {
    assert.ok(routes.admin.length >= 8, routes.admin.map((r) => `${r.method} ${r.path}`).join(', '));
    assert.ok(routes.admin.some((r) => r.path === '/v1/admin/policy' && r.method === 'PUT'));
  });

  it('no key, a verify key, revoked, expired, malformed, query-string and Basic credentials are all refused', async () => {
    const adminSecret = t.adminKey;
    const attempts: [string, Parameters<typeof call>[1], number | number[]][] = [
      ['no key', {}, 401],
      ['verify key', { key: t.verifyKey }, 403],
      ['revoked admin key', { key: revoked }, 401],
      ['expired admin key', { key: expired }, 401],
      ['malformed', { key: `${adminSecret}x` }, 401],
      ['truncated', { key: adminSecret.slice(0, -1) }, 401],
      ['query ?key=', { query: `?key=${encodeURIComponent(adminSecret)}` }, 401],
      ['query ?api_key=', { query: `?api_key=${encodeURIComponent(adminSecret)}` }, 401],
      ['query ?access_token=', { query: `?access_token=${encodeURIComponent(adminSecret)}` }, 401],
      ['Basic auth', { headers: { authorization: `Basic ${Buffer.from(`${adminSecret}:`).toString('base64')}` } }, 401],
      ['dashboard cookie without the dashboard header (cross-site)', { headers: { cookie: `otps_session=${adminSecret}` } }, 401],
      // The cookie is only read for /v1/admin/* (not /metrics), hence 401 or 403.
      ['dashboard header with a verify key in the cookie', { headers: { cookie: `otps_session=${t.verifyKey}`, 'x-otpshield-dashboard': '1' } }, [401, 403]],
    ];
    for (const r of routes.admin) {
      for (const [what, opts, status] of attempts) {
        const res = await call(r, opts);
        // 400 would mean the body was validated before the key was checked: an unauthenticated client learns the schema.
        assert.ok([status].flat().includes(res.status), `${r.method} ${r.path} with ${what}: ${res.status} ${res.text}`);
      }
    }
  });

  it("signing in to the dashboard again revokes the browser's previous session, not anyone else's", async () => {
    const login = async (cookie?: string) => {
      const r = await t.request('POST', '/dashboard/api/login', { key: t.adminKey }, { key: null, headers: cookie ? { cookie } : {} });
      assert.equal(r.status, 200, r.text);
      return r.headers.get('set-cookie')!.split(';')[0]!;
    };
    const use = async (cookie: string) => (await t.request('GET', '/v1/admin/policy', undefined, { key: null, headers: { cookie, 'x-otpshield-dashboard': '1' } })).status;
    const first = await login();
    const other = await login(); // another browser, without a cookie
    const second = await login(first);
    assert.deepEqual([await use(first), await use(other), await use(second)], [401, 200, 200]);
    // A cookie holding a key that is not a dashboard session (an admin key pasted into it) is not revoked.
    await login(`otps_session=${t.adminKey}`);
    assert.equal((await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey })).status, 200);
  });

  it('a dashboard session ends with the admin key it was made with, makes no sessions, and sign-out revokes only sessions', async () => {
    // A second admin key of its own, so revoking it leaves the suite's key alone.
    const { key: parentKey, record: parent } = await createApiKey(t.ctx.store, { scopes: ['admin'], name: 'ops laptop', now: t.clock() });
    const login = async (key: string) => t.request('POST', '/dashboard/api/login', { key }, { key: null });
    const signed = await login(parentKey);
    assert.equal(signed.status, 200, signed.text);
    const cookie = signed.headers.get('set-cookie')!.split(';')[0]!;
    const session = cookie.slice('otps_session='.length);
    const use = async () => (await t.request('GET', '/v1/admin/policy', undefined, { key: null, headers: { cookie, 'x-otpshield-dashboard': '1' } })).status;
    assert.equal(await use(), 200);
    // A session is no key to sign in with (a chain of sessions would hide which key made them).
    const chained = await login(session);
    assert.equal(chained.status, 403, chained.text);
    // Signing out with another key in the cookie (a leaked verify key, an admin key) revokes nothing.
    const out = await t.request('POST', '/dashboard/api/logout', undefined, { key: null, headers: { cookie: `otps_session=${t.verifyKey}` } });
    assert.equal(out.status, 200);
    assert.equal((await t.request('POST', '/v1/verifications', { to: '+6281234599901' })).status !== 401, true, 'the verify key still works');
    // The admin key is revoked (stolen): its session ends with it, within the key cache's second.
    await t.ctx.store.revokeApiKey(parent.id, t.clock());
    await new Promise((r) => setTimeout(r, 1_100));
    const after = await t.request('GET', '/v1/admin/policy', undefined, { key: null, headers: { cookie, 'x-otpshield-dashboard': '1' } });
    assert.equal(after.status, 401, after.text);
    assert.match(after.body.error.message, /dashboard session was made with was revoked/);
  });

  it('least privilege both ways: an admin key cannot start or check verifications', async () => {
    for (const r of routes.verify) {
      const res = await call(r, { key: t.adminKey });
      assert.equal(res.status, 403, `${r.method} ${r.path}: ${res.text}`);
    }
  });

  it('path spellings, HEAD and OPTIONS do not route around authentication', async () => {
    const variants = [
      '/v1/admin/policy/',
      '/V1/admin/policy',
      '/v1/ADMIN/policy',
      '//v1/admin/policy',
      '/v1//admin/policy',
      '/v1/admin//policy',
      '/v1/%61dmin/policy',
      '/v1/admin/%70olicy',
      '/v1/admin/policy%2F',
      '/v1/admin/policy%00',
      '/v1/admin/./policy',
      '/v1/admin/../admin/policy',
      '/v1/verifications/../admin/policy',
      '/v1/admin/policy;x=1',
      '/v1/admin/policy?',
      '/v1/admin/policy#x',
      '/v1/admin/policy%20',
      '/v1/admin/policy\\',
    ];
    for (const path of variants) {
      for (const key of [null, t.verifyKey]) {
        for (const method of ['GET', 'HEAD', 'OPTIONS']) {
          const res = await call({ method, path }, { key });
          assert.ok(res.status >= 400 && res.status < 500, `${method} ${path} (${key ? 'verify key' : 'no key'}) → ${res.status} ${res.text}`);
          assert.equal(res.headers.get('access-control-allow-origin'), null);
        }
      }
    }
  });

  it('no endpoint returns a secret: code secret, sender secrets, API-key secrets or their hashes', async () => {
    // Give the endpoints something to show.
    await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(7)) });
    for (const r of routes.admin.filter((x) => x.method === 'GET')) {
      const res = await call(r, { key: t.adminKey });
      assert.ok(res.status < 500, `${r.path}: ${res.text}`);
    }
    for (const p of ['/openapi.json', '/healthz', '/readyz', '/widget.js', '/demo']) await call({ method: 'GET', path: p });
    const keys = await t.ctx.store.listApiKeys();
    // The secret is everything after `osk_<id>_`: it is base64url, so it may contain `_` itself (taking the
    // third `_`-separated piece made this test flaky: an empty or one-letter piece matches every response).
    const secretOf = (key: string) => key.split('_').slice(2).join('_');
    const secrets = [CODE_SECRET, WEBHOOK_SECRET, secretOf(t.adminKey), secretOf(t.verifyKey), ...keys.map((k) => k.secretHash)];
    for (const s of secrets) assert.ok(s.length >= 32, `secret too short to search for: ${s.length}`);
    for (const s of secrets) {
      const hit = seen.find(new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      assert.equal(hit, undefined, `secret ${s.slice(0, 6)}… appeared in a response:\n${hit?.slice(0, 300)}`);
    }
  });
});

describe('failed authentication is rate limited', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('20 failures from one address in 10 minutes, then 429 even for a valid key; free again after the window', async () => {
    const statuses: number[] = [];
    const guesses = Array.from({ length: 30 }, (_, i) => `osk_${'A'.repeat(11)}${String.fromCharCode(65 + (i % 26))}_${'B'.repeat(43)}`);
    // In parallel: the counter is consumed atomically, racing does not buy extra guesses.
    const rs = await Promise.all(guesses.map((k) => t.request('GET', '/v1/admin/policy', undefined, { key: k })));
    statuses.push(...rs.map((r) => r.status));
    assert.ok(statuses.filter((s) => s === 401).length <= 20, statuses.join(','));
    assert.ok(statuses.every((s) => s === 401 || s === 429));
    const valid = await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey });
    assert.equal(valid.status, 429);
    assert.ok(Number(valid.headers.get('retry-after')) > 0);
    const login = await t.request('POST', '/dashboard/api/login', { key: t.adminKey }, { key: null });
    assert.equal(login.status, 429, 'the dashboard sign-in shares the limit');
    t.clock.advance(10 * 60_000 + 10_000); // the window, plus one slot of the bucketed window (src/engine/window.ts)
    assert.equal((await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey })).status, 200);
  });
});

describe('a request without a key is not a guess', () => {
  it('a scraper or probe without a key, however often, locks nobody out: 401 each time, and the admin key still works', async () => {
    const t = await startTestApp();
    try {
      for (let i = 0; i < 30; i++) {
        const r = await t.request('GET', i % 2 ? '/metrics' : '/v1/admin/policy', undefined, { key: null });
        assert.equal(r.status, 401, `request ${i + 1}: ${r.text}`);
      }
      assert.equal((await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey })).status, 200);
      assert.equal((await t.request('POST', '/dashboard/api/login', { key: t.adminKey }, { key: null })).status, 200, 'nor the dashboard sign-in');
    } finally {
      await t.close();
    }
  });
});

describe('a revoked or expired key is not a guess', () => {
  it('a backend left on a revoked key gets 401 saying so, as often as it tries, and does not lock the address out', async () => {
    const t = await startTestApp();
    try {
      const now = t.clock();
      const old = await createApiKey(t.ctx.store, { scopes: ['verify'], name: 'before the rotation', now });
      await t.ctx.store.revokeApiKey(old.record.id, now);
      const expired = (await createApiKey(t.ctx.store, { scopes: ['verify'], name: 'short-lived', now, expiresAt: now + 1000 })).key;
      t.clock.advance(1001);
      for (let i = 0; i < 25; i++) {
        const r = await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(60)) }, { key: old.key });
        assert.equal(r.status, 401, r.text);
        assert.equal(r.body.error.message, 'This API key was revoked.');
      }
      const e = await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(61)) }, { key: expired });
      assert.equal(e.body.error.message, 'This API key has expired.');
      // The valid keys from the same address keep working.
      assert.equal((await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(62)) })).status, 201);
      assert.equal((await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey })).status, 200);
      // A wrong secret for that key id is a guess like any other: it is not told the key is revoked.
      const wrongSecret = old.key.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      assert.equal((await t.request('GET', '/v1/admin/policy', undefined, { key: wrongSecret })).body.error.message, 'A valid API key is required.');
    } finally {
      await t.close();
    }
  });
});

describe('failed authentication with several instances', () => {
  it('the failure count is shared; an instance locks an address at the first failure it counts itself', async () => {
    // Two instances on one store (what several processes on Redis or PostgreSQL are).
    const store = new MemoryStore();
    const clock = testClock();
    const a = await startTestApp({ store, clock });
    const b = await startTestApp({ store, clock });
    try {
      const bad = `osk_${'A'.repeat(12)}_${'B'.repeat(43)}`;
      for (let i = 0; i < 20; i++) assert.equal((await a.request('GET', '/v1/admin/policy', undefined, { key: bad })).status, 401);
      assert.equal((await a.request('GET', '/v1/admin/policy', undefined, { key: a.adminKey })).status, 429, 'locked on the instance that counted');
      // b has not seen the address fail: a valid key still works there (docs/security.md) …
      assert.equal((await b.request('GET', '/v1/admin/policy', undefined, { key: b.adminKey })).status, 200);
      // … until its first failure, which the shared count refuses and which locks the address on b too.
      assert.equal((await b.request('GET', '/v1/admin/policy', undefined, { key: bad })).status, 429);
      assert.equal((await b.request('GET', '/v1/admin/policy', undefined, { key: b.adminKey })).status, 429);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('admin IP allowlist', () => {
  it('refuses addresses outside it, including ones written into X-Forwarded-For by the client', async () => {
    const behindProxy = await startTestApp({ config: { admin: { ipAllowlist: ['10.1.0.0/16'] }, server: { trustedProxies: ['127.0.0.1/32'] } } });
    try {
      const get = (headers: Record<string, string>) => behindProxy.request('GET', '/v1/admin/policy', undefined, { key: behindProxy.adminKey, headers });
      assert.equal((await get({})).status, 403, 'the proxy itself is not an operator');
      assert.equal((await get({ 'x-forwarded-for': '10.1.2.3' })).status, 200, 'an operator behind the proxy');
      assert.equal((await get({ 'x-forwarded-for': '10.1.2.3, 36.72.1.1' })).status, 403, 'an outsider who wrote an inside address first');
      assert.equal((await get({ 'x-real-ip': '10.1.2.3' })).status, 403);
      const dash = await behindProxy.request('POST', '/dashboard/api/login', { key: behindProxy.adminKey }, { key: null, headers: { 'x-forwarded-for': '36.72.1.1' } });
      assert.equal(dash.status, 403, 'the dashboard is admin surface too');
      // Verification routes are not admin: the allowlist does not apply to them.
      assert.equal((await behindProxy.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(9)) })).status, 201);
    } finally {
      await behindProxy.close();
    }
    // An allowlist that names the proxy too (an operator on the proxy's host): what the proxy forwards decides.
    const named = await startTestApp({ config: { admin: { ipAllowlist: ['127.0.0.1/32', '10.1.0.0/16'] }, server: { trustedProxies: ['127.0.0.1/32'] } } });
    try {
      const get = (xff: string) => named.request('GET', '/v1/admin/policy', undefined, { key: named.adminKey, headers: { 'x-forwarded-for': xff } });
      // Proxies that append the client's port (IIS, Azure Application Gateway): the port is taken off.
      assert.equal((await get('10.1.2.3:40001')).status, 200, 'an operator, with a port');
      assert.equal((await get('203.0.113.9:5555')).status, 403, 'an outsider, with a port');
      assert.equal((await get('[2a00:1450::1]:443')).status, 403, 'an outsider, IPv6 with a port');
      // A hop that is no address leaves the client unknown: refused, not taken for the proxy.
      for (const hop of ['unknown', '10.1.2.3, unknown', 'not-an-ip:80']) assert.equal((await get(hop)).status, 403, hop);
    } finally {
      await named.close();
    }
    const direct = await startTestApp({ config: { admin: { ipAllowlist: ['10.1.0.0/16'] } } });
    try {
      const spoofed = await direct.request('GET', '/v1/admin/policy', undefined, { key: direct.adminKey, headers: { 'x-forwarded-for': '10.1.2.3' } });
      assert.equal(spoofed.status, 403, 'no trusted proxy: X-Forwarded-For is ignored');
    } finally {
      await direct.close();
    }
  });
});
