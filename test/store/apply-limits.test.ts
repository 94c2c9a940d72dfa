/**
 * codec.ts `applyLimits` / `peekCounts` are window.ts inlined for speed (no pruned copies, shared slot
 * tuples). Here they are checked against the plain composition of window.ts functions, the version every
 * store shipped before: same outcome, same counts, same denials and Retry-After, same states and expiries,
 * on random states (stale, live, slot-aligned or not), random specs (shared keys, cost 0, cost above limit,
 * limit 0, mixed windows) and clocks — and neither may mutate the stored states it was given.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { LimitOutcome, LimitSpec } from '../../src/store/interface.ts';
import { add, countOf, evaluate, expiresAt, prune, slotMsFor, type WindowState } from '../../src/engine/window.ts';
import { applyLimits, peekCounts, type LimitWrite } from '../../src/store/codec.ts';

/** The composed version (codec.ts before it was inlined), kept verbatim as the reference. */
function referenceApply(specs: readonly LimitSpec[], now: number, stored: ReadonlyMap<string, WindowState>): { outcome: LimitOutcome; writes: LimitWrite[] } {
  const counts: number[] = [];
  const denied: LimitOutcome['denied'] = [];
  for (const spec of specs) {
    const cost = spec.cost ?? 1;
    const { result } = evaluate(stored.get(spec.key) ?? [], { limit: spec.limit, windowMs: spec.windowMs, cost }, now);
    counts.push(result.count);
    if (!result.allowed) denied.push({ reason: spec.reason, key: spec.key, retryAfterMs: result.retryAfterMs });
  }
  if (denied.length > 0) return { outcome: { allowed: false, denied, counts }, writes: [] };
  const current = new Map<string, LimitWrite>();
  specs.forEach((spec, i) => {
    const cost = spec.cost ?? 1;
    if (cost === 0) return;
    const before = current.get(spec.key)?.state ?? stored.get(spec.key) ?? [];
    const state = add(prune(before, spec.windowMs, now).map(([s, c]) => [s, c] as [number, number]), spec.windowMs, cost, now);
    current.set(spec.key, { key: spec.key, state, expiresAt: expiresAt(state, spec.windowMs), windowMs: spec.windowMs, spec: current.get(spec.key)?.spec ?? i });
    counts[i] = counts[i]! + cost;
  });
  return { outcome: { allowed: true, denied: [], counts }, writes: [...current.values()] };
}

const NOW0 = 1_800_000_000_000;
const WINDOWS = [1, 7, 59, 60, 61, 1000, 7_777, 60_000, 600_000, 3_600_000, 86_400_000];
const KEYS = ['a', 'b', 'c', 'd'];

/** A stored state as a store could hold it: slots aligned to some window's slot size, oldest first, reaching back past the window. */
const stateArb = fc.record({
  windowMs: fc.constantFrom(...WINDOWS),
  back: fc.integer({ min: 0, max: 3 }),
  gaps: fc.array(fc.record({ gap: fc.integer({ min: 1, max: 40 }), count: fc.integer({ min: 0, max: 4 }) }), { maxLength: 12 }),
});

const caseArb = fc.record({
  dt: fc.integer({ min: 0, max: 10_000_000 }),
  states: fc.dictionary(fc.constantFrom(...KEYS), stateArb),
  specs: fc.array(
    fc.record({
      key: fc.constantFrom(...KEYS),
      limit: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(1_000_000)),
      windowMs: fc.constantFrom(...WINDOWS),
      cost: fc.oneof(fc.constant(undefined), fc.constantFrom(0, 1, 1, 2, 5, 20)),
    }),
    { maxLength: 7 },
  ),
});

type CaseOf<A> = A extends fc.Arbitrary<infer T> ? T : never;

function build(c: CaseOf<typeof caseArb>): { now: number; stored: Map<string, WindowState>; specs: LimitSpec[] } {
  const now = NOW0 + c.dt;
  const stored = new Map<string, WindowState>();
  for (const [key, st] of Object.entries(c.states)) {
    const slotMs = slotMsFor(st.windowMs);
    let t = Math.floor((now - st.windowMs - st.back * slotMs) / slotMs) * slotMs - slotMs;
    const state: WindowState = [];
    for (const g of st.gaps) {
      t += g.gap * slotMs;
      if (t > now) break;
      state.push([t, g.count]);
    }
    stored.set(key, state);
  }
  const specs = c.specs.map((s, i) => ({ reason: `r${i}`, key: s.key, limit: s.limit, windowMs: s.windowMs, ...(s.cost === undefined ? {} : { cost: s.cost }) }));
  return { now, stored, specs };
}

const deepCopy = (m: Map<string, WindowState>) => new Map([...m].map(([k, v]) => [k, v.map(([a, b]) => [a, b] as [number, number])]));

describe('applyLimits (codec.ts) equals the window.ts composition', () => {
  it('same outcome, counts, denials, Retry-After, states and expiries on random inputs; a denial touches nothing', () => {
    let allowed = 0;
    let deniedRuns = 0;
    fc.assert(
      fc.property(caseArb, (c) => {
        const { now, stored, specs } = build(c);
        const snapshot = deepCopy(stored);
        // applyLimits updates the states it is given when it allows (the store owns them): give it a copy.
        const given = deepCopy(stored);
        const got = applyLimits(specs, now, given);
        const want = referenceApply(specs, now, deepCopy(stored));
        assert.deepEqual(got, want);
        if (!got.outcome.allowed) assert.deepEqual(given, snapshot, 'a denial must not change the stored states');
        assert.deepEqual(stored, snapshot);
        assert.deepEqual(peekCounts(specs, now, stored), specs.map((s) => countOf(prune(stored.get(s.key) ?? [], s.windowMs, now))));
        if (got.outcome.allowed) allowed++;
        else deniedRuns++;
      }),
      { numRuns: 5000, seed: 20261126 },
    );
    assert.ok(allowed > 500 && deniedRuns > 500, `both outcomes exercised (${allowed} allowed, ${deniedRuns} denied)`);
  });

  it('applying the returned writes step by step matches the reference over a long run (in-place updates never leak)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ advance: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 5_000, max: 4_000_000 })), pick: fc.array(fc.nat({ max: 4 }), { minLength: 1, maxLength: 4 }) }), { maxLength: 80 }),
        (steps) => {
          const specsAll: LimitSpec[] = [
            { reason: 'a1', key: 'a', limit: 3, windowMs: 600_000 },
            { reason: 'a2', key: 'a', limit: 10, windowMs: 86_400_000 },
            { reason: 'b', key: 'b', limit: 5, windowMs: 60_000, cost: 2 },
            { reason: 'c', key: 'c', limit: 1_000, windowMs: 7_777 },
            { reason: 'd', key: 'd', limit: 2, windowMs: 1000, cost: 0 },
          ];
          const ours = new Map<string, WindowState>();
          const ref = new Map<string, WindowState>();
          let now = NOW0;
          for (const s of steps) {
            now += s.advance;
            const specs = s.pick.map((i) => specsAll[i]!);
            const got = applyLimits(specs, now, ours);
            const want = referenceApply(specs, now, ref);
            assert.deepEqual(got, want);
            for (const w of got.writes) ours.set(w.key, w.state);
            for (const w of want.writes) ref.set(w.key, w.state);
            assert.deepEqual(ours, ref);
          }
        },
      ),
      { numRuns: 500, seed: 7 },
    );
  });

  it('a few fixed edges: window edge, slot edge, Retry-After exactly', () => {
    const W = 600_000;
    const slot = slotMsFor(W);
    const t = Math.floor(NOW0 / slot) * slot;
    const st: WindowState = [[t, 2], [t + slot, 1]];
    const spec: LimitSpec = { reason: 'r', key: 'k', limit: 3, windowMs: W };
    // Last ms in which the first slot still overlaps the window: denied, Retry-After 1 ms.
    const edge = t + slot + W - 1;
    const denied = applyLimits([spec], edge, new Map([['k', st]]));
    assert.deepEqual(denied, referenceApply([spec], edge, new Map([['k', st]])));
    assert.deepEqual(denied.outcome, { allowed: false, denied: [{ reason: 'r', key: 'k', retryAfterMs: 1 }], counts: [3] });
    // Copies: an allowed call updates the state it is given.
    const ok = applyLimits([spec], edge + 1, new Map([['k', st.map(([a, b]) => [a, b] as [number, number])]]));
    assert.deepEqual(ok, referenceApply([spec], edge + 1, new Map([['k', st]])));
    assert.equal(ok.outcome.allowed, true);
    assert.deepEqual(ok.outcome.counts, [2]);
  });
});
