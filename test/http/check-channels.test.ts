/**
 * A check by number without a channel looks at every enabled phone channel (a review: a user offered "send it by
 * WhatsApp instead" after an SMS typed the WhatsApp code, and the check by `to` compared it with the SMS
 * verification's, spending an attempt, or answered 404 when only the WhatsApp one was pending).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';

const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'de-DE', elapsedMs: 5400 });

describe('a check by number without a channel', () => {
  let t: TestApp;
  let ip = 0;
  const send = async (to: string, channel: string) => {
    const r = await t.request('POST', '/v1/verifications', { to, channel, client: client(`84.17.20.${++ip}`) });
    assert.equal(r.status, 201, r.text);
    return { id: r.body.id as string, code: t.lastCode(to)! };
  };
  const check = (body: Record<string, unknown>) => t.request('POST', '/v1/verifications/check', body);
  before(async () => {
    t = await startTestApp({ config: { channels: ['sms', 'whatsapp', 'voice'] } });
  });
  after(async () => t.close());

  it('takes the newest pending verification of any phone channel: the WhatsApp code after an SMS', async () => {
    const to = '+4915112340001';
    const sms = await send(to, 'sms');
    t.clock.advance(40_000);
    const wa = await send(to, 'whatsapp');
    assert.notEqual(sms.id, wa.id);
    const wrong = wa.code === '000000' ? '111111' : '000000';
    assert.deepEqual(outcome((await check({ to, code: wrong })).body), { status: 'denied', attemptsLeft: 4 }, 'the attempt is the WhatsApp one\'s');
    const approved = (await check({ to, code: wa.code })).body;
    assert.deepEqual(outcome(approved), { status: 'approved' });
    assert.deepEqual([approved.verification.id, approved.verification.channel], [wa.id, 'whatsapp'], 'the answer names the verification the code was compared with');
    const smsView = (await t.request('GET', `/v1/verifications/${sms.id}`)).body;
    assert.equal(smsView.status, 'pending');
    assert.equal(smsView.attemptsLeft, 5, 'the SMS verification spent nothing');
    // The SMS one is still the number's on its channel, and a check by `to` now finds it.
    assert.deepEqual(outcome((await check({ to, code: sms.code })).body), { status: 'approved' });
  });

  it('an SMS resent after the WhatsApp send is the one checked: its code left last', async () => {
    const to = '+4915112340101';
    await send(to, 'sms');
    t.clock.advance(40_000);
    const wa = await send(to, 'whatsapp');
    t.clock.advance(40_000);
    const resent = await send(to, 'sms');
    assert.deepEqual(outcome((await check({ to, code: resent.code })).body), { status: 'approved' });
    assert.equal((await t.request('GET', `/v1/verifications/${wa.id}`)).body.attemptsLeft, 5, 'nothing spent on the WhatsApp one');
  });

  it('finds a verification pending on WhatsApp only (it was a 404)', async () => {
    const to = '+4915112340006';
    const wa = await send(to, 'whatsapp');
    assert.deepEqual(outcome((await check({ to, code: wa.code })).body), { status: 'approved' });
  });

  it('with a channel, only that channel', async () => {
    const to = '+4915112340007';
    const voice = await send(to, 'voice');
    const r = await check({ to, channel: 'sms', code: voice.code });
    assert.equal(r.status, 404, r.text);
    assert.deepEqual(outcome((await check({ to, channel: 'voice', code: voice.code })).body), { status: 'approved' });
  });
});
