/**
 * `simulate`: a labelled synthetic day of traffic (docs/replay.md, docs/benchmarks.md).
 * Output: `trace.ndjson` (replay input, sorted by time), `labels.ndjson` (one label per trace line, same
 * order) and `scenarios.json` (what was simulated, with the options and counts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from './random.ts';
import { Out, SCENARIOS, attackTraffic, legitTraffic, type Label, type SimOptions } from './scenarios.ts';
import { smsPrices } from './prices.ts';

export const DEFAULT_SIM: SimOptions = {
  seed: 20261123,
  scale: 1,
  dayStart: Date.parse('2026-11-23T00:00:00.000Z'),
  warmupHours: 24,
};

export interface SimDay {
  options: SimOptions;
  /** Trace lines (JSON), sorted by time. */
  lines: string[];
  labels: Label[];
}

export function simulateDay(opts: Partial<SimOptions> = {}): SimDay {
  const o: SimOptions = { ...DEFAULT_SIM, ...opts };
  const root = new Rng(o.seed);
  const out = new Out(o.dayStart);
  legitTraffic(root.fork('legit'), out, o);
  attackTraffic(root.fork('attacks'), out, o);
  // Stable sort: equal times keep generation order (a session's steps stay in order).
  const ev = out.events.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i);
  return { options: o, lines: ev.map(({ e }) => JSON.stringify(e.event)), labels: ev.map(({ e }) => e.label) };
}

export function summarizeDay(d: SimDay): Record<string, { sends: number; checks: number; warmup: number }> {
  const out: Record<string, { sends: number; checks: number; warmup: number }> = {};
  for (const [i, l] of d.labels.entries()) {
    const s = (out[l.scenario] ??= { sends: 0, checks: 0, warmup: 0 });
    if (l.warmup) s.warmup++;
    else if (d.lines[i]!.includes('"type":"send"')) s.sends++;
    else s.checks++;
  }
  return out;
}

export function writeDay(dir: string, d: SimDay): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'trace.ndjson'), d.lines.join('\n') + '\n');
  writeFileSync(join(dir, 'labels.ndjson'), d.labels.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const meta = {
    generator: 'otp-shield simulate',
    options: { ...d.options, dayStart: new Date(d.options.dayStart).toISOString() },
    lines: d.lines.length,
    scenarios: SCENARIOS,
    counts: summarizeDay(d),
    prices: smsPrices(),
  };
  writeFileSync(join(dir, 'scenarios.json'), JSON.stringify(meta, null, 2) + '\n');
}
