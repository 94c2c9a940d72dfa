import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signWebhookBody, verifyWebhookSignature } from '../../src/delivery/webhook.ts';

const SECRET = 'whsec_test_0123456789abcdef';
const BODY = '{"id":"v_1","to":"+15551230000","channel":"sms","message":"hi","code":"482913","locale":"en"}';
const T = 1_750_000_000;

// Computed here from the documented scheme, not via the module under test.
function reference(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
}

test('signWebhookBody produces t=<seconds>,v1=<hex HMAC-SHA256 of "t.body">', () => {
  assert.equal(signWebhookBody(SECRET, BODY, T), `t=${T},v1=${reference(SECRET, T, BODY)}`);
  // Fractional seconds are floored, never leaked as a float into the header.
  assert.equal(signWebhookBody(SECRET, BODY, T + 0.9), `t=${T},v1=${reference(SECRET, T, BODY)}`);
});

test('a valid signature verifies, for string and byte bodies', () => {
  const header = signWebhookBody(SECRET, BODY, T);
  assert.deepEqual(verifyWebhookSignature(SECRET, BODY, header, T + 10), { ok: true, timestamp: T });
  assert.deepEqual(verifyWebhookSignature(SECRET, Buffer.from(BODY), header, T), { ok: true, timestamp: T });
});

test('tampered body, wrong secret and altered timestamp are rejected', () => {
  const header = signWebhookBody(SECRET, BODY, T);
  const tamperedBody = BODY.replace('+15551230000', '+15559999999');
  assert.deepEqual(verifyWebhookSignature(SECRET, tamperedBody, header, T), { ok: false, reason: 'bad_signature' });
  assert.deepEqual(verifyWebhookSignature(`${SECRET}x`, BODY, header, T), { ok: false, reason: 'bad_signature' });
  // Moving the timestamp forward (to dodge the replay window) breaks the MAC.
  const shifted = header.replace(`t=${T}`, `t=${T + 1000}`);
  assert.deepEqual(verifyWebhookSignature(SECRET, BODY, shifted, T + 1000), { ok: false, reason: 'bad_signature' });
});

test('a replay with an old timestamp is rejected even though the MAC is valid', () => {
  const header = signWebhookBody(SECRET, BODY, T);
  assert.equal(verifyWebhookSignature(SECRET, BODY, header, T + 300).ok, true);
  assert.deepEqual(verifyWebhookSignature(SECRET, BODY, header, T + 301), {
    ok: false,
    reason: 'timestamp_out_of_tolerance',
  });
  // Timestamps too far in the future are as suspicious as old ones.
  assert.equal(verifyWebhookSignature(SECRET, BODY, header, T - 301).ok, false);
  // Custom tolerance.
  assert.equal(verifyWebhookSignature(SECRET, BODY, header, T + 60, 30).ok, false);
  assert.equal(verifyWebhookSignature(SECRET, BODY, header, T + 20, 30).ok, true);
});

test('malformed or missing headers are rejected with typed reasons', () => {
  const v1 = reference(SECRET, T, BODY);
  assert.deepEqual(verifyWebhookSignature(SECRET, BODY, undefined, T), { ok: false, reason: 'missing_header' });
  for (const header of [`v1=${v1}`, `t=${T}`, `t=abc,v1=${v1}`, `t=${T},v1=nothex`, 'garbage', `t=${T},t=${T},v1=${v1}`]) {
    assert.deepEqual(verifyWebhookSignature(SECRET, BODY, header, T), { ok: false, reason: 'malformed_header' }, header);
  }
});

test('several v1 entries (secret rotation): any matching one is accepted', () => {
  const wrong = reference('another-secret-xxxxxxxx', T, BODY);
  const right = reference(SECRET, T, BODY);
  assert.equal(verifyWebhookSignature(SECRET, BODY, `t=${T},v1=${wrong},v1=${right}`, T).ok, true);
  assert.equal(verifyWebhookSignature(SECRET, BODY, `t=${T},v1=${wrong}`, T).ok, false);
  // Upper-case hex from a sloppy signer still verifies.
  assert.equal(verifyWebhookSignature(SECRET, BODY, `t=${T},v1=${right.toUpperCase()}`, T).ok, true);
});
