import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { computeTwilioSignature, verifyTwilioSignature } from '../../src/delivery/twilio.ts';

// The worked example from Twilio's request-validation documentation and SDK test suites.
const TOKEN = '12345';
const URL = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const PARAMS: Record<string, string> = {
  CallSid: 'CA1234567890ABCDE',
  Caller: '+14158675309',
  Digits: '1234',
  From: '+14158675309',
  To: '+18005551212',
};
const PUBLISHED = 'RSOYDt4T1cUTdK1PDd93/VVr8B8=';

/** Written out from the documented algorithm, independently of the module under test. */
function independent(token: string, url: string, params: Record<string, string>): string {
  const sorted = Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1));
  const data = url + sorted.map(([k, v]) => `${k}${v}`).join('');
  return createHmac('sha1', token).update(data).digest('base64');
}

test('the independent computation reproduces the published vector (sanity check of the test itself)', () => {
  assert.equal(independent(TOKEN, URL, PARAMS), PUBLISHED);
});

test('computeTwilioSignature matches the published vector and is order-independent', () => {
  assert.equal(computeTwilioSignature(TOKEN, URL, PARAMS), PUBLISHED);
  const reversed = Object.fromEntries(Object.entries(PARAMS).reverse());
  assert.equal(computeTwilioSignature(TOKEN, URL, reversed), PUBLISHED);
});

test('verifyTwilioSignature accepts the real signature for a status-callback shaped request', () => {
  const url = 'https://otp.example.com/v1/receipts/twilio';
  const params = { MessageSid: 'SM123', MessageStatus: 'delivered', AccountSid: `AC${'0'.repeat(32)}`, To: '+15551230000' };
  const token = 'live-ish-token';
  const sig = independent(token, url, params);
  assert.equal(verifyTwilioSignature(token, url, params, sig), true);
  assert.equal(verifyTwilioSignature(token, url, { ...params, MessageStatus: 'failed' }, sig), false);
});

test('tampered params, URL, token or signature fail', () => {
  assert.equal(verifyTwilioSignature(TOKEN, URL, PARAMS, PUBLISHED), true);
  assert.equal(verifyTwilioSignature(TOKEN, URL, { ...PARAMS, Digits: '9999' }, PUBLISHED), false);
  assert.equal(verifyTwilioSignature(TOKEN, URL, { ...PARAMS, Extra: 'x' }, PUBLISHED), false);
  assert.equal(verifyTwilioSignature(TOKEN, `${URL}&x=1`, PARAMS, PUBLISHED), false);
  assert.equal(verifyTwilioSignature('54321', URL, PARAMS, PUBLISHED), false);
  assert.equal(verifyTwilioSignature(TOKEN, URL, PARAMS, `${PUBLISHED.slice(0, -2)}A=`), false);
  assert.equal(verifyTwilioSignature(TOKEN, URL, PARAMS, 'short'), false);
  assert.equal(verifyTwilioSignature(TOKEN, URL, PARAMS, undefined), false);
  assert.equal(verifyTwilioSignature(TOKEN, URL, PARAMS, ''), false);
});

test('port variants are accepted like Twilio SDKs do (vectors from the twilio-csharp suite)', () => {
  // Signed without the port, received with a custom port (e.g. behind a proxy).
  assert.equal(verifyTwilioSignature(TOKEN, 'https://mycompany.com:1234/myapp.php?foo=1&bar=2', PARAMS, PUBLISHED), true);
  // Signed with the explicit default port.
  assert.equal(verifyTwilioSignature(TOKEN, URL, PARAMS, 'kvajT1Ptam85bY51eRf/AJRuM3w='), true);
  assert.equal(verifyTwilioSignature(TOKEN, 'http://mycompany.com/myapp.php?foo=1&bar=2', PARAMS, '0ZXoZLH/DfblKGATFgpif+LLRf4='), true);
  // Case in the URL is signed as-is, not normalised.
  assert.equal(verifyTwilioSignature(TOKEN, 'https://MyCompany.com/myapp.php?foo=1&bar=2', PARAMS, 'g9IN/x4Cft2g517EjYvEvM/W7LU='), true);
  assert.equal(verifyTwilioSignature(TOKEN, 'https://MyCompany.com/myapp.php?foo=1&bar=2', PARAMS, PUBLISHED), false);
  // Credentials in the URL are part of the signed string.
  assert.equal(
    verifyTwilioSignature(TOKEN, 'http://username:password@MyCompany.com/myapp.php?foo=1&bar=2', PARAMS, 'PJ08CxXr7KLPjEQCTc8LkUSMwSM='),
    true,
  );
});
