import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { runInNewContext } from 'node:vm';
import { extractParams, solveChallenge, verifySolution } from 'altcha-lib/v1';
import type { OnceStore } from '../../src/signals/form-token.ts';
import { type PowChallenge, createPowChallenge, powDifficulty, powKeys, verifyPow } from '../../src/signals/pow.ts';

function onceStore(): OnceStore {
  const keys = new Map<string, number>();
  return {
    async useOnce(key, ttlMs, now) {
      const until = keys.get(key);
      if (until !== undefined && until > now) return false;
      keys.set(key, now + ttlMs);
      return true;
    },
  };
}

const KEY = 'pow-test-hmac-key';
const T0 = 1_750_000_000_000;
// Small difficulty keeps brute force in the test to milliseconds; the format does not depend on it.
const SMALL = 2_000;

/** Solves like a browser would and encodes like the ALTCHA widget: base64(JSON). */
async function solve(c: PowChallenge): Promise<{ payload: string; number: number }> {
  const solution = await solveChallenge(c.challenge, c.salt, c.algorithm, c.maxnumber).promise;
  assert.ok(solution, 'solver found the number');
  const json = { algorithm: c.algorithm, challenge: c.challenge, number: solution.number, salt: c.salt, signature: c.signature };
  return { payload: Buffer.from(JSON.stringify(json)).toString('base64'), number: solution.number };
}

function reencode(payload: string, patch: Record<string, unknown>): string {
  const obj = JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...obj, ...patch })).toString('base64');
}

test('difficulty levels map to increasing maxnumbers', () => {
  assert.equal(powDifficulty('normal'), 50_000);
  assert.equal(powDifficulty('elevated'), 250_000);
  assert.equal(powDifficulty('high'), 1_000_000);
});

test('challenge has the altcha v1 shape with the expiry inside the salt', async () => {
  const c = await createPowChallenge(KEY, { difficulty: SMALL, now: T0, ttlMs: 120_000, params: { ft: 'abc' } });
  assert.equal(c.algorithm, 'SHA-256');
  assert.equal(c.maxnumber, SMALL);
  assert.match(c.challenge, /^[0-9a-f]{64}$/);
  assert.match(c.signature, /^[0-9a-f]{64}$/);
  assert.equal(c.expiresAt, T0 + 120_000);
  assert.deepEqual(extractParams(c), { expires: String((T0 + 120_000) / 1000), ft: 'abc' });
});

test('solve → solved; replay → reused', async () => {
  const store = onceStore();
  const c = await createPowChallenge(KEY, { difficulty: SMALL, now: T0, ttlMs: 600_000 });
  const { payload } = await solve(c);
  // Same format altcha's own verifier accepts (its expiry check uses the real clock, so skip it here).
  assert.equal(await verifySolution(payload, KEY, false), true);

  const first = await verifyPow(KEY, payload, { now: T0 + 3_000, store, consume: true });
  assert.equal(first.outcome, 'solved');
  const replay = await verifyPow(KEY, payload, { now: T0 + 4_000, store, consume: true });
  assert.equal(replay.outcome, 'reused');
});

test('consume: false does not burn the solution', async () => {
  const store = onceStore();
  const c = await createPowChallenge(KEY, { difficulty: SMALL, now: T0 });
  const { payload } = await solve(c);
  assert.equal((await verifyPow(KEY, payload, { now: T0 + 1, consume: false })).outcome, 'solved');
  assert.equal((await verifyPow(KEY, payload, { now: T0 + 1, consume: false, store })).outcome, 'solved');
  assert.equal((await verifyPow(KEY, payload, { now: T0 + 1, consume: true, store })).outcome, 'solved');
});

test('tampered payloads are invalid', async () => {
  const c = await createPowChallenge(KEY, { difficulty: SMALL, now: T0 });
  const { payload, number } = await solve(c);
  const opts = { now: T0 + 1, consume: false as const };

  assert.equal((await verifyPow(KEY, reencode(payload, { number: number + 1 }), opts)).outcome, 'invalid');
  const sig = c.signature;
  const badSig = (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1);
  assert.equal((await verifyPow(KEY, reencode(payload, { signature: badSig }), opts)).outcome, 'invalid');
  // Pushing the expiry in the salt changes the hash, so it no longer matches the signed challenge.
  const later = c.salt.replace(/expires=\d+/, `expires=${Math.floor(T0 / 1000) + 999_999}`);
  assert.notEqual(later, c.salt);
  assert.equal((await verifyPow(KEY, reencode(payload, { salt: later }), opts)).outcome, 'invalid');
  // A downgrade to SHA-1 is refused outright.
  assert.equal((await verifyPow(KEY, reencode(payload, { algorithm: 'SHA-1' }), opts)).outcome, 'invalid');
  // Another server's key.
  assert.equal((await verifyPow('some-other-key', payload, opts)).outcome, 'invalid');
  for (const junk of ['%%%', Buffer.from('[]').toString('base64'), Buffer.from('{"algorithm":"SHA-256"}').toString('base64'), 'A'.repeat(5000)]) {
    assert.equal((await verifyPow(KEY, junk, opts)).outcome, 'invalid');
  }
  assert.equal((await verifyPow(KEY, '', opts)).outcome, 'missing');
  assert.equal((await verifyPow(KEY, undefined, opts)).outcome, 'missing');
});

test('a tampered submission does not burn the genuine one', async () => {
  const store = onceStore();
  const c = await createPowChallenge(KEY, { difficulty: SMALL, now: T0 });
  const { payload, number } = await solve(c);
  assert.equal((await verifyPow(KEY, reencode(payload, { number: number + 1 }), { now: T0 + 1, store, consume: true })).outcome, 'invalid');
  assert.equal((await verifyPow(KEY, payload, { now: T0 + 2, store, consume: true })).outcome, 'solved');
});

test('expiry follows the injected clock (second resolution, rounded down)', async () => {
  const c = await createPowChallenge(KEY, { difficulty: SMALL, now: T0 + 400, ttlMs: 60_000 });
  // now+ttl = T0+60_400 → stored as whole seconds T0+60_000.
  assert.equal(c.expiresAt, T0 + 60_000);
  const { payload } = await solve(c);
  assert.equal((await verifyPow(KEY, payload, { now: T0 + 59_999, consume: false })).outcome, 'solved');
  const store = onceStore();
  assert.equal((await verifyPow(KEY, payload, { now: T0 + 60_000, store, consume: true })).outcome, 'expired');
});

test('key rotation through powKeys: previous secrets keep verifying', async () => {
  const [oldKey = ''] = powKeys('old-service-secret-aaaaaaaa');
  const c = await createPowChallenge(oldKey, { difficulty: SMALL, now: T0 });
  const { payload } = await solve(c);
  const rotated = powKeys({ current: 'new-service-secret-bbbbbbbb', previous: ['old-service-secret-aaaaaaaa'] });
  assert.equal(rotated.length, 2);
  assert.notEqual(rotated[0], oldKey);
  assert.equal((await verifyPow(rotated, payload, { now: T0 + 1, consume: false })).outcome, 'solved');
  assert.equal((await verifyPow(powKeys('new-service-secret-bbbbbbbb'), payload, { now: T0 + 1, consume: false })).outcome, 'invalid');
  // The PoW key is a derived subkey, never the raw secret.
  assert.notEqual(oldKey, 'old-service-secret-aaaaaaaa');
});

test('difficulty outside the supported range is rejected', async () => {
  await assert.rejects(createPowChallenge(KEY, { difficulty: 0, now: T0 }), RangeError);
  await assert.rejects(createPowChallenge(KEY, { difficulty: 1.5, now: T0 }), RangeError);
  await assert.rejects(createPowChallenge(KEY, { difficulty: 50_000_000, now: T0 }), RangeError);
});

test('the browser worker (web/widget-worker.js) finds a number the server accepts', async () => {
  // Runs the real worker file in a VM context with a minimal `self`, using Node's WebCrypto as the browser's.
  const code = await readFile(new URL('../../web/widget-worker.js', import.meta.url), 'utf8');
  const replies: Array<Record<string, unknown>> = [];
  let notify: () => void = () => {};
  const self: { onmessage: ((e: { data: unknown }) => void) | null; postMessage(m: Record<string, unknown>): void } = {
    onmessage: null,
    postMessage(m) {
      replies.push(m);
      notify();
    },
  };
  runInNewContext(code, { self, crypto: globalThis.crypto, TextEncoder, Uint8Array, Promise, Date, Math, Number, String, Error, parseInt });
  const ask = (data: unknown) =>
    new Promise<Record<string, unknown>>((resolve) => {
      notify = () => resolve(replies[replies.length - 1] ?? {});
      self.onmessage?.({ data });
    });

  const store = onceStore();
  const c = await createPowChallenge(KEY, { difficulty: SMALL, now: T0 });
  const reply = await ask({ challenge: c.challenge, salt: c.salt, algorithm: c.algorithm, max: c.maxnumber, start: 0 });
  assert.equal(reply.type, 'solved');
  // Encoded the way web/widget.js does: btoa(JSON.stringify({...})).
  const payload = Buffer.from(
    JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number: reply.number, salt: c.salt, signature: c.signature }),
    'latin1',
  ).toString('base64');
  assert.equal((await verifyPow(KEY, payload, { now: T0 + 1, store, consume: true })).outcome, 'solved');

  // A range that excludes the answer reports not_found rather than a wrong number.
  const miss = await ask({ challenge: c.challenge, salt: c.salt, algorithm: c.algorithm, max: (reply.number as number) - 1, start: 0 });
  assert.equal(miss.type, 'not_found');
  const bad = await ask({ challenge: 'zz', salt: c.salt, algorithm: 'SHA-1', max: 10 });
  assert.equal(bad.type, 'error');
});

test('the node:crypto recomputation equals altcha-lib on its own challenges (also salts without "&", extra params)', async () => {
  const { createChallenge } = await import('altcha-lib/v1');
  const { powChallengeFor, powSignature } = await import('../../src/signals/pow.ts');
  for (const [i, opts] of [
    { params: { ft: 'abc', x: 'é ü' }, expires: new Date(1_800_000_000_000) },
    { salt: 'no-delimiter' },
    { salt: 'ends-with&' },
    {},
  ].entries()) {
    const key = `key-${i}-ключ`;
    const c = await createChallenge({ algorithm: 'SHA-256', hmacKey: key, maxnumber: 1000, number: 17 + i, ...opts });
    assert.equal(powChallengeFor(c.salt, 17 + i), c.challenge);
    if ('salt' in opts) assert.equal(powChallengeFor(opts.salt!, 17 + i), c.challenge, 'the salt as submitted, before altcha appends "&"');
    assert.equal(powSignature(key, c.challenge), c.signature);
    // And altcha's own verifier accepts what ours accepts.
    const payload = Buffer.from(JSON.stringify({ algorithm: 'SHA-256', challenge: c.challenge, number: 17 + i, salt: c.salt, signature: c.signature })).toString('base64');
    assert.equal(await verifySolution(payload, key, false), true);
  }
});
