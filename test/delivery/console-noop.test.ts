import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createConsoleSender } from '../../src/delivery/console.ts';
import { createNoopSender } from '../../src/delivery/noop.ts';
import { SenderConfigError, type OutboundMessage } from '../../src/delivery/sender.ts';

const msg: OutboundMessage = {
  verificationId: 'v_dev',
  to: '+15551230000',
  channel: 'whatsapp',
  locale: null,
  code: '551177',
  text: 'Acme: your verification code is 551177.\n\n@acme.test #551177',
};

function capture() {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return { stream, output: () => chunks.join('') };
}

test('console sender is refused in production with a typed error', () => {
  assert.throws(
    () => createConsoleSender({ env: 'production' }),
    (err: unknown) => err instanceof SenderConfigError && err.kind === 'sender_config' && /production/.test(err.message),
  );
});

test('console sender prints a clearly marked block with every field, for all channels', async () => {
  const { stream, output } = capture();
  const sender = createConsoleSender({ env: 'development', stdout: stream });
  assert.deepEqual([...sender.channels].sort(), ['email', 'sms', 'voice', 'whatsapp']);
  const result = await sender.send(msg);
  assert.equal(result.ok, true);
  assert.equal(result.sender, 'console');
  const out = output();
  assert.match(out, /CONSOLE SENDER \(development only: nothing was sent\)/);
  assert.match(out, /id: +v_dev/);
  assert.match(out, /to: +\+15551230000/);
  assert.match(out, /channel: +whatsapp/);
  assert.match(out, /locale: +-/);
  assert.match(out, /code: +551177/);
  // Multi-line text is kept, indented.
  assert.match(out, /\n {2}@acme\.test #551177\n/);
  // Works in test env too.
  assert.equal(createConsoleSender({ env: 'test', stdout: capture().stream }).type, 'console');
});

test('noop sender reports success without doing anything', async () => {
  const sender = createNoopSender();
  assert.equal(sender.name, 'noop');
  assert.deepEqual(await sender.send(msg), { ok: true, sender: 'noop', providerId: null, detail: 'noop' });
  const smsOnly = createNoopSender({ name: 'bench', channels: ['sms'] });
  assert.deepEqual([...smsOnly.channels], ['sms']);
  assert.throws(() => createNoopSender({ name: 'bad name!' }), SenderConfigError);
});
