/**
 * How far V8 lets the JavaScript heap grow before its next full collection.
 *
 * V8 schedules a full (mark-compact) collection when the old generation reaches its live size times a
 * growing factor that it picks from how fast the program allocates — up to 4× for a small heap. An idle
 * instance holds ~35 MB of live objects, so under a key-rotating attack the heap swelled to ~150 MB of mostly
 * garbage between collections and resident memory to 300–325 MB, although it settled back to ~200 MB
 * (bench/memory.ts; docs/benchmarks.md, Memory). A factor of 2 kept that peak at 240–252 MB with no
 * measurable loss of throughput (1.5: 226–243 MB, and check p99 a few ms higher from the more frequent
 * collections). Applied at start-up, unless the operator chose a factor themselves
 * (`node --heap-growing-percent=N`, on the command line or in NODE_OPTIONS).
 */
import v8 from 'node:v8';

export const DEFAULT_HEAP_GROWING_PERCENT = 100;

/** Set V8's heap growing factor to 1 + percent/100 unless the process was started with one; true if set here. */
export function limitHeapGrowth(percent = DEFAULT_HEAP_GROWING_PERCENT, argv: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]): boolean {
  if (argv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${Math.max(1, Math.floor(percent))}`);
  return true;
}
