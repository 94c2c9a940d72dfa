import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';

const TO = '+6281234567890';
const client = (ip = '36.72.10.5') => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

describe('verification API over HTTP (SQLite store)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('sends a code and approves the right one', async () => {
    const res = await t.request('POST', '/v1/verifications', { to: '+62 812-3456-7890', channel: 'sms', locale: 'id', client: client() });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.to, TO);
    assert.equal(res.body.status, 'pending');
    assert.match(res.body.id, /^vf_/);
    assert.ok(Date.parse(res.body.expiresAt) - t.clock() === 600_000);
    assert.ok(Date.parse(res.body.resendAfter) > t.clock());
    const code = t.lastCode(TO);
    assert.match(code ?? '', /^\d{6}$/);
    assert.ok(!JSON.stringify(res.body).includes(code!), 'the code never appears in a response');

    const wrong = code === '000000' ? '111111' : '000000';
    const denied = await t.request('POST', '/v1/verifications/check', { id: res.body.id, code: wrong });
    assert.deepEqual(outcome(denied.body), { status: 'denied', attemptsLeft: 4 });
    assert.deepEqual(denied.body.verification, { ...res.body, attemptsLeft: 4 }, 'a check answers the verification as it stands after it');
    const ok = await t.request('POST', '/v1/verifications/check', { id: res.body.id, code });
    assert.deepEqual(outcome(ok.body), { status: 'approved' });
    assert.deepEqual(ok.body.verification, { ...res.body, status: 'approved', attemptsLeft: 3 });
    const again = await t.request('POST', '/v1/verifications/check', { id: res.body.id, code });
    assert.equal(again.status, 409, 'single use');
    assert.equal(again.body.error.code, 'verification_not_pending');
    const got = await t.request('GET', `/v1/verifications/${res.body.id}`);
    assert.equal(got.body.status, 'approved');
  });

  it('the honeypot may be the field\'s text (as the widget sends it) or a boolean', async () => {
    const cases = [['', false], [false, false], ['http://spam.example', true], [true, true]] as const;
    for (const [i, [honeypot, filled]] of cases.entries()) {
      // One number per case, used nowhere else in this file: a random one met another case's (or another
      // test's) cooldown about once in a hundred runs.
      const to = `+628123459000${i}`;
      const r = await t.request('POST', '/v1/verifications', { to, client: { ...client(`36.72.11.${filled ? 8 : 7}`), honeypot } });
      assert.equal(r.status, 201, `${JSON.stringify(honeypot)}: ${r.text}`); // a filled honeypot is tarpitted: it looks sent
      const [ev] = await t.ctx.store.queryEvents({ type: 'send', number: to, limit: 1 });
      assert.equal(ev!.decision, filled ? 'tarpit' : 'allow', JSON.stringify(honeypot));
    }
  });

  it('webhook deliveries are signed', async () => {
    const req = t.receiver.requests.at(-1)!;
    assert.match(String(req.headers['x-otpshield-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
  });

  it('checks by number, and distinguishes unknown, expired and locked verifications', async () => {
    const to = '+6281234567891';
    const s = await t.request('POST', '/v1/verifications', { to, client: client('36.72.10.6') });
    assert.equal(s.status, 201, s.text);
    const code = t.lastCode(to)!;
    const wrong = code === '123456' ? '654321' : '123456';
    for (let i = 4; i >= 1; i--) {
      const r = await t.request('POST', '/v1/verifications/check', { to, code: wrong });
      assert.deepEqual(outcome(r.body), { status: 'denied', attemptsLeft: i });
    }
    const last = await t.request('POST', '/v1/verifications/check', { to, code: wrong });
    assert.deepEqual(outcome(last.body), { status: 'denied', attemptsLeft: 0 });
    assert.equal(last.body.verification.id, s.body.id, 'a check by number says which verification it was');
    assert.equal(last.body.verification.status, 'locked', 'the last attempt locked it');
    const locked = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code });
    assert.equal(locked.status, 423);
    assert.equal(locked.body.error.code, 'verification_locked');

    const unknown = await t.request('POST', '/v1/verifications/check', { id: 'vf_doesnotexist', code: '123456' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'verification_not_found');

    const to2 = '+6281234567892';
    const s2 = await t.request('POST', '/v1/verifications', { to: to2, client: client('36.72.10.7') });
    t.clock.advance(600_001);
    const expired = await t.request('POST', '/v1/verifications/check', { id: s2.body.id, code: t.lastCode(to2) });
    assert.equal(expired.status, 410);
    assert.equal(expired.body.error.code, 'verification_expired');
  });

  it('cancels a pending verification', async () => {
    const to = '+6281234567893';
    const s = await t.request('POST', '/v1/verifications', { to, client: client('36.72.10.8') });
    const c = await t.request('POST', `/v1/verifications/${s.body.id}/cancel`);
    assert.equal(c.status, 200);
    assert.equal(c.body.status, 'canceled');
    const check = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: t.lastCode(to) });
    assert.equal(check.status, 409);
  });

  it('a cancel of a verification past its expiry answers 410, as a check does, and leaves it expired', async () => {
    const s = await t.request('POST', '/v1/verifications', { to: '+6281234567894', client: client('36.72.10.9') });
    assert.equal(s.status, 201, s.text);
    t.clock.advance(Date.parse(s.body.expiresAt) - t.clock() + 1);
    const c = await t.request('POST', `/v1/verifications/${s.body.id}/cancel`);
    assert.equal(c.status, 410, c.text);
    assert.equal(c.body.error.code, 'verification_expired');
    assert.equal((await t.request('GET', `/v1/verifications/${s.body.id}`)).body.status, 'expired');
  });

  it('rejects invalid input with a clear error, never a 500', async () => {
    const cases: [unknown, number, string][] = [
      [{ to: 'not a number' }, 422, 'invalid_phone_number'],
      [{ to: 6281234567890 }, 400, 'invalid_request'],
      [{ to: ['+6281234567890'] }, 400, 'invalid_request'],
      [{ to: { $gt: '' } }, 400, 'invalid_request'],
      [{ to: TO, extra: 1 }, 400, 'invalid_request'],
      [{ to: TO, channel: 'pigeon' }, 400, 'invalid_request'],
      [{ to: TO, channel: 'voice' }, 422, 'channel_disabled'],
      [{}, 400, 'invalid_request'],
    ];
    for (const [body, status, code] of cases) {
      const r = await t.request('POST', '/v1/verifications', body);
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.text}`);
      assert.equal(r.body.error.code, code);
      assert.equal(typeof r.body.error.message, 'string');
      assert.ok(!/at .*\.ts:\d+/.test(r.text), 'no stack trace');
    }
    // A value outside a set names the set (it said "must be equal to constant").
    const pigeon = await t.request('POST', '/v1/verifications', { to: TO, channel: 'pigeon' });
    assert.equal(pigeon.body.error.message, 'body.channel must be one of "sms", "whatsapp", "voice", "email"');
    const groupBy = await t.request('GET', '/v1/admin/stats?groupBy=foo', undefined, { key: t.adminKey });
    assert.equal(groupBy.status, 400);
    assert.match(groupBy.body.error.message, /^querystring\.groupBy must be one of "country", "prefix", "channel", /);
    const raw = await t.request('POST', '/v1/verifications', '{"to": ', {});
    assert.equal(raw.status, 400);
    assert.equal(raw.body.error.code, 'invalid_request');
    const proto = await t.request('POST', '/v1/verifications', '{"to":"+6281234567890","__proto__":{"admin":true}}');
    assert.equal(proto.status, 400);
    const text = await t.request('POST', '/v1/verifications', 'to=1', { headers: { 'content-type': 'text/plain' } });
    assert.equal(text.status, 415);
    assert.equal(text.body.error.code, 'unsupported_media_type');
    const nf = await t.request('GET', '/v1/nothing-here');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, 'not_found');
    // A path that exists with another method: 405 and the methods it has (the README's table promised it;
    // every wrong method answered 404 until a hostile-input review noticed).
    const wrong = await t.request('PATCH', '/v1/verifications/vf_x');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.body.error.code, 'method_not_allowed');
    assert.equal(wrong.headers.get('allow'), 'GET, HEAD');
    const cancelByGet = await t.request('GET', '/v1/verifications/vf_x/cancel');
    assert.equal(cancelByGet.status, 405);
    assert.equal(cancelByGet.headers.get('allow'), 'POST');
    const badCode = await t.request('POST', '/v1/verifications/check', { id: 'vf_x', code: '0x1E240' });
    assert.ok([404, 422].includes(badCode.status));
    // A check by a national number: it takes no defaultRegion, so the message says what works (it suggested one).
    const national = await t.request('POST', '/v1/verifications/check', { to: '081234567891', code: '123456' });
    assert.equal(national.status, 422, national.text);
    assert.equal(national.body.error.code, 'invalid_phone_number');
    assert.match(national.body.error.message, /international form: a leading \+ and the country code/);
  });

  it('refuses an end-user IP that does not parse instead of ignoring it (which would switch the IP layers off)', async () => {
    const bad = ['1.2.3.4.5', '999.1.1.1', '0x7f.0.0.1', '１.２.３.４', '1::2::3', 'not an ip\u0000', '2001:db8::1:443x', '[1.2.3.4.5]:80'];
    const sends = await Promise.all(bad.map((ip, i) => t.request('POST', '/v1/verifications', { to: `+62812345670${10 + i}`, client: { ip } })));
    for (const [i, r] of sends.entries()) {
      assert.equal(r.status, 400, `${JSON.stringify(bad[i])} → ${r.text}`);
      assert.equal(r.body.error.code, 'invalid_request');
      assert.match(r.body.error.message, /client\.ip/);
    }
    const check = await t.request('POST', '/v1/verifications/check', { to: '+6281234567010', code: '123456', client: { ip: 'zzz' } });
    assert.equal(check.status, 400, check.text);
    assert.equal(check.body.error.code, 'invalid_request');
    // Well-formed addresses of both families pass (an IPv4-mapped IPv6 address is an IPv4 address), and so do
    // the port and brackets proxies add, and an empty value (unknown, as if absent).
    const good: [string, string | null][] = [['36.72.10.5', '36.72.10.5'], ['2001:db8::1', '2001:db8::1'], ['::ffff:36.72.10.6', '36.72.10.6'], ['36.72.10.7:51234', '36.72.10.7'], ['[2001:db8::7]:443', '2001:db8::7'], ['[2001:db8::8]', '2001:db8::8'], ['', null]];
    for (const [i, [ip, stored]] of good.entries()) {
      // One number per Indonesian range: consecutive numbers of one range would look like a range walk.
      const to = `+62${['811', '813', '821', '822', '852', '853', '857'][i]}4${i}739261`;
      const ok = await t.request('POST', '/v1/verifications', { to, client: { ip } });
      assert.equal(ok.status, 201, `${JSON.stringify(ip)} → ${ok.text}`);
      const events = (await t.request('GET', `/v1/admin/events?type=send&mask=false&number=${encodeURIComponent(to)}`, undefined, { key: t.adminKey })).body.events as { ip: string | null }[];
      assert.equal(events[0]?.ip ?? null, stored, JSON.stringify(ip));
    }
  });

  it('requires an API key with the right scope', async () => {
    const none = await t.request('POST', '/v1/verifications', { to: TO }, { key: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    assert.equal(none.headers.get('www-authenticate'), 'Bearer', 'a 401 names the scheme (RFC 9110 §11.6.1)');
    const bogus = await t.request('POST', '/v1/verifications', { to: TO }, { key: 'osk_AAAAAAAAAAAA_' + 'A'.repeat(43) });
    assert.equal(bogus.status, 401);
    // The scheme name is case-insensitive; anything but Bearer is no key.
    for (const [i, [scheme, status]] of ([['bearer', 201], ['BEARER', 201], ['Basic', 401], ['Bearerx', 401]] as const).entries()) {
      const r = await t.request('POST', '/v1/verifications', { to: `+62812345077${i}` }, { key: null, headers: { authorization: `${scheme} ${t.verifyKey}` } });
      assert.equal(r.status, status, `${scheme} → ${r.text}`);
    }
  });

  it('serves health, readiness and an OpenAPI document listing every route', async () => {
    assert.equal((await t.request('GET', '/healthz', undefined, { key: null })).body.status, 'ok');
    assert.equal((await t.request('GET', '/readyz', undefined, { key: null })).body.status, 'ready');
    const doc = (await t.request('GET', '/openapi.json', undefined, { key: null })).body;
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/v1/verifications', '/v1/verifications/check', '/v1/verifications/{id}', '/v1/verifications/{id}/cancel', '/healthz', '/readyz']) {
      assert.ok(doc.paths[p], `${p} in OpenAPI`);
    }
    assert.equal(doc.paths['/v1/verifications'].post.requestBody.content['application/json'].schema.properties.to.type, 'string');
  });
});

describe('concurrency is exact', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('50 parallel wrong checks evaluate at most 5; 20 parallel correct checks approve once', async () => {
    const to = '+6281234567894';
    const s = await t.request('POST', '/v1/verifications', { to, client: client('36.72.11.1') });
    const code = t.lastCode(to)!;
    const wrong = code === '999999' ? '888888' : '999999';
    const results = await Promise.all(Array.from({ length: 50 }, () => t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong })));
    const evaluated = results.filter((r) => r.status === 200);
    assert.equal(evaluated.length, 5);
    assert.ok(results.every((r) => r.status === 200 || r.status === 423), results.map((r) => r.status).join(','));
    const v = await t.ctx.store.getVerification(s.body.id);
    assert.equal(v?.attempts, 5);

    const to2 = '+6281234567895';
    const s2 = await t.request('POST', '/v1/verifications', { to: to2, client: client('36.72.11.2') });
    const code2 = t.lastCode(to2)!;
    const approvals = await Promise.all(Array.from({ length: 20 }, () => t.request('POST', '/v1/verifications/check', { id: s2.body.id, code: code2 })));
    assert.equal(approvals.filter((r) => r.body?.status === 'approved').length, 1);
  });
});

describe('delivery failures', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  /** A first send to `to` that the provider takes: its verification and the code the user holds. */
  const sentOnce = async (to: string, ip: string) => {
    t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
    const first = await t.request('POST', '/v1/verifications', { to, client: client(ip) });
    assert.equal(first.status, 201, first.text);
    return { first, code: t.lastCode(to)! };
  };

  it('retries once, then marks the verification failed and answers 502 without the code', async () => {
    t.receiver.setHandler(() => ({ status: 503, json: { error: 'provider down' } }));
    const before = t.receiver.requests.length;
    const r = await t.request('POST', '/v1/verifications', { to: '+6281234567899', client: client('36.72.12.1') });
    assert.equal(r.status, 502);
    assert.equal(r.body.error.code, 'delivery_failed');
    assert.equal(r.headers.get('retry-after'), '30', 'the cooldown before the next attempt');
    assert.equal(t.receiver.requests.length - before, 2, 'one try and one retry');
    const events = await t.ctx.store.queryEvents({ type: 'send.failed', limit: 5 });
    assert.equal(events.length, 1);
    const id = (events[0]!.data as { verificationId: string }).verificationId;
    assert.equal(r.body.error.verificationId, id, 'the answer names the failed verification');
    assert.equal((await t.ctx.store.getVerification(id))?.status, 'failed');
    const code = (t.receiver.requests.at(-1)!.json as { code: string }).code;
    assert.ok(!JSON.stringify(events).includes(code), 'the audit event does not contain the code');
  });

  it('a resend whose delivery fails leaves the verification pending: the code delivered before still works', async () => {
    const to = '+6281234567898';
    const { first, code: delivered } = await sentOnce(to, '36.72.12.2');
    t.clock.advance(31_000);
    t.receiver.setHandler(() => ({ status: 500, json: { error: 'provider blip' } }));
    const resend = await t.request('POST', '/v1/verifications', { to, client: client('36.72.12.2') });
    assert.equal(resend.status, 502, resend.text);
    assert.equal(resend.headers.get('retry-after'), '60', 'the cooldown grows with the attempts');
    assert.equal(resend.body.error.verificationId, first.body.id, 'the verification, still pending');
    t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
    assert.equal((await t.request('GET', `/v1/verifications/${first.body.id}`)).body.status, 'pending');
    const failed = await t.ctx.store.queryEvents({ type: 'send.failed', number: to, limit: 5 });
    assert.deepEqual(failed.map((e) => [e.data?.verificationId, e.data?.resend]), [[first.body.id, true]]);
    const ok = await t.request('POST', '/v1/verifications/check', { to, code: delivered });
    assert.deepEqual(outcome(ok.body), { status: 'approved' });
  });

  it('failed resends withdraw their own codes: after two in a row (an outage longer than the cooldown) the delivered code still works', async () => {
    const to = '+6281234567897';
    const { first, code: delivered } = await sentOnce(to, '36.72.12.3');
    t.receiver.setHandler(() => ({ status: 500, json: { error: 'outage' } }));
    try {
      for (const wait of [31_000, 61_000]) {
        t.clock.advance(wait);
        const r = await t.request('POST', '/v1/verifications', { to, client: client('36.72.12.3') });
        assert.equal(r.status, 502, r.text);
      }
    } finally {
      t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
    }
    const v = (await t.ctx.store.getVerification(first.body.id))!;
    assert.equal(v.codes.length, 1, 'only the delivered code is kept');
    assert.equal(v.sends, 3, 'the attempts still count');
    const ok = await t.request('POST', '/v1/verifications/check', { id: first.body.id, code: delivered });
    assert.deepEqual(outcome(ok.body), { status: 'approved' });
  });
});
