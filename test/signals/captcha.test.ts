import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Value } from 'typebox/value';
import { CAPTCHA_VERIFY_URLS, CaptchaConfigSchema, createCaptchaVerifier, type CaptchaConfig } from '../../src/signals/captcha.ts';

/**
 * A fake siteverify endpoint on loopback. Each test installs a handler; every request is recorded with
 * its parsed form body so the tests can check what was sent.
 */
interface Seen {
  method: string;
  path: string;
  contentType: string;
  form: Record<string, string>;
}
type Handler = (seen: Seen, res: ServerResponse) => void;

let handler: Handler = (_s, res) => res.end('{}');
const seen: Seen[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const s: Seen = {
      method: req.method ?? '',
      path: req.url ?? '',
      contentType: req.headers['content-type'] ?? '',
      form: Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))),
    };
    seen.push(s);
    handler(s, res);
  });
});
let base = '';

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function json(body: unknown, status = 200): Handler {
  return (_s, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
}

function verifier(cfg: Partial<CaptchaConfig> & Pick<CaptchaConfig, 'provider'>) {
  return createCaptchaVerifier({ secret: 'test-secret', verifyUrl: `${base}/siteverify`, ...cfg });
}

test('reCAPTCHA v3: success above minScore with the expected action passes; form fields as documented', async () => {
  seen.length = 0;
  handler = json({ success: true, score: 0.9, action: 'otp', hostname: 'shop.example', challenge_ts: '2025-01-01T00:00:00Z' });
  const v = verifier({ provider: 'recaptcha', minScore: 0.5, expectedAction: 'otp', expectedHostname: 'SHOP.example' });
  const r = await v.verify('tok-123', '203.0.113.7');
  assert.deepEqual(r, { outcome: 'passed', score: 0.9 });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.method, 'POST');
  assert.equal(seen[0]?.path, '/siteverify');
  assert.equal(seen[0]?.contentType, 'application/x-www-form-urlencoded');
  assert.deepEqual(seen[0]?.form, { secret: 'test-secret', response: 'tok-123', remoteip: '203.0.113.7' });
});

test('reCAPTCHA v3: low score fails; wrong action fails', async () => {
  handler = json({ success: true, score: 0.3, action: 'otp', hostname: 'shop.example' });
  const low = await verifier({ provider: 'recaptcha', minScore: 0.5 }).verify('tok');
  assert.deepEqual(low, { outcome: 'failed', detail: 'low_score', score: 0.3 });
  // Same answer passes when the bar is lower: the score really is what decides.
  assert.equal((await verifier({ provider: 'recaptcha', minScore: 0.2 }).verify('tok')).outcome, 'passed');

  handler = json({ success: true, score: 0.9, action: 'login' });
  const action = await verifier({ provider: 'recaptcha', minScore: 0.5, expectedAction: 'otp' }).verify('tok');
  assert.equal(action.outcome, 'failed');
  assert.equal(action.detail, 'wrong_action');
});

test('reCAPTCHA v2: no score, success passes; provider failure carries the error codes', async () => {
  handler = json({ success: true, hostname: 'shop.example' });
  assert.deepEqual(await verifier({ provider: 'recaptcha', minScore: 0.5 }).verify('tok'), { outcome: 'passed' });
  handler = json({ success: false, 'error-codes': ['invalid-input-response'] });
  assert.deepEqual(await verifier({ provider: 'recaptcha' }).verify('tok'), { outcome: 'failed', detail: 'invalid-input-response' });
  handler = json({ success: false });
  assert.deepEqual(await verifier({ provider: 'recaptcha' }).verify('tok'), { outcome: 'failed', detail: 'not_success' });
});

test('our own misconfiguration (bad secret) is an error, not a visitor failure', async () => {
  handler = json({ success: false, 'error-codes': ['invalid-input-secret'] });
  assert.deepEqual(await verifier({ provider: 'recaptcha' }).verify('tok'), { outcome: 'error', detail: 'invalid-input-secret' });
});

test('hCaptcha: success on the expected hostname passes; wrong hostname fails; remoteip omitted when unknown', async () => {
  seen.length = 0;
  handler = json({ success: true, hostname: 'shop.example', challenge_ts: '2025-01-01T00:00:00Z' });
  assert.deepEqual(await verifier({ provider: 'hcaptcha', expectedHostname: 'shop.example' }).verify('h-tok'), { outcome: 'passed' });
  assert.deepEqual(seen[0]?.form, { secret: 'test-secret', response: 'h-tok' });

  handler = json({ success: true, hostname: 'evil.example' });
  assert.deepEqual(await verifier({ provider: 'hcaptcha', expectedHostname: 'shop.example' }).verify('h-tok'), {
    outcome: 'failed',
    detail: 'wrong_hostname',
  });
  handler = json({ success: true });
  assert.equal((await verifier({ provider: 'hcaptcha', expectedHostname: 'shop.example' }).verify('h-tok')).detail, 'wrong_hostname');
});

test('hCaptcha Enterprise: the score is a risk score, so maxRiskScore applies and minScore does not', async () => {
  handler = json({ success: true, hostname: 'shop.example', score: 0.8 });
  assert.deepEqual(await verifier({ provider: 'hcaptcha', maxRiskScore: 0.5 }).verify('h'), { outcome: 'failed', detail: 'high_risk_score', score: 0.8 });
  assert.deepEqual(await verifier({ provider: 'hcaptcha', minScore: 0.9 }).verify('h'), { outcome: 'passed', score: 0.8 });
  handler = json({ success: true, hostname: 'shop.example', score: 0.1 });
  assert.deepEqual(await verifier({ provider: 'hcaptcha', maxRiskScore: 0.5 }).verify('h'), { outcome: 'passed', score: 0.1 });
});

test('Turnstile: success passes; duplicate token fails; hostname and action checked', async () => {
  seen.length = 0;
  handler = json({ success: true, hostname: 'shop.example', action: 'otp', 'error-codes': [] });
  const ok = await verifier({ provider: 'turnstile', expectedHostname: 'shop.example', expectedAction: 'otp' }).verify('cf-tok', '2001:db8::1');
  assert.deepEqual(ok, { outcome: 'passed' });
  assert.deepEqual(seen[0]?.form, { secret: 'test-secret', response: 'cf-tok', remoteip: '2001:db8::1' });

  handler = json({ success: false, 'error-codes': ['timeout-or-duplicate'] });
  assert.deepEqual(await verifier({ provider: 'turnstile' }).verify('cf-tok'), { outcome: 'failed', detail: 'timeout-or-duplicate' });

  handler = json({ success: true, hostname: 'other.example', action: 'otp' });
  assert.equal((await verifier({ provider: 'turnstile', expectedHostname: 'shop.example' }).verify('cf-tok')).detail, 'wrong_hostname');
});

test("several expected hostnames (a site and its app's page), and an Android key's package name, kept apart", async () => {
  const hosts = ['shop.example', 'm.shop.example'];
  const cfg = { provider: 'recaptcha' as const, expectedHostname: hosts, expectedPackageName: 'com.example.shop' };
  handler = json({ success: true, hostname: 'M.shop.example' });
  assert.deepEqual(await verifier(cfg).verify('t'), { outcome: 'passed' });
  handler = json({ success: true, apk_package_name: 'com.example.shop' });
  assert.deepEqual(await verifier(cfg).verify('t'), { outcome: 'passed' });
  handler = json({ success: true, apk_package_name: 'com.evil.app' });
  assert.equal((await verifier(cfg).verify('t')).detail, 'wrong_package_name');
  handler = json({ success: true, hostname: 'evil.example' });
  assert.equal((await verifier(cfg).verify('t')).detail, 'wrong_hostname');
  // A web token from a site named like the package does not pass as the app's, nor an app's token as a site's.
  handler = json({ success: true, hostname: 'com.example.shop' });
  assert.equal((await verifier(cfg).verify('t')).detail, 'wrong_hostname');
  handler = json({ success: true, apk_package_name: 'shop.example' });
  assert.equal((await verifier(cfg).verify('t')).detail, 'wrong_package_name');
  // Only host names configured: an app's token has no expected package.
  handler = json({ success: true, apk_package_name: 'com.example.shop' });
  assert.equal((await verifier({ provider: 'recaptcha', expectedHostname: hosts }).verify('t')).detail, 'wrong_package_name');
});

test('timeout, HTTP errors, bad JSON, redirects and refused connections are errors', async () => {
  // Never answers: the verifier's own timeout must end the wait.
  handler = () => {};
  assert.deepEqual(await verifier({ provider: 'turnstile', timeoutMs: 150 }).verify('tok'), { outcome: 'error', detail: 'timeout' });

  handler = json({ success: true }, 500);
  assert.deepEqual(await verifier({ provider: 'recaptcha' }).verify('tok'), { outcome: 'error', detail: 'http_500' });

  handler = (_s, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('<html>not json');
  };
  assert.deepEqual(await verifier({ provider: 'hcaptcha' }).verify('tok'), { outcome: 'error', detail: 'bad_response' });

  handler = json(null);
  assert.deepEqual(await verifier({ provider: 'hcaptcha' }).verify('tok'), { outcome: 'error', detail: 'bad_response' });

  handler = (_s, res) => {
    res.writeHead(302, { location: `${base}/elsewhere` });
    res.end();
  };
  assert.equal((await verifier({ provider: 'recaptcha' }).verify('tok')).outcome, 'error');

  // A port nobody listens on (bind, read the port, close).
  const tmp = createServer();
  await new Promise<void>((resolve) => tmp.listen(0, '127.0.0.1', resolve));
  const deadPort = (tmp.address() as AddressInfo).port;
  await new Promise<void>((resolve) => tmp.close(() => resolve()));
  const dead = createCaptchaVerifier({ provider: 'recaptcha', secret: 's', verifyUrl: `http://127.0.0.1:${deadPort}/` });
  assert.deepEqual(await dead.verify('tok'), { outcome: 'error', detail: 'network' });
});

test('no token → missing, and nothing is sent', async () => {
  seen.length = 0;
  handler = json({ success: true });
  const v = verifier({ provider: 'turnstile' });
  assert.deepEqual(await v.verify(''), { outcome: 'missing' });
  assert.deepEqual(await v.verify(undefined), { outcome: 'missing' });
  assert.deepEqual(await v.verify('   '), { outcome: 'missing' });
  assert.deepEqual(await v.verify('x'.repeat(5000)), { outcome: 'failed', detail: 'token_too_long' });
  assert.equal(seen.length, 0);
});

test('defaults point at the official endpoints', () => {
  assert.equal(CAPTCHA_VERIFY_URLS.recaptcha, 'https://www.google.com/recaptcha/api/siteverify');
  assert.equal(CAPTCHA_VERIFY_URLS.hcaptcha, 'https://api.hcaptcha.com/siteverify');
  assert.equal(CAPTCHA_VERIFY_URLS.turnstile, 'https://challenges.cloudflare.com/turnstile/v0/siteverify');
  assert.equal(createCaptchaVerifier({ provider: 'hcaptcha', secret: 's' }).provider, 'hcaptcha');
});

test('CaptchaConfigSchema accepts valid configs and rejects junk', () => {
  assert.equal(Value.Check(CaptchaConfigSchema, { provider: 'turnstile', secret: 's' }), true);
  assert.equal(
    Value.Check(CaptchaConfigSchema, {
      provider: 'recaptcha',
      secret: 's',
      verifyUrl: 'http://127.0.0.1:9/x',
      minScore: 0.5,
      expectedHostname: 'shop.example',
      expectedAction: 'otp',
      timeoutMs: 3000,
    }),
    true,
  );
  assert.equal(Value.Check(CaptchaConfigSchema, { provider: 'friendlycaptcha', secret: 's' }), false);
  assert.equal(Value.Check(CaptchaConfigSchema, { provider: 'turnstile', secret: '' }), false);
  assert.equal(Value.Check(CaptchaConfigSchema, { provider: 'turnstile', secret: 's', extra: 1 }), false);
  assert.equal(Value.Check(CaptchaConfigSchema, { provider: 'turnstile', secret: 's', minScore: 2 }), false);
  assert.equal(Value.Check(CaptchaConfigSchema, { provider: 'turnstile', secret: 's', verifyUrl: 'ftp://x' }), false);
});
