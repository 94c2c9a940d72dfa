import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Value } from 'typebox/value';
import { buildSenders, SenderConfigSchema, type SenderConfig } from '../../src/delivery/build.ts';
import { SenderConfigError } from '../../src/delivery/sender.ts';

const SID = `AC${'b'.repeat(32)}`;
const webhook: SenderConfig = { type: 'webhook', name: 'gw', url: 'https://hooks.example.com/otp', secret: 'whsec_test_0123456789abcdef', channels: ['email'] };
const twilio: SenderConfig = { type: 'twilio', accountSid: SID, authToken: 'tok', from: '+15550001111', channels: ['sms', 'whatsapp'], timeoutMs: 3000 };

test('builds every sender type in order with names, types and channels', () => {
  const senders = buildSenders([{ type: 'console' }, { type: 'noop' }, webhook, twilio], 'development', {
    stdout: new PassThrough(),
  });
  assert.deepEqual(
    senders.map((s) => [s.name, s.type, [...s.channels].sort()]),
    [
      ['console', 'console', ['email', 'sms', 'voice', 'whatsapp']],
      ['noop', 'noop', ['email', 'sms', 'voice', 'whatsapp']],
      ['gw', 'webhook', ['email']],
      ['twilio', 'twilio', ['sms', 'whatsapp']],
    ],
  );
});

test('console is refused in production; other senders build there', () => {
  assert.throws(() => buildSenders([twilio, { type: 'console' }], 'production'), SenderConfigError);
  assert.equal(buildSenders([twilio, webhook], 'production').length, 2);
});

test('duplicate names are refused', () => {
  assert.throws(
    () => buildSenders([twilio, { ...twilio, from: '+15550002222' }], 'test'),
    (err: unknown) => err instanceof SenderConfigError && err.sender === 'twilio' && /duplicate/.test(err.message),
  );
  assert.equal(buildSenders([twilio, { ...twilio, name: 'twilio-backup' }], 'test').length, 2);
});

test('an unknown type from unvalidated input is a typed error', () => {
  assert.throws(() => buildSenders([{ type: 'carrier-pigeon' } as unknown as SenderConfig], 'test'), SenderConfigError);
});

test('SenderConfigSchema accepts valid configs', () => {
  for (const config of [{ type: 'console' }, { type: 'noop' }, webhook, twilio, { type: 'twilio', accountSid: SID, authToken: 't', messagingServiceSid: `MG${'c'.repeat(32)}` }]) {
    assert.equal(Value.Check(SenderConfigSchema, config), true, JSON.stringify(config));
  }
});

test('SenderConfigSchema rejects wrong shapes', () => {
  const bad: unknown[] = [
    { type: 'sms-gateway' },
    { type: 'console', extra: 1 },
    { ...webhook, secret: 'short' },
    { ...webhook, url: 'ftp://x' },
    { ...webhook, channels: [] },
    { ...webhook, channels: ['pager'] },
    { ...webhook, channels: ['sms', 'sms'] },
    { ...webhook, timeoutMs: 0 },
    { ...webhook, timeoutMs: 1.5 },
    { ...twilio, accountSid: 'AC123' },
    { ...twilio, authTokn: 'typo' },
    { ...twilio, name: 'has space' },
    { type: 'webhook', url: 'https://x.test' },
  ];
  for (const config of bad) assert.equal(Value.Check(SenderConfigSchema, config), false, JSON.stringify(config));
});
