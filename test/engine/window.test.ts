import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { add, evaluate, expiresAt, slotMsFor, type WindowState } from '../../src/engine/window.ts';

/** Drive one key through the rule with explicit times; returns which requests were allowed. */
function run(times: number[], limit: number, windowMs: number): boolean[] {
  let state: WindowState = [];
  return times.map((now) => {
    const { pruned, result } = evaluate(state, { limit, windowMs, cost: 1 }, now);
    state = result.allowed ? add(pruned, windowMs, 1, now) : pruned;
    return result.allowed;
  });
}

describe('bucketed sliding window', () => {
  const W = 600_000; // 10 minutes
  const slot = slotMsFor(W);

  it('allows exactly `limit` events in a window', () => {
    assert.deepEqual(run([0, 1, 2, 3, 4], 3, W), [true, true, true, false, false]);
  });

  it('never allows more than `limit` in ANY window, also across a fixed-window edge', () => {
    // A fixed window would allow 3 at 9:59 and 3 more at 10:01.
    const t0 = 10 * W - 1000;
    const allowed = run([t0, t0 + 1, t0 + 2, t0 + 2000, t0 + 3000, t0 + 4000], 3, W);
    assert.deepEqual(allowed, [true, true, true, false, false, false]);
  });

  it('frees capacity exactly when retryAfterMs says, never earlier', () => {
    let state: WindowState = [];
    const start = 1_000_000;
    for (let i = 0; i < 3; i++) {
      const { pruned } = evaluate(state, { limit: 3, windowMs: W, cost: 1 }, start + i);
      state = add(pruned, W, 1, start + i);
    }
    const denied = evaluate(state, { limit: 3, windowMs: W, cost: 1 }, start + 10);
    assert.equal(denied.result.allowed, false);
    const wait = denied.result.retryAfterMs;
    assert.ok(wait > 0 && wait <= W + slot, `retryAfter ${wait}`);
    assert.equal(evaluate(state, { limit: 3, windowMs: W, cost: 1 }, start + 10 + wait - 1).result.allowed, false);
    assert.equal(evaluate(state, { limit: 3, windowMs: W, cost: 1 }, start + 10 + wait).result.allowed, true);
  });

  it('is conservative by at most one slot (1/60 of the window)', () => {
    const allowed = run([0, W + slot - 1, W + slot], 1, W);
    assert.deepEqual(allowed, [true, false, true]);
  });

  it('limit 0 denies everything; cost above the limit is never allowed', () => {
    assert.deepEqual(run([0, 1], 0, W), [false, false]);
    const r = evaluate([], { limit: 2, windowMs: W, cost: 3 }, 0);
    assert.equal(r.result.allowed, false);
    assert.equal(r.result.retryAfterMs, W);
  });

  it('state can be forgotten once its newest slot has left the window', () => {
    const s = add([], W, 1, 5000);
    assert.equal(expiresAt(s, W), Math.floor(5000 / slot) * slot + slot + W);
    assert.deepEqual(evaluate(s, { limit: 1, windowMs: W, cost: 1 }, expiresAt(s, W)).pruned, []);
  });

  it('randomised: no window of length W ever holds more than the limit', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 20; round++) {
      const limit = 1 + Math.floor(rnd() * 5);
      const times: number[] = [];
      let t = 0;
      for (let i = 0; i < 300; i++) times.push((t += Math.floor(rnd() * 60_000)));
      const allowed = times.filter((_, i) => run(times, limit, W)[i]);
      for (let i = 0; i < allowed.length; i++) {
        const inWindow = allowed.filter((x) => x > allowed[i]! - W && x <= allowed[i]!).length;
        assert.ok(inWindow <= limit, `round ${round}: ${inWindow} > ${limit}`);
      }
    }
  });
});
