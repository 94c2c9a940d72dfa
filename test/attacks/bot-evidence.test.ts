/**
 * Attack: pass the bot filter with evidence that is not what it claims. A form token replayed, carried to
 * another IP or browser, or used after it expired; a proof-of-work forged, signed by someone else, or
 * replayed; a CAPTCHA token the provider rejects. Each must earn no credit: the send is challenged and
 * nothing is delivered, and the audit event records why.
 *
 * The deployment here requires the widget (a missing or bad form token scores 60, the challenge threshold
 * is 30, a solved proof-of-work takes 30 off), so a genuine browser passes and every misuse does not.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startFakeServer, type FakeServer } from '../helpers/fake-http.ts';
import { parsePolicy, type Policy } from '../../src/engine/policy.ts';
import { issueChallenge } from '../../src/signals/evidence.ts';
import { deliveries, freshNumber, solvePow } from './support.ts';

const UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36';
const BROWSER_IP = '36.72.70.10';

type Challenge = { formToken: string; pow: { algorithm: string; challenge: string; salt: string; signature: string; maxnumber: number } };

function policy(doc: unknown): Policy {
  const r = parsePolicy(doc);
  assert.ok(r.ok, JSON.stringify(r));
  return r.policy;
}

const WIDGET_REQUIRED = {
  risk: {
    rules: {
      'form_token.missing': { action: 'score', weight: 60 },
      'form_token.invalid': { action: 'score', weight: 60 },
      'form_token.expired': { action: 'score', weight: 60 },
      'form_token.reused': { action: 'score', weight: 60 },
    },
  },
};

describe('forged and replayed bot evidence', () => {
  let t: TestApp;
  before(async () => {
    // 127.0.0.1 plays the site's proxy, so the browser's address reaches /v1/challenges in X-Forwarded-For.
    t = await startTestApp({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } });
    t.ctx.setPolicy(policy(WIDGET_REQUIRED), 0);
  });
  after(async () => t.close());

  /** What widget.js does in the browser: fetch a challenge and solve it. */
  async function browserEvidence(ip = BROWSER_IP, ua = UA): Promise<{ formToken: string; pow: string; raw: Challenge }> {
    const res = await t.request('POST', '/v1/challenges', {}, { key: null, headers: { 'x-forwarded-for': ip, 'user-agent': ua } });
    assert.equal(res.status, 201, res.text);
    const c = res.body as Challenge;
    return { formToken: c.formToken, pow: solvePow(c.pow), raw: c };
  }

  /** What the integrator's backend forwards, and what happened to it. */
  async function send(evidence: Record<string, unknown>, ip = BROWSER_IP, ua = UA) {
    const to = freshNumber();
    const r = await t.request('POST', '/v1/verifications', { to, client: { ip, userAgent: ua, acceptLanguage: 'id-ID', elapsedMs: 6000, ...evidence } });
    const [ev] = await t.ctx.store.queryEvents({ number: to, type: 'send', limit: 1 });
    const recorded = (ev?.data as { evidence?: { formToken?: string; pow?: string; captcha?: string } } | undefined)?.evidence ?? {};
    return { r, to, recorded, delivered: deliveries(t, to).length };
  }

  function assertRefused(x: Awaited<ReturnType<typeof send>>, what: string) {
    assert.equal(x.r.status, 403, `${what}: ${x.r.text}`);
    assert.equal(x.r.body.error.code, 'challenge_required', what);
    assert.equal(x.delivered, 0, `${what}: nothing delivered`);
  }

  it('baseline: the genuine widget evidence passes (so the refusals below are about the misuse)', async () => {
    const e = await browserEvidence();
    t.clock.advance(5000);
    const x = await send({ formToken: e.formToken, pow: e.pow });
    assert.equal(x.r.status, 201, x.r.text);
    assert.equal(x.delivered, 1);
    assert.deepEqual([x.recorded.formToken, x.recorded.pow], ['valid', 'solved']);
  });

  it('a form token and its solution replayed', async () => {
    const e = await browserEvidence();
    t.clock.advance(5000);
    assert.equal((await send({ formToken: e.formToken, pow: e.pow })).r.status, 201);
    const replay = await send({ formToken: e.formToken, pow: e.pow });
    assertRefused(replay, 'replay');
    assert.deepEqual([replay.recorded.formToken, replay.recorded.pow], ['reused', 'reused']);
  });

  it('a form token farmed on one IP (or browser) and used from another', async () => {
    const e = await browserEvidence();
    t.clock.advance(5000);
    const otherIp = await send({ formToken: e.formToken, pow: e.pow }, '36.72.71.99');
    assertRefused(otherIp, 'other IP');
    assert.equal(otherIp.recorded.formToken, 'invalid');

    const e2 = await browserEvidence();
    t.clock.advance(5000);
    const otherUa = await send({ formToken: e2.formToken, pow: e2.pow }, BROWSER_IP, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0');
    assertRefused(otherUa, 'other user agent');
    assert.equal(otherUa.recorded.formToken, 'invalid');
  });

  it('a form token used after it expired', async () => {
    const e = await browserEvidence();
    t.clock.advance(10 * 60_000 + 1000);
    const late = await send({ formToken: e.formToken, pow: e.pow });
    assertRefused(late, 'expired');
    assert.equal(late.recorded.formToken, 'expired');
  });

  it('a forged proof-of-work: wrong number, edited challenge, or signed with the attacker\'s own key', async () => {
    const e = await browserEvidence();
    t.clock.advance(5000);
    const payload = JSON.parse(Buffer.from(e.pow, 'base64').toString()) as Record<string, unknown>;
    const wrongNumber = Buffer.from(JSON.stringify({ ...payload, number: (payload.number as number) + 1 })).toString('base64');
    const x1 = await send({ formToken: e.formToken, pow: wrongNumber });
    assertRefused(x1, 'wrong number');
    assert.equal(x1.recorded.pow, 'invalid');

    // A challenge the attacker made and solved himself, with an easy difficulty and his own key.
    const own = await issueChallenge({ secrets: 'attacker-secret-0123456789abcdef0123456789', now: t.clock(), difficulty: 10 });
    const e2 = await browserEvidence();
    t.clock.advance(5000);
    const x2 = await send({ formToken: e2.formToken, pow: solvePow(own.pow) });
    assertRefused(x2, 'foreign key');
    assert.equal(x2.recorded.pow, 'invalid');
  });

  it('a proof-of-work solved once and paired with new form tokens', async () => {
    const e = await browserEvidence();
    const e2 = await browserEvidence();
    t.clock.advance(5000);
    const x = await send({ formToken: e2.formToken, pow: e.pow });
    assertRefused(x, 'solution of another session');
    assert.equal(x.recorded.pow, 'invalid');
  });
});

describe('a bigger puzzle for an escalated client', () => {
  it('a normal puzzle fetched from /v1/challenges earns nothing; the challenge\'s own (1,000,000) does', async () => {
    const t = await startTestApp({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } });
    try {
      const ip = '36.72.95.7';
      // Three rule trips (a script: no token, no proof of work, curl) escalate the address.
      for (let i = 0; i < 3; i++) {
        const r = await t.request('POST', '/v1/verifications', { to: freshNumber(), client: { ip, userAgent: 'curl/8.5.0' } });
        assert.equal(r.status, 403, r.text);
      }
      // A real browser on that address: the widget's normal puzzle from /v1/challenges.
      const fetched = await t.request('POST', '/v1/challenges', {}, { key: null, headers: { 'x-forwarded-for': ip, 'user-agent': UA } });
      assert.equal(fetched.status, 201);
      assert.equal(fetched.body.powDifficulty, 50_000);
      const client = (c: Challenge) => ({ ip, userAgent: UA, acceptLanguage: 'id-ID', elapsedMs: 6000, formToken: c.formToken, pow: solvePow(c.pow) });
      const to = freshNumber();
      const first = await t.request('POST', '/v1/verifications', { to, client: client(fetched.body) });
      assert.equal(first.status, 403, `the small puzzle is not enough: ${first.text}`);
      assert.equal(first.body.error.code, 'challenge_required');
      assert.ok(first.body.error.reasons.includes('escalation.challenge'), first.text);
      const challenge = first.body.error.challenge as Challenge & { powDifficulty: number };
      assert.equal(challenge.powDifficulty, 1_000_000, 'the challenge asks for the highest level');
      // Solving the challenge it was given passes.
      const second = await t.request('POST', '/v1/verifications', { to, client: client(challenge) });
      assert.equal(second.status, 201, second.text);
    } finally {
      await t.close();
    }
  });
});

describe('farming form tokens from one address', () => {
  it('POST /v1/challenges is limited per IP by limits.challengesPerIp (30 per 10 min by default), and the policy can raise it', async () => {
    const t = await startTestApp({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } });
    try {
      const ask = (ip: string) => t.request('POST', '/v1/challenges', {}, { key: null, headers: { 'x-forwarded-for': ip } });
      for (let i = 0; i < 30; i++) assert.equal((await ask('36.72.90.1')).status, 201);
      const refused = await ask('36.72.90.1');
      assert.equal(refused.status, 429, refused.text);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.equal((await ask('36.72.90.2')).status, 201, 'another address is not affected');
      // Behind carrier-grade NAT the operator raises it.
      const p = parsePolicy({ limits: { challengesPerIp: { limit: 40, windowSeconds: 600 } } });
      assert.ok(p.ok);
      t.ctx.setPolicy(p.policy, 0);
      for (let i = 0; i < 10; i++) assert.equal((await ask('36.72.90.1')).status, 201);
      assert.equal((await ask('36.72.90.1')).status, 429);
    } finally {
      await t.close();
    }
  });
});

describe('a CAPTCHA token the provider rejects', () => {
  let t: TestApp;
  let provider: FakeServer;
  let verdict = false;
  before(async () => {
    provider = await startFakeServer(() => ({ status: 200, json: verdict ? { success: true, hostname: 'shop.example' } : { success: false, 'error-codes': ['invalid-input-response'] } }));
    t = await startTestApp({ config: { captcha: { provider: 'turnstile', secret: 'turnstile-secret-for-tests', verifyUrl: `${provider.url}/siteverify` } } });
  });
  after(async () => {
    await t.close();
    await provider.close();
  });

  const send = (token: string) => {
    const to = freshNumber();
    return t.request('POST', '/v1/verifications', { to, client: { ip: '36.72.72.1', userAgent: UA, acceptLanguage: 'id-ID', elapsedMs: 6000, captchaToken: token } }).then((r) => ({ r, to }));
  };

  it('is refused and sends nothing; the same request with an accepted token passes', async () => {
    verdict = false;
    const { r, to } = await send('XXXX.forged-token');
    assert.equal(r.status, 403, r.text);
    assert.equal(r.body.error.code, 'challenge_required');
    assert.ok(r.body.error.reasons.includes('captcha.failed'));
    assert.equal(deliveries(t, to).length, 0);
    const asked = provider.requests.at(-1)!;
    assert.equal(asked.form?.response, 'XXXX.forged-token', 'the token was checked with the provider, not trusted');
    assert.equal(asked.form?.remoteip, '36.72.72.1');

    verdict = true;
    const ok = await send('0.genuine-token');
    assert.equal(ok.r.status, 201, ok.r.text);
  });
});
