import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { solveChallenge } from 'altcha-lib/v1';
import { Value } from 'typebox/value';
import { createCaptchaVerifier } from '../../src/signals/captcha.ts';
import type { OnceStore } from '../../src/signals/form-token.ts';
import type { PowChallenge } from '../../src/signals/pow.ts';
import { type ClientEvidence, ClientEvidenceSchema, issueChallenge, verifyClientEvidence } from '../../src/signals/evidence.ts';

function onceStore(): OnceStore {
  const keys = new Map<string, number>();
  return {
    async useOnce(key, ttlMs, now) {
      const until = keys.get(key);
      if (until !== undefined && until > now) return false;
      keys.set(key, now + ttlMs);
      return true;
    },
  };
}

const SECRETS = { current: 'evidence-test-secret-current', previous: ['evidence-test-secret-old'] };
const T0 = 1_750_000_000_000;
const IP = '198.51.100.23';
const UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15';
const DIFFICULTY = 1_500;

async function solvePow(c: PowChallenge): Promise<string> {
  const s = await solveChallenge(c.challenge, c.salt, c.algorithm, c.maxnumber).promise;
  assert.ok(s);
  return Buffer.from(JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number: s.number, salt: c.salt, signature: c.signature })).toString('base64');
}

/** What the widget would produce for a person who took `elapsedMs` to fill the form. */
async function browserEvidence(now: number, elapsedMs: number): Promise<ClientEvidence> {
  const ch = await issueChallenge({ secrets: SECRETS, ip: IP, userAgent: UA, now, difficulty: DIFFICULTY });
  return {
    ip: IP,
    userAgent: UA,
    deviceId: '3f2a9c0d1e4b5a6978877665544332211',
    formToken: ch.formToken,
    pow: await solvePow(ch.pow),
    honeypot: '',
    elapsedMs,
    automation: { webdriver: false, headless: false, flags: [] },
    acceptLanguage: 'id-ID,id,en-US',
  };
}

// Fake Turnstile on loopback for the CAPTCHA part.
let captchaAnswer: unknown = { success: true, hostname: 'shop.example' };
const captchaServer = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(captchaAnswer));
  });
});
let captchaUrl = '';
before(async () => {
  await new Promise<void>((r) => captchaServer.listen(0, '127.0.0.1', r));
  captchaUrl = `http://127.0.0.1:${(captchaServer.address() as AddressInfo).port}/siteverify`;
});
after(async () => {
  captchaServer.closeAllConnections();
  await new Promise<void>((r) => captchaServer.close(() => r()));
});

test('issueChallenge: form token and a PoW challenge bound to it', async () => {
  const ch = await issueChallenge({ secrets: SECRETS, ip: IP, userAgent: UA, now: T0 });
  assert.equal(ch.issuedAt, T0);
  assert.equal(ch.expiresAt, T0 + 600_000);
  assert.equal(ch.powDifficulty, 50_000, 'normal level by default');
  assert.equal(ch.pow.maxnumber, 50_000);
  assert.ok(ch.pow.salt.includes(`ft=${ch.jti}`), ch.pow.salt);
  assert.ok(ch.formToken.startsWith('v1.'));
  const elevated = await issueChallenge({ secrets: SECRETS, ip: IP, userAgent: UA, now: T0, difficulty: 'elevated' });
  assert.equal(elevated.powDifficulty, 250_000);
});

test('a real browser submission verifies; replaying it reports reused', async () => {
  const store = onceStore();
  const input = await browserEvidence(T0, 9_000);
  const ctx = { secrets: SECRETS, store, now: T0 + 12_000, ip: IP, userAgent: UA, consume: true };
  const v = await verifyClientEvidence(input, ctx);
  assert.deepEqual(v, {
    formToken: 'valid',
    pow: 'solved',
    captcha: 'missing',
    honeypot: false,
    elapsedMs: 9_000,
    headless: false,
    scriptUserAgent: false,
    deviceId: '3f2a9c0d1e4b5a6978877665544332211',
    acceptLanguage: 'id-ID,id,en-US',
    powLevel: 'normal',
    details: {},
  });
  const replay = await verifyClientEvidence(input, { ...ctx, now: T0 + 13_000 });
  assert.equal(replay.formToken, 'reused');
  assert.equal(replay.pow, 'reused');
});

test('consume: false leaves tokens usable', async () => {
  const store = onceStore();
  const input = await browserEvidence(T0, 5_000);
  const base = { secrets: SECRETS, store, now: T0 + 6_000, consume: false };
  assert.equal((await verifyClientEvidence(input, base)).formToken, 'valid');
  const real = await verifyClientEvidence(input, { ...base, consume: true });
  assert.equal(real.formToken, 'valid');
  assert.equal(real.pow, 'solved');
});

test('ip and userAgent default to the client block; mismatches keep the detail', async () => {
  const input = await browserEvidence(T0, 5_000);
  const ok = await verifyClientEvidence(input, { secrets: SECRETS, store: onceStore(), now: T0 + 6_000, consume: true });
  assert.equal(ok.formToken, 'valid');

  const moved = await verifyClientEvidence({ ...input, ip: '192.0.2.200' }, { secrets: SECRETS, store: onceStore(), now: T0 + 6_000, consume: true });
  assert.equal(moved.formToken, 'invalid');
  assert.equal(moved.details.formToken, 'wrong_ip');
});

test('a PoW solved for another session does not count with this form token', async () => {
  const a = await browserEvidence(T0, 5_000);
  const b = await browserEvidence(T0, 5_000);
  const v = await verifyClientEvidence({ ...a, pow: b.pow }, { secrets: SECRETS, store: onceStore(), now: T0 + 6_000, consume: true });
  assert.equal(v.formToken, 'valid');
  assert.equal(v.pow, 'invalid');
  assert.equal(v.details.pow, 'form_token_mismatch');
});

test('a PoW sent without its form token (missing or forged) does not count', async () => {
  const a = await browserEvidence(T0, 5_000);
  const { formToken: _dropped, ...withoutToken } = a;
  const missing = await verifyClientEvidence(withoutToken, { secrets: SECRETS, store: onceStore(), now: T0 + 6_000, consume: true });
  assert.equal(missing.formToken, 'missing');
  assert.equal(missing.pow, 'invalid');
  assert.equal(missing.details.pow, 'form_token_missing');
  const b = await browserEvidence(T0, 5_000);
  const forged = await verifyClientEvidence({ ...b, formToken: `${b.formToken}x` }, { secrets: SECRETS, store: onceStore(), now: T0 + 6_000, consume: true });
  assert.equal(forged.formToken, 'invalid');
  assert.equal(forged.pow, 'invalid');
  assert.equal(forged.details.pow, 'form_token_missing');
});

test('expired evidence', async () => {
  const input = await browserEvidence(T0, 5_000);
  const v = await verifyClientEvidence(input, { secrets: SECRETS, store: onceStore(), now: T0 + 600_000, consume: true });
  assert.equal(v.formToken, 'expired');
  assert.equal(v.pow, 'expired');
});

test('nothing at all: missing everywhere, and the missing headers are noted', async () => {
  const v = await verifyClientEvidence({}, { secrets: SECRETS, store: onceStore(), now: T0, consume: true });
  assert.equal(v.formToken, 'missing');
  assert.equal(v.pow, 'missing');
  assert.equal(v.captcha, 'missing');
  assert.equal(v.elapsedMs, null);
  assert.equal(v.deviceId, null);
  assert.equal(v.acceptLanguage, null);
  assert.equal(v.details.signals, 'missing_user_agent,missing_accept_language');
});

test('a script: honeypot, too fast from the signed issue time, curl UA, webdriver', async () => {
  const ch = await issueChallenge({ secrets: SECRETS, ip: IP, userAgent: 'curl/8.5.0', now: T0, difficulty: DIFFICULTY });
  const input: ClientEvidence = {
    ip: IP,
    userAgent: 'curl/8.5.0',
    formToken: ch.formToken,
    honeypot: 'http://spam.example',
    // Lies about having taken a minute; the token says 250 ms.
    elapsedMs: 60_000,
    automation: { webdriver: true, flags: ['selenium', 'not-a-marker'] },
  };
  const v = await verifyClientEvidence(input, { secrets: SECRETS, store: onceStore(), now: T0 + 250, consume: true });
  assert.equal(v.formToken, 'valid');
  assert.equal(v.honeypot, true);
  assert.equal(v.elapsedMs, 250);
  assert.equal(v.headless, true);
  assert.equal(v.scriptUserAgent, true);
  assert.equal(v.pow, 'missing');
  assert.equal(v.details.automationFlags, 'selenium,not-a-marker');
  const signals = (v.details.signals ?? '').split(',');
  for (const s of ['honeypot_filled', 'too_fast:250ms', 'webdriver', 'automation_marker:selenium', 'script_user_agent:curl', 'missing_accept_language']) {
    assert.ok(signals.includes(s), `${s} in ${v.details.signals}`);
  }
});

test('device id and accept-language are sanitised', async () => {
  const ctx = { secrets: SECRETS, store: onceStore(), now: T0, consume: true };
  const v = await verifyClientEvidence({ deviceId: 'has space', acceptLanguage: ' en\u0000-US ' }, ctx);
  assert.equal(v.deviceId, null);
  assert.equal(v.details.deviceId, 'rejected');
  assert.equal(v.acceptLanguage, 'en-US');
});

test('CAPTCHA is verified through the configured verifier', async () => {
  const captcha = createCaptchaVerifier({ provider: 'turnstile', secret: 's', verifyUrl: captchaUrl, expectedHostname: 'shop.example' });
  const ctx = { secrets: SECRETS, store: onceStore(), now: T0, consume: true, captcha };
  captchaAnswer = { success: true, hostname: 'shop.example' };
  assert.equal((await verifyClientEvidence({ captchaToken: 'cf-ok' }, ctx)).captcha, 'passed');
  captchaAnswer = { success: false, 'error-codes': ['invalid-input-response'] };
  const bad = await verifyClientEvidence({ captchaToken: 'cf-bad' }, ctx);
  assert.equal(bad.captcha, 'failed');
  assert.equal(bad.details.captcha, 'invalid-input-response');
  // A token with no verifier configured cannot be checked.
  const none = await verifyClientEvidence({ captchaToken: 'cf-ok' }, { ...ctx, captcha: undefined });
  assert.equal(none.captcha, 'missing');
  assert.equal(none.details.captcha, 'not_configured');
});

test('ClientEvidenceSchema: limits and no extra properties', () => {
  const good: ClientEvidence = {
    ip: '2001:db8::1',
    userAgent: 'x'.repeat(512),
    deviceId: 'd'.repeat(128),
    formToken: 't'.repeat(4096),
    pow: 'p',
    captchaToken: 'c',
    honeypot: '',
    elapsedMs: 1234,
    automation: { webdriver: false, headless: false, flags: Array.from({ length: 16 }, (_, i) => `f${i}`) },
    acceptLanguage: 'en',
  };
  assert.equal(Value.Check(ClientEvidenceSchema, good), true);
  assert.equal(Value.Check(ClientEvidenceSchema, {}), true);
  const bad: Array<Record<string, unknown>> = [
    { ...good, ip: '1'.repeat(65) },
    { ...good, userAgent: 'x'.repeat(513) },
    { ...good, deviceId: 'd'.repeat(129) },
    { ...good, formToken: 't'.repeat(4097) },
    { ...good, pow: 'p'.repeat(4097) },
    { ...good, captchaToken: 'c'.repeat(4097) },
    { ...good, automation: { flags: Array.from({ length: 17 }, () => 'f') } },
    { ...good, automation: { flags: ['x'.repeat(65)] } },
    { ...good, automation: { webdriver: false, extra: true } },
    { ...good, elapsedMs: -1 },
    { ...good, elapsedMs: '5' },
    { ...good, somethingElse: 1 },
  ];
  for (const b of bad) assert.equal(Value.Check(ClientEvidenceSchema, b), false, JSON.stringify(b).slice(0, 80));
});
