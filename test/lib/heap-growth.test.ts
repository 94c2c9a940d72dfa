import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { limitHeapGrowth } from '../../src/lib/heap-growth.ts';

describe('limitHeapGrowth', () => {
  it("leaves an operator's own factor alone, in any spelling, from the command line or NODE_OPTIONS", () => {
    for (const argv of [['--heap-growing-percent=30'], ['--heap_growing_percent=30'], ['--max-old-space-size=512', '--heap-growing-percent'], ['--heap-growing-percent']]) {
      assert.equal(limitHeapGrowth(100, argv), false, argv.join(' '));
    }
  });

  it('sets it otherwise (other V8 flags do not count)', () => {
    assert.equal(limitHeapGrowth(100, ['--max-old-space-size=512', '--heap-growing-percentile=3']), true);
  });
  // Its effect (the transient heap under a key-rotating attack) is measured by bench/memory.ts: V8's collection
  // schedule is too nondeterministic for a unit test (a child process counting major GCs with and without the
  // flag overlapped across runs).
});
