/**
 * Delivery receipts: Twilio status callbacks and webhook-sender receipts are accepted only with a valid
 * signature, only final statuses count, each message counts once, and the delivery rate per country and
 * sender shows in the stats.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, WEBHOOK_SECRET, type TestApp } from '../helpers/app.ts';
import { computeTwilioSignature } from '../../src/delivery/twilio.ts';
import { signWebhookBody } from '../../src/delivery/webhook.ts';
import { client } from './support.ts';

const AUTH_TOKEN = 'twilio-auth-token-for-tests';

describe('delivery receipts', () => {
  let t: TestApp;
  let ip = 0;
  before(async () => {
    t = await startTestApp({
      config: {
        senders: [
          // Codes go out through the webhook (first); the Twilio sender is configured so its callbacks verify.
          { type: 'webhook', url: 'http://127.0.0.1:9/unused', secret: WEBHOOK_SECRET },
          { type: 'twilio', accountSid: `AC${'0'.repeat(32)}`, authToken: AUTH_TOKEN, from: '+15005550006', baseUrl: 'http://127.0.0.1:9' },
        ],
      },
    });
  });
  after(async () => t.close());

  const twilio = (form: Record<string, string>, sig?: string) => {
    const url = `${t.url}/v1/receipts/twilio/twilio`;
    const body = new URLSearchParams(form).toString();
    return fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig ?? computeTwilioSignature(AUTH_TOKEN, url, form) },
      body,
    });
  };
  const webhook = (obj: unknown, secret = WEBHOOK_SECRET, at = t.clock()) => {
    const body = JSON.stringify(obj);
    return t.request('POST', '/v1/receipts/webhook/webhook', body, { key: null, headers: { 'content-type': 'application/json', 'x-otpshield-signature': signWebhookBody(secret, body, at / 1000) } });
  };
  const stats = async (groupBy: string) => (await t.request('GET', `/v1/admin/stats?groupBy=${groupBy}`, undefined, { key: t.adminKey })).body;

  it('Twilio callbacks: signed, final statuses only, once per message', async () => {
    const base = { AccountSid: `AC${'0'.repeat(32)}`, To: '+6281234567890', From: '+15005550006' };
    assert.equal((await twilio({ ...base, MessageSid: 'SM1', MessageStatus: 'sent' })).status, 204, 'intermediate: accepted, not counted');
    assert.equal((await twilio({ ...base, MessageSid: 'SM1', MessageStatus: 'delivered' })).status, 204);
    assert.equal((await twilio({ ...base, MessageSid: 'SM1', MessageStatus: 'delivered' })).status, 204, 'a retried callback');
    assert.equal((await twilio({ ...base, MessageSid: 'SM2', MessageStatus: 'undelivered', ErrorCode: '30003' })).status, 204);
    assert.equal((await twilio({ ...base, To: 'whatsapp:+447400123456', MessageSid: 'SM3', MessageStatus: 'read' })).status, 204);

    const forged = await twilio({ ...base, MessageSid: 'SM4', MessageStatus: 'failed' }, computeTwilioSignature('wrong-token', `${t.url}/v1/receipts/twilio/twilio`, { ...base, MessageSid: 'SM4', MessageStatus: 'failed' }));
    assert.equal(forged.status, 403);
    const tampered = await twilio({ ...base, MessageSid: 'SM5', MessageStatus: 'failed' }, computeTwilioSignature(AUTH_TOKEN, `${t.url}/v1/receipts/twilio/twilio`, { ...base, MessageSid: 'SM5', MessageStatus: 'delivered' }));
    assert.equal(tampered.status, 403);
    assert.equal((await fetch(`${t.url}/v1/receipts/twilio/nosuch`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'MessageSid=SM6' })).status, 404);

    const events = await t.ctx.store.queryEvents({ type: 'delivery.receipt', limit: 10, order: 'asc' });
    assert.deepEqual(events.map((e) => [e.decision, e.country, (e.data as { sender: string }).sender]), [
      ['delivered', 'ID', 'twilio'],
      ['undelivered', 'ID', 'twilio'],
      ['delivered', 'GB', 'twilio'],
    ]);
    const bySender = await stats('sender');
    const tw = bySender.rows.find((r: { key: string }) => r.key === 'twilio');
    assert.deepEqual(tw.receipts, { delivered: 2, undelivered: 1, failed: 0 });
    assert.equal(tw.deliveryRate, 0.6667);
    // A `whatsapp:` address is a WhatsApp message's receipt.
    const byChannel = await stats('channel');
    assert.deepEqual(byChannel.rows.filter((r: { receipts: { delivered: number } }) => r.receipts.delivered > 0).map((r: { key: string; receipts: unknown }) => [r.key, r.receipts]).sort(), [
      ['sms', { delivered: 1, undelivered: 1, failed: 0 }],
      ['whatsapp', { delivered: 1, undelivered: 0, failed: 0 }],
    ]);
  });

  it('webhook receipts: signed with the sender secret, for a known verification', async () => {
    // Sends fail (the webhook URL is unreachable, Twilio too) but the verification exists: receipts can still be checked.
    const s = await t.request('POST', '/v1/verifications', { to: '+6281234567891', client: client(`36.72.40.${++ip}`) });
    assert.equal(s.status, 502, 'delivery failed, as arranged');
    const [v] = await t.ctx.store.queryEvents({ type: 'send.failed', limit: 1 });
    const id = (v!.data as { verificationId: string }).verificationId;

    assert.equal((await webhook({ id, status: 'failed' }, 'not-the-secret-0123456789')).status, 403);
    assert.equal((await webhook({ id, status: 'failed' }, WEBHOOK_SECRET, t.clock() - 3600_000)).status, 403, 'old timestamp: replay refused');
    assert.deepEqual((await webhook({ id, status: 'queued' })).body, { recorded: false, reason: 'not_final' });
    assert.deepEqual((await webhook({ id: 'vf_unknown', status: 'failed' })).body, { recorded: false, reason: 'unknown_verification' });
    assert.deepEqual((await webhook({ id, status: 'failed', providerId: 'p-1' })).body, { recorded: true });
    assert.deepEqual((await webhook({ id, status: 'failed', providerId: 'p-1' })).body, { recorded: false, reason: 'duplicate' });
    assert.equal((await webhook({ status: 'failed' })).status, 400);

    const byCountry = await stats('country');
    const idRow = byCountry.rows.find((r: { key: string }) => r.key === 'ID');
    assert.deepEqual(idRow.receipts, { delivered: 1, undelivered: 1, failed: 1 });
    assert.equal(idRow.deliveryFailures, 1, 'the failed send itself');
  });

  it('a receipt error quoting the message keeps no code and no number (a privacy review found both stored in clear)', async () => {
    const s = await t.request('POST', '/v1/verifications', { to: '+6281234567892', client: client(`36.72.40.${++ip}`) });
    assert.equal(s.status, 502);
    const [v] = await t.ctx.store.queryEvents({ type: 'send.failed', limit: 1 });
    const id = (v!.data as { verificationId: string }).verificationId;
    const head = 'carrier 30007 rejected "your code is 482 913" for +6281234567892 ';
    // The last digit run straddles the 200-character limit: masked before the cut, so no part of it is kept.
    const error = `${head}${'x'.repeat(196 - head.length)}1234567`;
    assert.deepEqual((await webhook({ id, status: 'failed', providerId: 'p-quote', error })).body, { recorded: true });
    const [receipt] = await t.ctx.store.queryEvents({ type: 'delivery.receipt', limit: 1 });
    const stored = (receipt!.data as { error: string }).error;
    assert.equal(stored.length, 200);
    assert.match(stored, /^carrier 30007 rejected "your code is ######" for \+############# x+#+$/, 'shorter numbers stay readable');
    assert.doesNotMatch(stored, /\d{6}|482|913|6281234567892/);
    assert.doesNotMatch(stored, /1234/, 'a run cut by the 200-character limit was masked before the cut');
  });
});
