/**
 * How many Redis round trips a request waits for, counted where they happen: the writes on the ioredis
 * connection's socket while one request runs at a time. With auto-pipelining, calls issued together leave in
 * one write and share one round trip; calls made one after the other each wait for their own. The service
 * issues independent calls together (src/service/verifications.ts); a change that serialises them again makes
 * these counts grow. docs/benchmarks.md quotes the same figures.
 */
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { dropRedisPrefix } from '../helpers/every-store.ts';
import { RedisStore } from '../../src/store/redis.ts';

await describeWithService('redis', 'Redis round trips per request', (redisUrl) => {
  let t: TestApp;
  let store: RedisStore;
  let writes = 0;
  const prefix = `otps-test:${randomTag()}:`;

  before(async () => {
    store = new RedisStore(redisUrl, { prefix });
    await store.ping();
    try {
      t = await startTestApp({ store });
    } catch (err) {
      await store.close();
      throw err;
    }
    const stream = (store.redis as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
    const write = stream.write.bind(stream);
    stream.write = (...a: unknown[]) => {
      writes++;
      return write(...a);
    };
  });

  after(async () => {
    // After the app has closed: its shutdown still writes settings (throttle state) under the prefix.
    await t.close();
    await dropRedisPrefix(redisUrl, prefix);
  });

  /** Socket writes while `fn` runs (one request at a time, so they are its round trips). */
  async function count(fn: () => Promise<void>): Promise<number> {
    const before = writes;
    await fn();
    return writes - before;
  }

  /** The fewest of three requests alike, so that a periodic task's write during one cannot count. */
  async function fewest(run: (i: number) => Promise<number>): Promise<number> {
    let min = Infinity;
    for (let i = 0; i < 3; i++) min = Math.min(min, await run(i));
    return min;
  }

  const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });
  const sent: { id: string; to: string }[] = [];
  const post = async (to: string, ip: string) => {
    const r = await t.request('POST', '/v1/verifications', { to, client: client(ip) });
    assert.equal(r.status, 201, r.text);
    sent.push({ id: r.body.id, to: r.body.to });
  };

  it('an allowed send from an IP that asked for the same country before: 3; a resend: 4', async () => {
    // [one-time tokens + observation + pending verification], [the send limits + the verification + its
    // journal entry] (one script: src/service/journal.ts), [audit event + SMS-pumping tally]. (A valid API key
    // costs no store call: src/http/auth.ts.)
    const n = await fewest(async (i) => {
      const ip = `36.72.${20 + i}.9`;
      await post(`+62812345${i}0001`, ip);
      return count(() => post(`+62813555${i}0002`, ip));
    });
    assert.equal(n, 3);
    // A resend after the cooldown: its limits, then its code (and journal entry) on the pending verification.
    t.clock.advance(61_000);
    const resend = await fewest((i) => count(() => post(`+62813555${i}0002`, `36.72.${20 + i}.9`)));
    assert.equal(resend, 4);
  });

  it('an allowed send: 4 (3 plus recording the IP\'s first country of the day); an approved check: 5; a denied one: 4', async () => {
    const send = await fewest((i) => count(() => post(`+62815777${i}0003`, `36.73.${30 + i}.9`)));
    assert.equal(send, 4);

    // The verification, its failure counters, [the attempt + the journal entry], [wrong-code counters + audit].
    const denied = await fewest((i) =>
      count(async () => {
        const v = sent[i]!;
        const code = t.lastCode(v.to)!;
        const r = await t.request('POST', '/v1/verifications/check', { id: v.id, code: code === '000000' ? '111111' : '000000' });
        assert.equal(r.body.status, 'denied', r.text);
      }),
    );
    assert.equal(denied, 4);

    // … [the attempt + the journal entry], the approval, [trust counters + failure reset + audit + SMS-pumping tally].
    const approved = await fewest((i) =>
      count(async () => {
        const v = sent[i]!;
        const r = await t.request('POST', '/v1/verifications/check', { id: v.id, code: t.lastCode(v.to) });
        assert.equal(r.body.status, 'approved', r.text);
      }),
    );
    assert.equal(approved, 5);
  });
});
