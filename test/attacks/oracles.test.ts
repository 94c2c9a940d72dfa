/**
 * Attack: learn something from how the server answers rather than what it says.
 *  - Does this number have a pending verification? A send to such a number (a resend) and a send to a
 *    fresh number must answer with the same shape and, statistically, in the same time.
 *  - How close was my guess? A wrong code that shares all but one digit with the real one and a wrong code
 *    that shares none must answer the same and take the same time (constant-time comparison of HMACs).
 *
 * This is the one statistical test of the suite. To survive a loaded 2-core machine it interleaves the two
 * kinds of request (ABAB…, then BABA…, so drift and load spikes hit both alike), compares medians (not
 * means: a GC pause or a scheduler hiccup moves a mean, not a median), and allows 5 ms between them — a
 * real oracle (an extra store round trip, a sleep, an early return before the HMAC) costs about that or
 * more per request, while run-to-run noise of the medians here is well under 1 ms.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { parsePolicy } from '../../src/engine/policy.ts';
import { client, freshNumber } from './support.ts';

const N = 150;
const TOLERANCE_MS = 5;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
/** Keys and value types, recursively: what a client can tell apart without reading values. */
const shape = (v: unknown): unknown =>
  v === null || typeof v !== 'object' ? typeof v : Array.isArray(v) ? v.map(shape) : Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x)]));

/** One address per request, each in its own /24, so no IP or subnet limit is involved. */
let ipN = 0;
const nextIp = () => {
  const n = ipN++;
  return `36.${72 + Math.floor(n / 62_500)}.${n % 250}.${(Math.floor(n / 250) % 250) + 1}`;
};

describe('response and timing oracles', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    // Hundreds of sends in a few test-clock seconds would (rightly) trip surge throttling and the pumping
    // detector, whose challenges would then be what we measure. Those layers are tested elsewhere.
    const p = parsePolicy({ throttle: { enabled: false }, pumping: { enabled: false } });
    assert.ok(p.ok, JSON.stringify(p));
    t.ctx.setPolicy(p.policy, 0);
  });
  after(async () => t.close());

  async function timed(method: string, path: string, body: unknown) {
    const t0 = performance.now();
    const r = await t.request(method, path, body);
    return { ms: performance.now() - t0, r };
  }

  /** Runs `a(i)` and `b(i)` alternately, swapping who goes first each round. */
  async function interleave(a: (i: number) => ReturnType<typeof timed>, b: (i: number) => ReturnType<typeof timed>) {
    const A: Awaited<ReturnType<typeof timed>>[] = [];
    const B: Awaited<ReturnType<typeof timed>>[] = [];
    for (let i = 0; i < N; i++) {
      if (i % 2 === 0) {
        A.push(await a(i));
        B.push(await b(i));
      } else {
        B.push(await b(i));
        A.push(await a(i));
      }
    }
    return { A, B };
  }

  const pending: { to: string; id: string }[] = [];

  it('a send does not reveal whether the number has a pending verification', async (tc) => {
    for (let i = 0; i < 20; i++) await t.request('POST', '/v1/verifications', { to: freshNumber(), client: client(nextIp()) }); // warm-up
    for (let i = 0; i < N; i++) {
      const to = freshNumber();
      const r = await t.request('POST', '/v1/verifications', { to, client: client(nextIp()) });
      assert.equal(r.status, 201, r.text);
      pending.push({ to, id: r.body.id });
    }
    t.clock.advance(31_000); // past the first cooldown: a send to a pending number is now a resend
    const { A: withPending, B: without } = await interleave(
      (i) => timed('POST', '/v1/verifications', { to: pending[i]!.to, client: client(nextIp()) }),
      () => timed('POST', '/v1/verifications', { to: freshNumber(), client: client(nextIp()) }),
    );
    for (const x of [...withPending, ...without]) assert.equal(x.r.status, 201, x.r.text);
    assert.deepEqual(shape(withPending[0]!.r.body), shape(without[0]!.r.body), 'same fields, same types');
    assert.deepEqual(new Set(withPending.map((x) => x.r.body.status)), new Set(without.map((x) => x.r.body.status)));
    const [mp, mf] = [median(withPending.map((x) => x.ms)), median(without.map((x) => x.ms))];
    tc.diagnostic(`median send: pending ${mp.toFixed(2)} ms, fresh ${mf.toFixed(2)} ms`);
    assert.ok(Math.abs(mp - mf) < TOLERANCE_MS, `medians differ by ${(mp - mf).toFixed(2)} ms`);
  });

  it('a wrong code does not reveal how close it was', async (tc) => {
    const codesOf = new Map<string, string[]>();
    for (const r of t.receiver.requests) {
      const j = r.json as { to?: string; code?: string };
      if (j.to && j.code) codesOf.set(j.to, [...(codesOf.get(j.to) ?? []), j.code]);
    }
    const guess = (i: number, near: boolean) => {
      const { to, id } = pending[i]!;
      const codes = codesOf.get(to)!;
      const real = codes.at(-1)!;
      // near: the real code with its last digit changed; far: every digit changed. Neither is any valid code.
      const g = near ? real.slice(0, -1) + String((Number(real.at(-1)) + 1) % 10) : [...real].map((d) => String((Number(d) + 5) % 10)).join('');
      assert.ok(!codes.includes(g));
      return timed('POST', '/v1/verifications/check', { id, code: g });
    };
    const { A: near, B: far } = await interleave(
      (i) => guess(i, true),
      (i) => guess(i, false),
    );
    for (const x of [...near, ...far]) assert.equal(x.r.body.status, 'denied', x.r.text);
    assert.deepEqual(shape(near[0]!.r.body), shape(far[0]!.r.body));
    const [mn, mf] = [median(near.map((x) => x.ms)), median(far.map((x) => x.ms))];
    tc.diagnostic(`median check: near ${mn.toFixed(2)} ms, far ${mf.toFixed(2)} ms`);
    assert.ok(Math.abs(mn - mf) < TOLERANCE_MS, `medians differ by ${(mn - mf).toFixed(2)} ms`);
  });
});
