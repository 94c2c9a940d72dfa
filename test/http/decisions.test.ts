/**
 * Each risk decision over HTTP: allow (widget evidence), challenge and then pass with the solved
 * proof-of-work, block (list, line type, country), tarpit (honeypot), shadow mode and escalation.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY } from '../../src/engine/policy.ts';
import { solveChallenge } from 'altcha-lib/v1';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';
import { parsePolicy, type Policy } from '../../src/engine/policy.ts';

type Challenge = { formToken: string; issuedAt: number; pow: { algorithm: string; challenge: string; salt: string; signature: string; maxnumber: number } };

async function solve(c: Challenge): Promise<string> {
  const s = await solveChallenge(c.pow.challenge, c.pow.salt, c.pow.algorithm, c.pow.maxnumber).promise;
  assert.ok(s, 'solved');
  return Buffer.from(JSON.stringify({ algorithm: c.pow.algorithm, challenge: c.pow.challenge, number: s.number, salt: c.pow.salt, signature: c.pow.signature })).toString('base64');
}

function policy(doc: unknown): Policy {
  const r = parsePolicy(doc);
  assert.ok(r.ok, JSON.stringify(r));
  return r.policy;
}

const UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36';
let n = 0;
const fresh = () => `+62815${String(20_000_000 + n++)}`;

describe('risk decisions over HTTP', () => {
  let t: TestApp;
  let hostingIp: string;
  before(async () => {
    t = await startTestApp();
    const candidates = ['3.5.140.2', '52.94.236.248', '13.248.118.1', '104.131.0.1', '5.9.0.1', '159.89.0.1', '45.32.0.1', '51.15.0.1'];
    hostingIp = candidates.find((ip) => t.ctx.signals.ipFacts(ip)?.hosting) ?? '';
    assert.ok(hostingIp, 'one of the candidates is in a hosting ASN');
  });
  after(async () => t.close());

  it('allow: a browser with the widget evidence (form token + solved proof-of-work)', async () => {
    const ch = await fetch(`${t.url}/v1/challenges`, { method: 'POST', headers: { 'user-agent': UA, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(ch.status, 201);
    const c = (await ch.json()) as Challenge;
    const pow = await solve(c);
    t.clock.advance(4000);
    const to = fresh();
    const r = await t.request('POST', '/v1/verifications', { to, client: { ip: '127.0.0.1', userAgent: UA, acceptLanguage: 'id-ID', formToken: c.formToken, pow, elapsedMs: 4000, deviceId: 'fp-1' } });
    assert.equal(r.status, 201, r.text);
    const [ev] = await t.ctx.store.queryEvents({ number: to, type: 'send', limit: 1 });
    assert.equal(ev?.decision, 'allow');
    const evidence = (ev!.data as { evidence: Record<string, unknown> }).evidence;
    assert.equal(evidence.formToken, 'valid');
    assert.equal(evidence.pow, 'solved');
    // the same token and solution again: reused → no longer counts as evidence
    const again = await t.request('POST', '/v1/verifications', { to: fresh(), client: { ip: '127.0.0.1', userAgent: UA, acceptLanguage: 'id-ID', formToken: c.formToken, pow, elapsedMs: 4000 } });
    const [ev2] = await t.ctx.store.queryEvents({ type: 'send', limit: 1 });
    assert.equal((ev2!.data as { evidence: Record<string, unknown> }).evidence.formToken, 'reused', again.text);
  });

  it('challenge: a datacenter IP without evidence must solve the returned challenge, then passes', async () => {
    const to = fresh();
    const client = { ip: hostingIp, userAgent: UA, acceptLanguage: 'id-ID' };
    const r = await t.request('POST', '/v1/verifications', { to, client });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.body.error.code, 'challenge_required');
    assert.ok(r.body.error.reasons.includes('ip.hosting'));
    const c = r.body.error.challenge as Challenge;
    assert.ok(c.formToken && c.pow.challenge, 'a fresh challenge comes with the refusal');
    assert.equal(t.lastCode(to), null, 'nothing sent');
    const pow = await solve(c);
    t.clock.advance(3000); // a person solving the challenge: a submit at once would be `too_fast`
    const ok = await t.request('POST', '/v1/verifications', { to, client: { ...client, formToken: c.formToken, pow } });
    assert.equal(ok.status, 201, ok.text);
    assert.match(t.lastCode(to) ?? '', /^\d{6}$/);
  });

  it("challenge answered at once by the page's script: the person's time on the form counts, not the puzzle's seconds", async () => {
    const to = fresh();
    const client = { ip: hostingIp, userAgent: UA, acceptLanguage: 'id-ID' };
    // The widget's token from page load, five seconds on the form, the proof of work not finished yet.
    const page = (await t.ctx.challenger.issue({ ip: hostingIp, userAgent: UA, level: 'normal', now: t.clock() })) as { formToken: string };
    t.clock.advance(5000);
    const r = await t.request('POST', '/v1/verifications', { to, client: { ...client, formToken: page.formToken, elapsedMs: 5000 } });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.body.error.code, 'challenge_required');
    const c = r.body.error.challenge as Challenge;
    const pow = await solve(c);
    // A fast device solves it in a fraction of a second and the page sends again by itself.
    t.clock.advance(300);
    const ok = await t.request('POST', '/v1/verifications', { to, client: { ...client, formToken: c.formToken, pow, elapsedMs: 5300 } });
    assert.equal(ok.status, 201, ok.text);
    // A bot that sent its first request as soon as it had the token gains nothing: the start it carries is that.
    const quick = fresh();
    const botToken = (await t.ctx.challenger.issue({ ip: hostingIp, userAgent: UA, level: 'normal', now: t.clock() })) as { formToken: string };
    const first = await t.request('POST', '/v1/verifications', { to: quick, client: { ...client, formToken: botToken.formToken, elapsedMs: 60_000 } });
    assert.equal(first.status, 403, first.text);
    const c2 = first.body.error.challenge as Challenge;
    const pow2 = await solve(c2);
    t.clock.advance(300);
    const again = await t.request('POST', '/v1/verifications', { to: quick, client: { ...client, formToken: c2.formToken, pow: pow2, elapsedMs: 60_300 } });
    assert.equal(again.status, 403, again.text);
    assert.ok(again.body.error.reasons.includes('too_fast'), again.text);
  });

  it('tarpit: a filled honeypot looks like success, nothing is sent, no code can approve it', async () => {
    const to = fresh();
    const before = t.receiver.requests.length;
    const r = await t.request('POST', '/v1/verifications', { to, client: { ip: '36.72.60.1', userAgent: UA, acceptLanguage: 'id-ID', honeypot: 'buy cheap' } });
    assert.equal(r.status, 201);
    assert.deepEqual(Object.keys(r.body).sort(), ['attemptsLeft', 'channel', 'createdAt', 'expiresAt', 'id', 'resendAfter', 'sends', 'status', 'to']);
    assert.equal(r.body.status, 'pending');
    assert.equal(t.receiver.requests.length, before, 'no message');
    const get = await t.request('GET', `/v1/verifications/${r.body.id}`);
    assert.equal(get.body.status, 'pending');
    const check = await t.request('POST', '/v1/verifications/check', { id: r.body.id, code: '123456' });
    assert.deepEqual(outcome(check.body), { status: 'denied', attemptsLeft: 4 });
    // Repeated, it answers as a real send does (a new verification each time told a bot it was tarpitted):
    // the cooldown at once, then a resend of the same verification.
    const bot = { ip: '36.72.60.1', userAgent: UA, acceptLanguage: 'id-ID', honeypot: 'buy cheap' };
    const again = await t.request('POST', '/v1/verifications', { to, client: bot });
    assert.equal(again.status, 429, again.text);
    assert.equal(again.body.error.code, 'rate_limited');
    assert.ok(Number(again.headers.get('retry-after')) > 0);
    t.clock.advance(31_000);
    const resend = await t.request('POST', '/v1/verifications', { to, client: bot });
    assert.equal(resend.status, 201, resend.text);
    assert.deepEqual([resend.body.id, resend.body.sends], [r.body.id, 2]);
    assert.equal(t.receiver.requests.length, before, 'still no message');
  });

  it('block: block list, line type and country rules, with reasons', async () => {
    const to = fresh();
    const add = await t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: to, note: 'abuse' }, { key: t.adminKey });
    assert.equal(add.status, 201, add.text);
    const r = await t.request('POST', '/v1/verifications', { to, client: { ip: '36.72.61.1', userAgent: UA, acceptLanguage: 'id-ID' } });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'request_blocked');
    assert.deepEqual(r.body.error.reasons, ['list.block']);

    const landline = await t.request('POST', '/v1/verifications', { to: '+442079460000', client: { ip: '36.72.61.2', userAgent: UA, acceptLanguage: 'en-GB' } });
    assert.deepEqual(landline.body.error?.reasons, ['line_type'], landline.text);

    t.ctx.setPolicy(policy({ numbers: { denyCountries: ['ID'] } }), 0);
    const denied = await t.request('POST', '/v1/verifications', { to: fresh(), client: { ip: '36.72.61.3', userAgent: UA, acceptLanguage: 'id-ID' } });
    assert.deepEqual(denied.body.error?.reasons, ['country.number']);
    t.ctx.setPolicy(policy({}), 0);
  });

  it('a widget-only deployment: `form_token.missing` as a challenge makes the widget mandatory (docs/policy.md)', async () => {
    const to = fresh();
    // A careful bot: residential address, browser User-Agent and language, but no widget evidence.
    const client = { ip: '36.72.63.1', userAgent: UA, acceptLanguage: 'id-ID' };
    const defaults = await t.request('POST', '/v1/verifications', { to: fresh(), client });
    assert.equal(defaults.status, 201, 'the default lets server-to-server integrations without the widget through');
    t.ctx.setPolicy(policy({ risk: { rules: { 'form_token.missing': { action: 'challenge' } } } }), 0);
    try {
      const r = await t.request('POST', '/v1/verifications', { to, client: { ...client, ip: '36.72.63.2' } });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.body.error.code, 'challenge_required');
      assert.ok(r.body.error.reasons.includes('form_token.missing'), r.text);
      assert.equal(t.lastCode(to), null);
      const c = r.body.error.challenge as Challenge;
      const pow = await solve(c);
      t.clock.advance(3000);
      const ok = await t.request('POST', '/v1/verifications', { to, client: { ...client, ip: '36.72.63.2', formToken: c.formToken, pow } });
      assert.equal(ok.status, 201, ok.text);
    } finally {
      t.ctx.setPolicy(policy({}), 0);
    }
  });

  it('a request without the widget answers its challenge at machine speed and passes: not "too fast" (a native app)', async () => {
    // Not one of fresh()'s sequential numbers: more of them in one block quarantines the range (dense numbers).
    const to = '+6281634567001';
    const client = { ip: '36.72.63.9', userAgent: 'MyApp/4.2 (iPhone; iOS 18.1)', acceptLanguage: 'id-ID' };
    t.ctx.setPolicy(policy({ risk: { rules: { 'form_token.missing': { action: 'challenge' } } } }), 0);
    try {
      const r = await t.request('POST', '/v1/verifications', { to, client });
      assert.equal(r.body.error?.code, 'challenge_required', r.text);
      const c = r.body.error.challenge as Challenge;
      const pow = await solve(c);
      t.clock.advance(300); // solved on the device in a third of a second, sent at once
      const ok = await t.request('POST', '/v1/verifications', { to, client: { ...client, formToken: c.formToken, pow } });
      assert.equal(ok.status, 201, ok.text);
      // Timed from the shortest human time before the challenge, not from the challenge: no too_fast weight.
      const [ev] = await t.ctx.store.queryEvents({ number: to, type: 'send', limit: 1 });
      const evidence = (ev!.data as { evidence: { elapsedMs: number } }).evidence;
      assert.ok(evidence.elapsedMs >= DEFAULT_POLICY.risk.minHumanMs, JSON.stringify(evidence));
    } finally {
      t.ctx.setPolicy(policy({}), 0);
    }
  });

  it('a client whose token was invalid is timed from its new token: it had one and misused it', async () => {
    const to = '+6281634567002';
    const client = { ip: '36.72.63.10', userAgent: UA, acceptLanguage: 'id-ID', formToken: 'v1.forged.token' };
    const r = await t.request('POST', '/v1/verifications', { to, client });
    assert.equal(r.body.error?.code, 'challenge_required', r.text);
    const c = r.body.error.challenge as Challenge;
    const pow = await solve(c);
    t.clock.advance(300);
    await t.request('POST', '/v1/verifications', { to, client: { ...client, formToken: c.formToken, pow } });
    const [ev] = await t.ctx.store.queryEvents({ number: to, limit: 1 });
    assert.ok((ev!.data as { evidence: { elapsedMs: number } }).evidence.elapsedMs < DEFAULT_POLICY.risk.minHumanMs, JSON.stringify(ev!.data));
  });

  it('shadow mode: a rule is evaluated and logged but not enforced', async () => {
    t.ctx.setPolicy(policy({ risk: { rules: { line_type: { action: 'block', mode: 'shadow' } } } }), 0);
    const r = await t.request('POST', '/v1/verifications', { to: '+442079460001', client: { ip: '36.72.62.1', userAgent: UA, acceptLanguage: 'en-GB' } });
    assert.equal(r.status, 201, r.text);
    const [ev] = await t.ctx.store.queryEvents({ number: '+442079460001', limit: 1 });
    assert.deepEqual((ev!.data as { shadow: string[] }).shadow, ['line_type']);
    t.ctx.setPolicy(policy({}), 0);
  });

  it('the widget gets the big puzzle while the whole service is tightened, only while the throttled rule is live', async () => {
    const puzzle = async () => {
      const r = await t.request('POST', '/v1/challenges', {}, { key: null });
      assert.equal(r.status, 201, r.text);
      return (r.body as Challenge).pow.maxnumber;
    };
    const tighten = async (scope: string) => {
      await t.ctx.store.putSetting(`throttle:${scope}`, { baseline: 3, sampledAt: t.clock(), tightenedSince: t.clock() }, 60 * 60_000, t.clock());
      t.ctx.state.invalidate();
    };
    // A tightened prefix (~30 requests to a quiet one) does not make every visitor pay: its own challenge asks.
    await tighten('prefix:+62899');
    assert.equal(await puzzle(), 50_000);
    await tighten('global');
    assert.equal(await puzzle(), 1_000_000);
    t.ctx.setPolicy(policy({ risk: { rules: { throttled: { mode: 'shadow' } } } }), 0);
    assert.equal(await puzzle(), 50_000, 'a rule in shadow costs users nothing');
    t.ctx.setPolicy(policy({}), 0);
    for (const scope of ['prefix:+62899', 'global']) await t.ctx.store.deleteSetting(`throttle:${scope}`);
    t.ctx.state.invalidate();
    assert.equal(await puzzle(), 50_000);
  });

  it('escalation: an IP that keeps tripping rules is always challenged, then blocked, and it expires', async () => {
    const bot = { ip: '36.72.63.1', userAgent: 'python-requests/2.31', acceptLanguage: 'id-ID' };
    const decisions: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await t.request('POST', '/v1/verifications', { to: fresh(), client: bot });
      decisions.push(r.body.error?.reasons?.includes('escalation.block') ? 'blocked' : r.body.error?.code ?? String(r.status));
    }
    assert.equal(decisions[0], 'challenge_required');
    assert.equal(decisions.at(-1), 'blocked', decisions.join(','));
    // a clean request from that IP is still challenged (always-challenge level) before the trips age out
    t.clock.advance(7 * 3600_000);
    const later = await t.request('POST', '/v1/verifications', { to: fresh(), client: { ...bot, userAgent: UA } });
    assert.equal(later.status, 201, `escalation expired: ${later.text}`);
  });
});
