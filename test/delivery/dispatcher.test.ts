import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createDispatcher, type AttemptLog } from '../../src/delivery/dispatcher.ts';
import type { Channel, OutboundMessage, SendResult, Sender } from '../../src/delivery/sender.ts';
import { createWebhookSender } from '../../src/delivery/webhook.ts';
import { createTwilioSender } from '../../src/delivery/twilio.ts';
import { startFakeServer } from '../helpers/fake-http.ts';

const CODE = '739184';
const msg: OutboundMessage = {
  verificationId: 'v_disp',
  to: '+15551230000',
  channel: 'sms',
  locale: 'en',
  code: CODE,
  text: `Acme: your verification code is ${CODE}.`,
};

type Script = Array<{ ok: true; providerId?: string } | { ok: false; reason: string; retryable: boolean } | 'throw'>;

/** A sender of our own interface that plays back scripted results and counts calls. */
function scripted(name: string, channels: Channel[], script: Script): Sender & { calls: number } {
  const s = {
    name,
    type: 'scripted',
    channels: new Set(channels),
    calls: 0,
    async send(): Promise<SendResult> {
      const step = script[Math.min(s.calls, script.length - 1)];
      s.calls += 1;
      if (step === undefined || step === 'throw') throw new Error(`boom with ${CODE}`);
      return step.ok
        ? { ok: true, sender: name, providerId: step.providerId ?? null }
        : { ok: false, sender: name, reason: step.reason, retryable: step.retryable };
    },
  };
  return s;
}

function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

/** A clock that moves 10 ms at each reading: every attempt then took exactly 10 ms (AttemptLog.ms). */
function ticking(): () => number {
  let t = 0;
  return () => (t += 10);
}

test('retryable failure: wait, retry once, then fall back to the next sender', async () => {
  const a = scripted('a', ['sms'], [{ ok: false, reason: 'a:http_503', retryable: true }]);
  const b = scripted('b', ['sms'], [{ ok: true, providerId: 'B-1' }]);
  const { waits, sleep } = recordingSleep();
  const outcome = await createDispatcher([a, b], { retryDelayMs: 40, sleep, now: ticking() }).deliver(msg);
  assert.deepEqual(outcome, {
    ok: true,
    sender: 'b',
    providerId: 'B-1',
    attempts: [
      { sender: 'a', ok: false, reason: 'a:http_503', retryable: true, ms: 10 },
      { sender: 'a', ok: false, reason: 'a:http_503', retryable: true, ms: 10 },
      { sender: 'b', ok: true, ms: 10 },
    ],
  });
  assert.equal(a.calls, 2);
  assert.equal(b.calls, 1);
  assert.deepEqual(waits, [40]);
});

test('a retry that succeeds stays on the first sender', async () => {
  const a = scripted('a', ['sms'], [{ ok: false, reason: 'a:timeout', retryable: true }, { ok: true, providerId: 'A-2' }]);
  const b = scripted('b', ['sms'], [{ ok: true }]);
  const { waits, sleep } = recordingSleep();
  const outcome = await createDispatcher([a, b], { sleep }).deliver(msg);
  assert.equal(outcome.ok && outcome.sender, 'a');
  assert.equal(outcome.ok && outcome.providerId, 'A-2');
  assert.equal(b.calls, 0);
  assert.deepEqual(waits, [250], 'default retry delay');
});

test('non-retryable failure skips the retry and goes straight to the next sender', async () => {
  const a = scripted('a', ['sms'], [{ ok: false, reason: 'a:21211 invalid number', retryable: false }]);
  const b = scripted('b', ['sms'], [{ ok: true }]);
  const { waits, sleep } = recordingSleep();
  const outcome = await createDispatcher([a, b], { sleep }).deliver(msg);
  assert.equal(outcome.ok, true);
  assert.equal(a.calls, 1);
  assert.deepEqual(waits, []);
  assert.deepEqual(outcome.attempts.map((x) => x.sender), ['a', 'b']);
});

test('all senders fail: ok:false with the last provider reason and the full attempt log', async () => {
  const a = scripted('a', ['sms'], [{ ok: false, reason: 'a:http_500', retryable: true }]);
  const b = scripted('b', ['sms'], [{ ok: false, reason: 'b:21610 unsubscribed', retryable: false }]);
  const { sleep } = recordingSleep();
  const outcome = await createDispatcher([a, b], { sleep, now: ticking() }).deliver(msg);
  assert.deepEqual(outcome, {
    ok: false,
    reason: 'b:21610 unsubscribed',
    attempts: [
      { sender: 'a', ok: false, reason: 'a:http_500', retryable: true, ms: 10 },
      { sender: 'a', ok: false, reason: 'a:http_500', retryable: true, ms: 10 },
      { sender: 'b', ok: false, reason: 'b:21610 unsubscribed', retryable: false, ms: 10 },
    ],
  });
});

test('no sender for the channel', async () => {
  const a = scripted('a', ['sms'], [{ ok: true }]);
  const dispatcher = createDispatcher([a]);
  assert.deepEqual(await dispatcher.deliver({ ...msg, channel: 'voice' }), {
    ok: false,
    reason: 'no_sender_for_channel',
    attempts: [],
  });
  assert.equal(a.calls, 0);
  assert.deepEqual(await createDispatcher([]).deliver(msg), { ok: false, reason: 'no_sender_for_channel', attempts: [] });
});

test('sendersFor filters by channel and keeps configured order', () => {
  const a = scripted('a', ['sms', 'whatsapp'], [{ ok: true }]);
  const b = scripted('b', ['email'], [{ ok: true }]);
  const c = scripted('c', ['sms'], [{ ok: true }]);
  const d = createDispatcher([a, b, c]);
  assert.deepEqual(d.sendersFor('sms').map((s) => s.name), ['a', 'c']);
  assert.deepEqual(d.sendersFor('email').map((s) => s.name), ['b']);
  assert.deepEqual(d.sendersFor('voice'), []);
});

test('senders that do not support the channel are never called', async () => {
  const emailOnly = scripted('mail', ['email'], [{ ok: true }]);
  const sms = scripted('sms', ['sms'], [{ ok: true }]);
  const outcome = await createDispatcher([emailOnly, sms]).deliver(msg);
  assert.equal(outcome.ok && outcome.sender, 'sms');
  assert.equal(emailOnly.calls, 0);
});

test('the code is scrubbed from reasons, attempt logs and the onAttempt hook', async () => {
  const echo = scripted('echo', ['sms'], [{ ok: false, reason: `rejected body: "code ${CODE}" and spaced 739 184`, retryable: false }]);
  const thrower = scripted('thrower', ['sms'], ['throw']);
  const seen: AttemptLog[] = [];
  const outcome = await createDispatcher([echo, thrower], { onAttempt: (e) => seen.push(e), now: ticking() }).deliver(msg);
  assert.equal(outcome.ok, false);
  const everything = JSON.stringify({ outcome, seen });
  assert.doesNotMatch(everything, /739184|739 184/);
  assert.equal(outcome.attempts[0]?.reason, 'rejected body: "code ******" and spaced ******');
  // A throwing sender is contained, recorded as non-retryable and scrubbed too.
  assert.deepEqual(outcome.attempts[1], { sender: 'thrower', ok: false, reason: 'sender_error: boom with ******', retryable: false, ms: 10 });
  assert.equal(thrower.calls, 1);
  assert.equal(seen.length, 2);
});

test('an aborted delivery stops before the next attempt', async () => {
  const controller = new AbortController();
  const a = scripted('a', ['sms'], [{ ok: false, reason: 'a:http_503', retryable: true }]);
  const b = scripted('b', ['sms'], [{ ok: true }]);
  const sleep = async () => controller.abort();
  const outcome = await createDispatcher([a, b], { sleep }).deliver(msg, controller.signal);
  assert.equal(outcome.ok, false);
  assert.equal(!outcome.ok && outcome.reason, 'aborted');
  assert.equal(a.calls, 1);
  assert.equal(b.calls, 0);
});

test('end to end over HTTP: webhook 503 twice, then fall back to Twilio', async () => {
  const hook = await startFakeServer(() => ({ status: 503, body: `upstream said ${CODE}` }));
  const twilio = await startFakeServer(() => ({ status: 201, json: { sid: 'SMok', status: 'queued' } }));
  after(async () => {
    await hook.close();
    await twilio.close();
  });
  const senders = [
    createWebhookSender({ name: 'gateway', url: hook.url, secret: 'whsec_test_0123456789abcdef' }),
    createTwilioSender({ accountSid: `AC${'a'.repeat(32)}`, authToken: 't', from: '+15550001111', baseUrl: twilio.url }),
  ];
  const { waits, sleep } = recordingSleep();
  const outcome = await createDispatcher(senders, { retryDelayMs: 10, sleep }).deliver(msg);
  assert.equal(outcome.ok, true);
  assert.equal(outcome.ok && outcome.sender, 'twilio');
  assert.equal(outcome.ok && outcome.providerId, 'SMok');
  assert.equal(hook.requests.length, 2);
  assert.equal(twilio.requests.length, 1);
  assert.deepEqual(waits, [10]);
  assert.equal(outcome.attempts[0]?.reason, 'webhook:http_503 upstream said ******');
});

test('no attempt starts after the delivery deadline: the journal can count on a delivery being over', async () => {
  // Each attempt takes 4 minutes of the injected clock; the deadline is 10 minutes after the start.
  let clock = 0;
  const slow = (name: string): Sender & { calls: number } => {
    const s = scripted(name, ['sms'], [{ ok: false, reason: `${name}:timeout`, retryable: true }]);
    const send = s.send.bind(s);
    s.send = async (m, signal) => {
      clock += 4 * 60_000;
      return send(m, signal);
    };
    return s;
  };
  const [a, b, c] = [slow('a'), slow('b'), slow('c')];
  const { sleep } = recordingSleep();
  const outcome = await createDispatcher([a, b, c], { sleep, now: () => clock, deadlineMs: 10 * 60_000 }).deliver(msg);
  // a twice (8 min), b once (12 min: past the deadline), then nothing more.
  assert.deepEqual([a.calls, b.calls, c.calls], [2, 1, 0]);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.ok === false && outcome.reason, 'deadline: b:timeout');
  // The default deadline is what the journal's recovery wait is built on (service/journal.ts).
  const d = slow('d');
  clock = 0;
  await createDispatcher([d, slow('e'), slow('f'), slow('g')], { sleep, now: () => clock }).deliver(msg);
  assert.ok(clock <= 10 * 60_000 + 4 * 60_000, `ended at ${clock}`);
});
