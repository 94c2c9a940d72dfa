import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWebhookSender, verifyWebhookSignature } from '../../src/delivery/webhook.ts';
import { SenderConfigError, type OutboundMessage } from '../../src/delivery/sender.ts';
import { startFakeServer } from '../helpers/fake-http.ts';

const SECRET = 'whsec_test_0123456789abcdef';
const NOW_MS = 1_750_000_123_456;

const msg: OutboundMessage = {
  verificationId: 'v_abc',
  to: '+15551230000',
  channel: 'sms',
  locale: 'pt-BR',
  code: '482913',
  text: 'App: your code is 482913',
};

const fake = await startFakeServer();
after(() => fake.close());

function sender(extra: { timeoutMs?: number; channels?: ('sms' | 'whatsapp' | 'voice' | 'email')[] } = {}) {
  return createWebhookSender({ name: 'hook', url: `${fake.url}/deliver`, secret: SECRET, now: () => NOW_MS, ...extra });
}

test('posts the documented JSON body with a signature the receiver can verify', async () => {
  fake.requests.length = 0;
  fake.setHandler(() => ({ status: 202, json: { id: 'recv-77' } }));
  const result = await sender().send(msg);
  assert.deepEqual(result, { ok: true, sender: 'hook', providerId: 'recv-77', detail: 'http 202' });

  const req = fake.requests[0];
  assert.ok(req);
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/deliver');
  assert.equal(req.headers['content-type'], 'application/json');
  assert.deepEqual(req.json, {
    id: 'v_abc',
    to: '+15551230000',
    channel: 'sms',
    message: 'App: your code is 482913',
    code: '482913',
    locale: 'pt-BR',
  });
  const t = Math.floor(NOW_MS / 1000);
  assert.equal(req.headers['x-otpshield-timestamp'], String(t));
  const header = req.headers['x-otpshield-signature'];
  assert.equal(typeof header, 'string');
  // Verified over the raw bytes the receiver got, the way a receiver must do it.
  assert.deepEqual(verifyWebhookSignature(SECRET, req.body, header as string, t + 5), { ok: true, timestamp: t });
  assert.equal(verifyWebhookSignature('wrong-secret-wrong-secret', req.body, header as string, t).ok, false);
});

test('a 2xx without a JSON id still succeeds, with a null providerId', async () => {
  fake.setHandler(() => ({ status: 200, body: 'ok' }));
  const result = await sender().send(msg);
  assert.equal(result.ok, true);
  assert.equal(result.ok && result.providerId, null);
});

test('4xx is not retryable, except 408 and 429; 5xx is retryable', async () => {
  const cases: Array<[number, boolean]> = [
    [400, false],
    [401, false],
    [404, false],
    [408, true],
    [429, true],
    [500, true],
    [503, true],
  ];
  for (const [status, retryable] of cases) {
    fake.setHandler(() => ({ status, body: 'nope' }));
    const result = await sender().send(msg);
    assert.equal(result.ok, false, `status ${status}`);
    if (!result.ok) {
      assert.equal(result.retryable, retryable, `status ${status}`);
      assert.equal(result.status, status);
      assert.match(result.reason, new RegExp(`^webhook:http_${status}`));
    }
  }
});

test('redirects are not followed (they would replay the code elsewhere)', async () => {
  fake.requests.length = 0;
  fake.setHandler((req) =>
    req.url === '/deliver' ? { status: 307, headers: { location: `${fake.url}/elsewhere` } } : { status: 200 },
  );
  const result = await sender().send(msg);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.retryable, false);
  assert.deepEqual(
    fake.requests.map((r) => r.url),
    ['/deliver'],
  );
});

test('an error body echoing the code is scrubbed from the reason', async () => {
  fake.setHandler((req) => ({ status: 422, body: `rejected: ${req.body}` }));
  const result = await sender().send(msg);
  assert.equal(result.ok, false);
  if (!result.ok) {
    assert.doesNotMatch(result.reason, /482913/);
    assert.match(result.reason, /\*{6}/);
  }
});

test('timeout is retryable; caller abort is not', async () => {
  fake.setHandler(() => ({ status: 200, delayMs: 5_000 }));
  const timedOut = await sender({ timeoutMs: 50 }).send(msg);
  assert.deepEqual(timedOut, { ok: false, sender: 'hook', reason: 'webhook:timeout', retryable: true });

  const controller = new AbortController();
  const before = fake.requests.length;
  const pending = sender().send(msg, controller.signal);
  await fake.waitFor(before + 1); // the server holds the request: abort mid-flight
  controller.abort();
  assert.deepEqual(await pending, { ok: false, sender: 'hook', reason: 'webhook:aborted', retryable: false });
});

test('network failure (connection dropped) is retryable', async () => {
  fake.setHandler(() => ({ hangUp: true }));
  const result = await sender().send(msg);
  assert.equal(result.ok, false);
  if (!result.ok) {
    assert.equal(result.retryable, true);
    assert.match(result.reason, /^webhook:network/);
  }
});

test('channels are configurable and unsupported channels are refused without a request', async () => {
  fake.requests.length = 0;
  const s = sender({ channels: ['email'] });
  assert.deepEqual([...s.channels], ['email']);
  const result = await s.send(msg);
  assert.deepEqual(result, { ok: false, sender: 'hook', reason: 'unsupported_channel:sms', retryable: false });
  assert.equal(fake.requests.length, 0);
  assert.deepEqual([...sender().channels].sort(), ['email', 'sms', 'voice', 'whatsapp']);
});

test('bad config is refused at construction', () => {
  assert.throws(() => createWebhookSender({ url: 'ftp://x', secret: SECRET }), SenderConfigError);
  assert.throws(() => createWebhookSender({ url: 'not a url', secret: SECRET }), SenderConfigError);
  assert.throws(() => createWebhookSender({ url: fake.url, secret: 'short' }), SenderConfigError);
  assert.throws(() => createWebhookSender({ url: fake.url, secret: SECRET, channels: [] }), SenderConfigError);
  assert.throws(() => createWebhookSender({ url: fake.url, secret: SECRET, timeoutMs: 0 }), SenderConfigError);
});
