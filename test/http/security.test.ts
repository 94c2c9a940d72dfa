/**
 * The secure-by-default layer of the HTTP server: TLS served directly and reloaded without a restart,
 * HTTPS-only admin in production, the separate admin port, security headers, overload and slow-client
 * defences, strict JSON, and what `config check` prints.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { adminAddress } from '../../src/http/admin-surface.ts';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/http/json-body.ts';
import { loadConfig } from '../../src/config/load.ts';
import { buildContext } from '../../src/service/context.ts';
import { buildServer } from '../../src/http/server.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { redactConfig, exposure } from '../../src/cli/commands/config.ts';
import { client, freshNumber, httpsCall, ipFor, rawSocket, sleep, within } from '../attacks/support.ts';

function makeCert(dir: string, name: string, cn: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

/** buildServer with these server settings (and an in-memory store), for configurations that must not start. */
async function buildWith(server: Record<string, unknown>): Promise<void> {
  const cfg = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { server: server as never, logLevel: 'silent', secrets: { codeSecret: 'test-code-secret-0123456789abcdefghijkl', previousCodeSecrets: [] } } });
  const ctx = await buildContext({ ...cfg, dataDir: mkdtempSync(join(tmpdir(), 'otps-cfgfail-')) }, { store: new MemoryStore() });
  try {
    const app = await buildServer(ctx);
    await app.close();
  } finally {
    await ctx.close();
    rmSync(ctx.config.dataDir, { recursive: true, force: true });
  }
}

describe('TLS served directly', () => {
  let dir: string;
  let t: TestApp;
  let first: { cert: string; key: string };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'otps-tls-'));
    first = makeCert(dir, 'first', 'otp-first');
    // The files the server watches; renewals are renamed over them, as certbot and secret mounts do.
    writeFileSync(join(dir, 'live.crt'), readFileSync(first.cert));
    writeFileSync(join(dir, 'live.key'), readFileSync(first.key));
    t = await startTestApp({ config: { env: 'production', server: { tls: { certFile: join(dir, 'live.crt'), keyFile: join(dir, 'live.key'), reloadIntervalMs: 100 } } } });
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with HSTS, and the admin API over it in production', async () => {
    assert.match(t.url, /^https:/);
    const ca = readFileSync(first.cert);
    const res = await httpsCall(`${t.url}/v1/admin/policy`, { ca, headers: { authorization: `Bearer ${t.adminKey}` } });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.cert?.subject.CN, 'otp-first');
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
  });

  it('picks up a renewed certificate without a restart, and keeps the old one while the files are a bad pair', async () => {
    const renewed = makeCert(dir, 'renewed', 'otp-renewed');
    // A half-finished renewal: new certificate, old key. The server must keep serving the old pair.
    writeFileSync(join(dir, 'tmp.crt'), readFileSync(renewed.cert));
    renameSync(join(dir, 'tmp.crt'), join(dir, 'live.crt'));
    await sleep(600);
    const during = await httpsCall(`${t.url}/healthz`, { ca: readFileSync(first.cert) });
    assert.equal(during.status, 200);
    assert.equal(during.cert?.subject.CN, 'otp-first', 'a mismatched pair is not loaded');

    writeFileSync(join(dir, 'tmp.key'), readFileSync(renewed.key));
    renameSync(join(dir, 'tmp.key'), join(dir, 'live.key'));
    const ca = readFileSync(renewed.cert);
    const seen = await within(
      (async () => {
        for (;;) {
          const r = await httpsCall(`${t.url}/healthz`, { ca }).catch(() => null);
          if (r?.cert?.subject.CN === 'otp-renewed') return r;
          await sleep(100);
        }
      })(),
      10_000,
      'renewed certificate served',
    );
    assert.equal(seen.status, 200);
  });

  it('refuses to start with unreadable or mismatched TLS files, naming the key', async () => {
    const other = makeCert(dir, 'other', 'otp-other');
    await assert.rejects(buildWith({ tls: { certFile: join(dir, 'missing.crt'), keyFile: first.key } }), /server\.tls\.certFile/);
    await assert.rejects(buildWith({ tls: { certFile: first.cert, keyFile: other.key } }), /server\.tls: .* not a usable certificate and key/);
  });
});

describe('admin over plain HTTP in production', () => {
  it('is refused unless a TLS-terminating proxy named in the config forwarded it', async () => {
    const plain = await startTestApp({ config: { env: 'production' } });
    try {
      const admin = await plain.request('GET', '/v1/admin/policy', undefined, { key: plain.adminKey });
      assert.equal(admin.status, 403);
      assert.equal(admin.body.error.code, 'forbidden');
      assert.match(admin.body.error.message, /only served over HTTPS/);
      // Refused before authentication: a key sent in clear text is not even looked at.
      const noKey = await plain.request('GET', '/v1/admin/policy', undefined, { key: null });
      assert.equal(noKey.status, 403);
      // The verification API (server to server, often on a private network) keeps working.
      const send = await plain.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(1)) });
      assert.equal(send.status, 201, send.text);
    } finally {
      await plain.close();
    }

    const proxied = await startTestApp({ config: { env: 'production', server: { behindTlsProxy: true, trustedProxies: ['127.0.0.1/32'] } } });
    try {
      assert.equal((await proxied.request('GET', '/v1/admin/policy', undefined, { key: proxied.adminKey })).status, 200);
      const viaHttps = await proxied.request('GET', '/v1/admin/policy', undefined, { key: proxied.adminKey, headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(viaHttps.status, 200);
      const viaHttp = await proxied.request('GET', '/v1/admin/policy', undefined, { key: proxied.adminKey, headers: { 'x-forwarded-proto': 'http' } });
      assert.equal(viaHttp.status, 403, 'the proxy says the client spoke plain HTTP');
    } finally {
      await proxied.close();
    }

    const untrusted = await startTestApp({ config: { env: 'production', server: { behindTlsProxy: true, trustedProxies: ['10.0.0.0/8'] } } });
    try {
      const direct = await untrusted.request('GET', '/v1/admin/policy', undefined, { key: untrusted.adminKey, headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(direct.status, 403, 'a client that bypasses the proxy cannot claim HTTPS');
    } finally {
      await untrusted.close();
    }
  });

  it('"behind a TLS proxy" without naming the proxy is a configuration error', async () => {
    await assert.rejects(buildWith({ behindTlsProxy: true }), /server\.behindTlsProxy.*trustedProxies/);
  });
});

describe('separate admin port', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ config: { server: { adminPort: 0 } } });
  });
  after(async () => t.close());

  it('serves admin routes only on the admin port, and public routes only on the public one', async () => {
    const admin = adminAddress(t.app);
    assert.ok(admin && admin !== t.url, `admin listener ${admin}`);
    const auth = { authorization: `Bearer ${t.adminKey}` };
    const onAdmin = await fetch(`${admin}/v1/admin/policy`, { headers: auth });
    assert.equal(onAdmin.status, 200);
    const onPublic = await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey });
    assert.equal(onPublic.status, 404);
    assert.equal(onPublic.body.error.code, 'not_found', 'the public port does not reveal that the route exists');
    const encoded = await t.request('GET', '/v1/%61dmin/policy', undefined, { key: t.adminKey });
    assert.notEqual(encoded.status, 200);

    const sendOnAdmin = await fetch(`${admin}/v1/verifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.verifyKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: freshNumber(), client: client(ipFor(2)) }),
    });
    assert.equal(sendOnAdmin.status, 404);
    assert.equal((await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(3)) })).status, 201);
    for (const base of [admin, t.url]) assert.equal((await fetch(`${base}/healthz`)).status, 200, `healthz on ${base}`);

    // A wrong method answers 405 with Allow, but only for routes the port serves: another method on the
    // other port's route is a 404 too, or the 405 would reveal it.
    const wrongOnPublic = await t.request('DELETE', '/v1/admin/policy', undefined, { key: t.adminKey });
    assert.equal(wrongOnPublic.status, 404, wrongOnPublic.text);
    assert.equal(wrongOnPublic.headers.get('allow'), null);
    const wrongOnAdmin = await fetch(`${admin}/v1/verifications`, { method: 'PUT', headers: { authorization: `Bearer ${t.verifyKey}` } });
    assert.equal(wrongOnAdmin.status, 404);
    const deleteOnAdmin = await fetch(`${admin}/v1/admin/policy`, { method: 'DELETE', headers: auth });
    assert.equal(deleteOnAdmin.status, 405);
    assert.equal(deleteOnAdmin.headers.get('allow'), 'GET, HEAD, PUT');
    const putOnPublic = await t.request('PUT', '/v1/verifications');
    assert.equal(putOnPublic.status, 405);
    assert.equal(putOnPublic.headers.get('allow'), 'POST');
    assert.equal(putOnPublic.body.error.code, 'method_not_allowed');
    const healthOnAdmin = await fetch(`${admin}/healthz`, { method: 'POST' });
    assert.equal(healthOnAdmin.status, 405, 'served on both ports');
  });

  it("each port's OpenAPI document lists that port's routes only (the public one was listing the admin surface)", async () => {
    const admin = adminAddress(t.app)!;
    const publicPaths = Object.keys((await t.request('GET', '/openapi.json', undefined, { key: null })).body.paths);
    const adminPaths = Object.keys((await (await fetch(`${admin}/openapi.json`)).json()).paths);
    const adminish = (p: string) => /^\/(v1\/admin|dashboard|metrics)(\/|$)/.test(p);
    assert.ok(publicPaths.includes('/v1/verifications') && publicPaths.includes('/healthz'), publicPaths.join(' '));
    assert.deepEqual(publicPaths.filter(adminish), [], 'no admin path on the public port');
    assert.ok(adminPaths.includes('/v1/admin/policy') && adminPaths.includes('/v1/admin/events') && adminPaths.includes('/healthz'), adminPaths.join(' '));
    assert.ok(!adminPaths.includes('/v1/verifications'), 'the admin port does not list the public routes');
  });
});

describe('headers, overload, slow clients and bodies', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ config: { server: { maxInFlight: 3, requestTimeoutMs: 1000 } } });
  });
  after(async () => t.close());

  it('every HTML response carries HSTS, CSP, frame and referrer protections; JSON responses are not cached', async () => {
    const page = await t.request('GET', '/demo', undefined, { key: null });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    for (const h of ['strict-transport-security', 'content-security-policy', 'x-frame-options', 'referrer-policy', 'x-content-type-options']) {
      assert.ok(page.headers.get(h), `${h} on HTML`);
    }
    assert.match(page.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
    const api = await t.request('GET', '/healthz', undefined, { key: null });
    assert.equal(api.headers.get('cache-control'), 'no-store');
    assert.equal(api.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(api.headers.get('x-powered-by'), null);
  });

  it('widget scripts are cached briefly, revalidated by ETag, and readable cross-origin for Subresource Integrity', async () => {
    for (const path of ['/widget.js', '/widget-worker.js', '/fp.js']) {
      const first = await t.request('GET', path, undefined, { key: null });
      assert.equal(first.status, 200, path);
      assert.equal(first.headers.get('cache-control'), 'public, max-age=300, must-revalidate', path);
      assert.equal(first.headers.get('access-control-allow-origin'), '*', path);
      assert.equal(first.headers.get('access-control-allow-credentials'), null, path);
      const etag = first.headers.get('etag')!;
      assert.match(etag, /^"/, path);
      // Revalidation: the exact tag, a weak one, a list, and `*` all answer 304 with the tag and the cache policy.
      for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
        const again = await t.request('GET', path, undefined, { key: null, headers: { 'if-none-match': inm } });
        assert.equal(again.status, 304, `${path} If-None-Match ${inm}`);
        assert.equal(again.headers.get('etag'), etag);
        assert.equal(again.headers.get('cache-control'), 'public, max-age=300, must-revalidate');
        assert.equal(again.text, '');
      }
      assert.equal((await t.request('GET', path, undefined, { key: null, headers: { 'if-none-match': '"other"' } })).status, 200);
    }
    // The demo page is revalidated every time and not readable cross-origin.
    const page = await t.request('GET', '/demo', undefined, { key: null });
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.equal(page.headers.get('access-control-allow-origin'), null);
  });

  it('past server.maxInFlight answers 503 with Retry-After, never crashes, and recovers', async () => {
    // A slow SMS provider keeps requests in flight: it answers once the others have been answered (at most 10 s),
    // so that none of the admitted ones frees its slot early (a fixed provider delay raced a loaded machine).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fallback = setTimeout(() => release(), 10_000);
    t.receiver.setHandler(async () => {
      await gate;
      return { status: 200, json: { ok: true } };
    });
    try {
      let answered = 0;
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(100 + i)) }).then((r) => {
            if (++answered >= 9) release();
            return r;
          }),
        ),
      );
      const statuses = results.map((r) => r.status);
      assert.ok(statuses.every((s) => s === 201 || s === 503), statuses.join(','));
      assert.ok(statuses.filter((s) => s === 201).length >= 1 && statuses.filter((s) => s === 201).length <= 3, statuses.join(','));
      const busy = results.find((r) => r.status === 503)!;
      assert.equal(busy.body.error.code, 'unavailable');
      assert.ok(Number(busy.headers.get('retry-after')) >= 1);
    } finally {
      clearTimeout(fallback);
      release();
      t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
    }
    assert.equal((await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(200)) })).status, 201, 'recovered');
  });

  it('clients that announce a body and send it slowly do not take the in-flight slots (no key needed)', async () => {
    // Twice server.maxInFlight (3) connections, each with a 1,000-byte body of which 1 byte arrives.
    const slow = Array.from({ length: 6 }, (_, i) => {
      const c = rawSocket(t.url);
      const path = i % 2 ? '/v1/challenges' : '/dashboard/api/login';
      c.socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
      return c;
    });
    try {
      await sleep(200);
      const r = await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(ipFor(450)) });
      assert.equal(r.status, 201, r.text);
    } finally {
      for (const c of slow) c.socket.destroy();
    }
  });

  it('a send slower than server.requestTimeoutMs (a slow SMS provider) still gets its answer', async () => {
    // requestTimeoutMs bounds how long the request takes to arrive, not how long the service works on it:
    // the code goes out, so cutting the connection would make the client send a second one.
    t.receiver.setHandler(() => ({ status: 200, json: { ok: true }, delayMs: 1600 }));
    try {
      const to = freshNumber();
      const r = await t.request('POST', '/v1/verifications', { to, client: client(ipFor(400)) });
      assert.equal(r.status, 201, r.text);
      assert.ok(t.lastCode(to));
    } finally {
      t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
    }
  });

  it('closes a connection that sends nothing', async () => {
    const silent = rawSocket(t.url);
    await within(silent.closed, 8000, 'silent connection closed');
  });

  it('closes connections that send headers or body too slowly (slowloris)', async () => {
    const headers = rawSocket(t.url);
    headers.socket.write('POST /v1/verifications HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => headers.socket.write('X-a: b\r\n'), 200);
    try {
      await within(headers.closed, 8000, 'slow-header connection closed');
    } finally {
      clearInterval(drip);
    }

    const body = rawSocket(t.url);
    body.socket.write(`POST /v1/verifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${t.verifyKey}\r\nContent-Length: 200\r\n\r\n{`);
    const drip2 = setInterval(() => body.socket.write(' '), 200);
    try {
      await within(body.closed, 8000, 'slow-body connection closed');
    } finally {
      clearInterval(drip2);
    }
    assert.doesNotMatch(body.received(), /HTTP\/1\.1 (2\d\d|500)/);
  });

  it('accepts JSON in UTF-8 only, and refuses deep nesting before parsing', async () => {
    const to = freshNumber();
    const latin1 = await t.request('POST', '/v1/verifications', JSON.stringify({ to }), { headers: { 'content-type': 'application/json; charset=iso-8859-1' } });
    assert.equal(latin1.status, 415);
    const bad = await fetch(`${t.url}/v1/verifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.verifyKey}`, 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"to":"'), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('"}')]),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /UTF-8/);
    const deep = `{"to":"${to}","client":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`;
    const r = await t.request('POST', '/v1/verifications', deep);
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /nests deeper/);
    const utf8 = await t.request('POST', '/v1/verifications', JSON.stringify({ to, client: client(ipFor(300)) }), { headers: { 'content-type': 'application/json; charset=UTF-8' } });
    assert.equal(utf8.status, 201, utf8.text);
  });

  it('the nesting scan ignores brackets inside strings and escapes', () => {
    assert.equal(nestsDeeperThan('{"a":"[[[[[[\\"[[["}', 2), false);
    assert.equal(nestsDeeperThan('[[[', 2), true);
    assert.equal(nestsDeeperThan('[[]][[]]', 2), false);
  });
});

describe('config check keeps credentials out', () => {
  it('config check prints no credential, in either format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'otps-cfg-'));
    const secrets = {
      code: 'code-secret-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      prev: 'previous-secret-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB',
      hook: 'webhook-secret-CCCCCCCCCCCC',
      twilio: 'twilio-auth-token-DDDDDDDDDD',
      captcha: 'captcha-secret-EEEEEEEEEE',
      redis: 'redis-password-FFFFFFFF',
      // In URLs: a gateway's query token, a capability URL's path (a privacy review found both printed).
      urlToken: 'url-access-token-GGGGGGGG',
      slackPath: 'SLACKPATHSECRET-HHHHHHHH',
      alertSecret: 'alert-sink-secret-IIIIIIII',
    };
    const file = join(dir, 'otp-shield.json');
    writeFileSync(
      file,
      JSON.stringify({
        dataDir: dir,
        secrets: { codeSecret: secrets.code, previousCodeSecrets: [secrets.prev] },
        store: { kind: 'redis', redisUrl: `redis://default:${secrets.redis}@127.0.0.1:6379/0` },
        senders: [
          { type: 'webhook', url: `https://hooks.example/sms?region=eu&access_token=${secrets.urlToken}`, secret: secrets.hook },
          { type: 'twilio', accountSid: 'AC0123456789abcdef0123456789abcdef', authToken: secrets.twilio, from: '+15005550006' },
        ],
        captcha: { provider: 'turnstile', secret: secrets.captcha },
        monitoring: { alerts: { webhooks: [{ url: `https://hooks.slack.com/services/T000/B000/${secrets.slackPath}`, secret: secrets.alertSecret }] } },
      }),
    );
    try {
      const cfg = loadConfig({ file, env: { NODE_ENV: 'production' } });
      assert.match(JSON.stringify(redactConfig(cfg)), /hooks\.example\/sms\?region=eu&access_token=\[redacted\]/, 'other query parameters stay readable');
      const printed = [JSON.stringify(redactConfig(cfg)), exposure(cfg).join('\n')];
      for (const args of [['config', 'check'], ['config', 'check', '--json']]) {
        const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, NODE_ENV: 'production', OTPSHIELD_CONFIG: file }, encoding: 'utf8' });
        assert.equal(run.status, 0, run.stderr);
        printed.push(run.stdout + run.stderr);
      }
      for (const out of printed) for (const s of Object.values(secrets)) assert.ok(!out.includes(s), `${s} printed`);
      assert.match(printed[2]!, /captcha provider:\s+turnstile/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
