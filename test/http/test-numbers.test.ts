/**
 * Test numbers (`testNumbers` in the configuration): a fixed code for QA and app-store review. Over HTTP:
 * such a number never reaches a sender, its fixed code approves, and any other code is denied.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';

const TEST_NUMBER = '+6281234500001';
const FIXED_CODE = '424242';
const REAL_NUMBER = '+6281234500002';
const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

describe('test numbers over HTTP', () => {
  let t: TestApp;
  before(async () => {
    // Configured in a national spelling: the configuration is normalised like every request.
    t = await startTestApp({ config: { testNumbers: [{ number: '+62 812-3450-0001', code: FIXED_CODE }] } });
  });
  after(async () => t.close());

  it('a real number in the same deployment is delivered (so "nothing delivered" below means something)', async () => {
    const r = await t.request('POST', '/v1/verifications', { to: REAL_NUMBER, client: client('36.72.40.1') });
    assert.equal(r.status, 201, r.text);
    await t.receiver.waitFor(1);
    assert.match(t.lastCode(REAL_NUMBER) ?? '', /^\d{6}$/);
  });

  it('never sends: the receiver gets nothing for the test number', async () => {
    const before = t.receiver.requests.length;
    const r = await t.request('POST', '/v1/verifications', { to: TEST_NUMBER, client: client('36.72.40.2') });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.to, TEST_NUMBER);
    assert.equal(r.body.status, 'pending');
    assert.equal(t.receiver.requests.length, before, 'no delivery request at all');
    assert.equal(t.lastCode(TEST_NUMBER), null);

    const events = await t.ctx.store.queryEvents({ type: 'send', number: TEST_NUMBER, limit: 10 });
    assert.equal(events.length, 1);
    assert.deepEqual(events[0]?.reasons, ['test_number']);
    assert.equal(JSON.stringify(events).includes(FIXED_CODE), false, 'the fixed code is not in the audit trail');
  });

  it('the fixed code approves; a wrong code is denied', async () => {
    const s = await t.request('POST', '/v1/verifications', { to: TEST_NUMBER, client: client('36.72.40.3') });
    assert.equal(s.status, 201, s.text);
    const wrong = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: '000000' });
    assert.equal(wrong.status, 200, wrong.text);
    assert.deepEqual(outcome(wrong.body), { status: 'denied', attemptsLeft: 4 });
    const right = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: FIXED_CODE });
    assert.deepEqual(outcome(right.body), { status: 'approved' });
    const got = await t.request('GET', `/v1/verifications/${s.body.id}`);
    assert.equal(got.body.status, 'approved');
  });

  it('its checks are no traffic: marked in the audit log and left out of the check metrics, like its sends', async () => {
    const checks = async (result: string) => {
      const text = (await t.request('GET', '/metrics', undefined, { key: t.adminKey })).text;
      const m = new RegExp(`^otpshield_checks_total\\{result="${result}"\\} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    const before = { approved: await checks('approved'), denied: await checks('denied') };
    const s = await t.request('POST', '/v1/verifications', { to: TEST_NUMBER, client: client('36.72.40.9') });
    assert.equal(s.status, 201, s.text);
    assert.equal((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: '000000' })).body.status, 'denied');
    assert.equal((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: FIXED_CODE })).body.status, 'approved');
    assert.deepEqual({ approved: await checks('approved'), denied: await checks('denied') }, before);
    const events = await t.ctx.store.queryEvents({ type: 'check', number: TEST_NUMBER, limit: 50 });
    const mine = events.filter((e) => (e.data as { verificationId?: string }).verificationId === s.body.id);
    assert.equal(mine.length, 2);
    for (const e of mine) assert.equal((e.data as { testNumber?: boolean }).testNumber, true);

    // A real number's check still counts (so "unchanged" above means something).
    const real = '+6281234500003';
    const r = await t.request('POST', '/v1/verifications', { to: real, client: client('36.72.40.10') });
    assert.equal(r.status, 201, r.text);
    await t.receiver.waitFor(2);
    assert.equal((await t.request('POST', '/v1/verifications/check', { id: r.body.id, code: t.lastCode(real) })).body.status, 'approved');
    assert.equal(await checks('approved'), before.approved + 1);
  });

  it('checking by number works the same way, and the code is not a wildcard for other numbers', async () => {
    const s = await t.request('POST', '/v1/verifications', { to: TEST_NUMBER, client: client('36.72.40.4') });
    assert.equal(s.status, 201, s.text);
    const wrong = await t.request('POST', '/v1/verifications/check', { to: TEST_NUMBER, code: '123123' });
    assert.equal(wrong.body.status, 'denied');
    const right = await t.request('POST', '/v1/verifications/check', { to: TEST_NUMBER, code: FIXED_CODE });
    assert.deepEqual(outcome(right.body), { status: 'approved' });

    // The real number's pending verification does not accept the test number's code (unless it happens to
    // be the code that was actually sent).
    const sentToReal = t.lastCode(REAL_NUMBER);
    if (sentToReal !== FIXED_CODE) {
      const other = await t.request('POST', '/v1/verifications/check', { to: REAL_NUMBER, code: FIXED_CODE });
      assert.equal(other.body.status, 'denied');
    }
    assert.equal(t.lastCode(TEST_NUMBER), null, 'still nothing delivered to the test number');
  });
});

describe('test email addresses', () => {
  let t: TestApp;
  const TEST_ADDRESS = 'qa.review@gmail.com';
  before(async () => {
    // Configured in another spelling: normalised like the email channel's `to` (Gmail dots, case, +tag).
    t = await startTestApp({ config: { channels: ['sms', 'email'], testNumbers: [{ number: 'QA.Review+store@GMail.com', code: FIXED_CODE }] } });
  });
  after(async () => t.close());

  it('never sends, and its fixed code approves, by id and by any spelling of the address', async () => {
    const before = t.receiver.requests.length;
    const s = await t.request('POST', '/v1/verifications', { to: TEST_ADDRESS, channel: 'email', client: client('36.72.41.1') });
    assert.equal(s.status, 201, s.text);
    assert.equal(s.body.to, 'qareview@gmail.com');
    assert.equal(t.receiver.requests.length, before, 'no delivery request at all');
    const events = await t.ctx.store.queryEvents({ type: 'send', limit: 10 });
    assert.deepEqual(events[0]?.reasons, ['test_number']);
    assert.equal((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: '000000' })).body.status, 'denied');
    assert.deepEqual(outcome((await t.request('POST', '/v1/verifications/check', { to: 'q.a.review@googlemail.com', code: FIXED_CODE })).body), { status: 'approved' });
  });

  it('another address of the same domain is delivered as usual', async () => {
    const r = await t.request('POST', '/v1/verifications', { to: 'someone.else@gmail.com', channel: 'email', client: client('36.72.41.2') });
    assert.equal(r.status, 201, r.text);
    await t.receiver.waitFor(1);
    assert.match(t.lastCode('someoneelse@gmail.com') ?? '', /^\d{6}$/);
  });
});
