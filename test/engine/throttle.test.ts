import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stepThrottle, type ThrottleState } from '../../src/engine/throttle.ts';
import { DEFAULT_POLICY } from '../../src/engine/policy.ts';

const MIN = 60_000;

/** Feed a scope a 10-minute count once a minute; returns the states over time. */
function simulate(counts: number[], scope = 'country:ID') {
  let s: ThrottleState | null = null;
  const out: { tightened: boolean; change: string | null }[] = [];
  counts.forEach((count, i) => {
    const r = stepThrottle(scope, s, count, DEFAULT_POLICY, i * MIN);
    s = r.state;
    out.push({ tightened: r.state.tightenedSince !== null, change: r.change ? `${r.change.from}->${r.change.to}` : null });
  });
  return out;
}

describe('dynamic throttling', () => {
  it('stays normal under a steady rate', () => {
    assert.ok(simulate(Array(600).fill(300)).every((x) => !x.tightened));
  });

  it('tightens on a surge far above baseline and relaxes after it calms', () => {
    const counts = [...Array(600).fill(200), ...Array(60).fill(1000), ...Array(120).fill(200)];
    const r = simulate(counts);
    const firstTight = r.findIndex((x) => x.tightened);
    assert.equal(firstTight, 600, 'tightens at the first surging minute');
    assert.equal(r[600]!.change, 'normal->tightened');
    const relaxed = r.findIndex((x, i) => i > 660 && !x.tightened);
    assert.ok(relaxed > 660 && relaxed <= 660 + 16, `relaxes after calm (at ${relaxed})`);
    assert.equal(r.filter((x) => x.change !== null).length, 2, 'exactly two state changes');
  });

  it('never tightens below the floor', () => {
    const counts = [...Array(100).fill(1), ...Array(10).fill(90)];
    assert.ok(simulate(counts).every((x) => !x.tightened), 'country floor is 100 per 10 minutes');
  });

  it('freezes the baseline while tightened (an attack does not become normal)', () => {
    let s: ThrottleState | null = null;
    for (let i = 0; i < 600; i++) s = stepThrottle('global', s, 400, DEFAULT_POLICY, i * MIN).state;
    const before = s!.baseline;
    for (let i = 600; i < 900; i++) s = stepThrottle('global', s, 5000, DEFAULT_POLICY, i * MIN).state;
    assert.equal(s!.baseline, before);
    assert.notEqual(s!.tightenedSince, null);
  });
});
