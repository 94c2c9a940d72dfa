/**
 * The SQLite counter row text (codec.ts encodeWindowRow / encodeTallyRow / decodeCounterRow): exact round
 * trips on random states, the JSON rows of earlier versions, and the size it was introduced for.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeCounterRow, encodeTallyRow, encodeWindowRow } from '../../src/store/codec.ts';
import { slotMsFor, type WindowState } from '../../src/engine/window.ts';

const T0 = 1_795_000_000_000;

/** A state as the stores build it: increasing slot starts that are multiples of the window's slot length. */
const windowState = (windowMs: number) =>
  fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 10_000 })), { maxLength: 70 }).map((steps) => {
    const slotMs = slotMsFor(windowMs);
    let slot = Math.floor(T0 / slotMs) * slotMs;
    return steps.map(([gap, count]) => [(slot += gap * slotMs), count] as [number, number]);
  });

describe('SQLite counter rows', () => {
  it('a window state round-trips exactly, also when its slots are not multiples of the slot length', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 999, 15_000, 600_000, 86_400_000), fc.integer({ min: 0, max: 3 }), (windowMs, shift) =>
        fc.assert(
          fc.property(windowState(windowMs), (st) => {
            // `shift` moves the slots off the grid (a state written under another window length).
            const state: WindowState = st.map(([s, c]) => [s + shift, c]);
            assert.deepEqual(decodeCounterRow(encodeWindowRow(state, windowMs)), state);
          }),
          { numRuns: 20 },
        ),
      ),
      { numRuns: 40 },
    );
  });

  it('a tally state (some windows empty) round-trips exactly', () => {
    const windowsMs = [15_000, 60_000, 3_600_000, 86_400_000];
    fc.assert(
      fc.property(fc.tuple(...windowsMs.map((w) => fc.oneof(fc.constant([] as WindowState), windowState(w)))), (t) => {
        assert.deepEqual(decodeCounterRow(encodeTallyRow(t, windowsMs)), t);
      }),
      { numRuns: 300 },
    );
  });

  it('reads the JSON rows written by earlier versions', () => {
    const st: WindowState = [[T0, 2], [T0 + 250, 5]];
    assert.deepEqual(decodeCounterRow(JSON.stringify(st)), st);
    assert.deepEqual(decodeCounterRow(JSON.stringify([st, []])), [st, []]);
  });

  it('a full day window takes at most a third of its JSON size', () => {
    const windowMs = 86_400_000;
    const slotMs = slotMsFor(windowMs);
    const base = Math.floor(T0 / slotMs) * slotMs;
    const st: WindowState = Array.from({ length: 60 }, (_, i) => [base + i * slotMs, 100 + i]);
    const text = encodeWindowRow(st, windowMs);
    assert.ok(text.length * 3 <= JSON.stringify(st).length, `${text.length} vs ${JSON.stringify(st).length}`);
  });
});
