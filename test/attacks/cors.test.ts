/**
 * Attack: a page on another origin uses a visitor's browser against us (token farming through
 * /v1/challenges, reading API answers). Only configured origins get CORS grants, only on the browser
 * endpoint; nothing else ever answers a preflight, and credentials are never allowed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const ALLOWED = 'https://shop.example';
const EVIL = ['https://evil.example', 'https://shop.example.evil.example', 'http://shop.example', 'https://shop.example:8443', 'null', 'https://SHOP.example'];

describe('CORS from disallowed origins', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ config: { cors: { origins: [ALLOWED] } } });
  });
  after(async () => t.close());

  const preflight = (path: string, origin: string, method = 'POST') =>
    t.request('OPTIONS', path, undefined, { key: null, headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'content-type,authorization' } });

  it('the allowed origin gets a grant for /v1/challenges (so the refusals below are about the origin)', async () => {
    const pre = await preflight('/v1/challenges', ALLOWED);
    assert.equal(pre.headers.get('access-control-allow-origin'), ALLOWED);
    const post = await t.request('POST', '/v1/challenges', {}, { key: null, headers: { origin: ALLOWED } });
    assert.equal(post.status, 201);
    assert.equal(post.headers.get('access-control-allow-origin'), ALLOWED);
    assert.equal(post.headers.get('access-control-allow-credentials'), null);
  });

  it('other origins get no grant, and a direct POST from one is refused without issuing a token', async () => {
    for (const origin of EVIL) {
      const pre = await preflight('/v1/challenges', origin);
      assert.equal(pre.headers.get('access-control-allow-origin'), null, origin);
      const post = await t.request('POST', '/v1/challenges', {}, { key: null, headers: { origin } });
      assert.equal(post.status, 403, `${origin}: ${post.text}`);
      assert.equal(post.body.error.code, 'forbidden');
      assert.equal(post.body.formToken, undefined);
      assert.equal(post.headers.get('access-control-allow-origin'), null);
    }
  });

  it(
    'the server-to-server and admin APIs never grant CORS, not even to the allowed origin',
    async () => {
      for (const path of ['/v1/verifications', '/v1/verifications/check', '/v1/admin/policy', '/v1/admin/lists', '/metrics', '/dashboard/api/login']) {
        for (const origin of [ALLOWED, ...EVIL]) {
          const pre = await preflight(path, origin, path.includes('admin/policy') ? 'PUT' : 'POST');
          assert.equal(pre.headers.get('access-control-allow-origin'), null, `${path} preflight from ${origin}`);
          assert.ok(pre.status >= 400, `${path} preflight from ${origin}: ${pre.status}`);
        }
      }
      const send = await t.request('POST', '/v1/verifications', { to: '+6281234567890' }, { headers: { origin: ALLOWED } });
      assert.equal(send.headers.get('access-control-allow-origin'), null);
    },
  );

  it('answers to non-browser APIs are never readable cross-origin, and preflights never allow credentials', async () => {
    for (const path of ['/v1/verifications', '/v1/admin/policy', '/dashboard/api/login']) {
      const pre = await preflight(path, ALLOWED);
      assert.equal(pre.headers.get('access-control-allow-credentials'), null, path);
    }
    const send = await t.request('POST', '/v1/verifications', { to: '+6281234567890' }, { headers: { origin: ALLOWED } });
    assert.equal(send.headers.get('access-control-allow-origin'), null);
    const admin = await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey, headers: { origin: ALLOWED } });
    assert.equal(admin.headers.get('access-control-allow-origin'), null);
  });

  it('the dashboard refuses sign-in from another origin', async () => {
    const r = await t.request('POST', '/dashboard/api/login', { key: t.adminKey }, { key: null, headers: { origin: 'https://evil.example' } });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.headers.get('set-cookie'), null);
  });

  it("a page of this server's own origin gets its challenge although cors.origins lists only another", async () => {
    // Browsers send Origin on same-origin POSTs: the demo page and the widget on this host must keep working.
    const own = await t.request('POST', '/v1/challenges', undefined, { key: null, headers: { origin: t.url } });
    assert.equal(own.status, 201, own.text);
    assert.equal(typeof own.body.formToken, 'string');
    // Not the same origin by another scheme or port.
    const { hostname, port } = new URL(t.url);
    for (const origin of [`https://${hostname}:${port}`, `http://${hostname}:${Number(port) + 1}`]) {
      assert.equal((await t.request('POST', '/v1/challenges', undefined, { key: null, headers: { origin } })).status, 403, origin);
    }
  });
});

describe('same-origin checks behind a TLS-terminating proxy', () => {
  it('take the scheme from the proxy declaration: sign-in works without X-Forwarded-Proto, with a Secure cookie', async () => {
    const t = await startTestApp({ config: { web: { dashboard: true }, server: { behindTlsProxy: true, trustedProxies: ['127.0.0.1'] } } });
    try {
      const origin = `https://${new URL(t.url).host}`;
      for (const xfp of [null, 'https']) {
        const r = await t.request('POST', '/dashboard/api/login', { key: t.adminKey }, { key: null, headers: { origin, ...(xfp ? { 'x-forwarded-proto': xfp } : {}) } });
        assert.equal(r.status, 200, `X-Forwarded-Proto ${xfp}: ${r.text}`);
        assert.match(r.headers.get('set-cookie') ?? '', /; Secure$/);
      }
      // A proxy that says the client spoke plain HTTP: the https origin is not this request's.
      const plain = await t.request('POST', '/dashboard/api/login', { key: t.adminKey }, { key: null, headers: { origin, 'x-forwarded-proto': 'http' } });
      assert.equal(plain.status, 403, plain.text);
    } finally {
      await t.close();
    }
  });
});
