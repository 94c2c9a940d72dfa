/**
 * `otp-shield simulate --out DIR [--seed N] [--scale X] [--day YYYY-MM-DD] [--warmup-hours H]`
 *
 * Writes a labelled synthetic day of traffic (src/sim/): DIR/trace.ndjson (replay input), DIR/labels.ndjson
 * (one label per trace line) and DIR/scenarios.json. Replay it with `otp-shield replay` or score it with
 * `npm run bench:effectiveness -- --dir DIR`.
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { ConfigError } from '../../config/load.ts';
import { fileError } from '../errors.ts';
import { DEFAULT_SIM, simulateDay, summarizeDay, writeDay } from '../../sim/simulate.ts';

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('write a labelled synthetic day of traffic (real users and attacks) for replay and benchmarks')
    .requiredOption('-o, --out <dir>', 'output folder (trace.ndjson, labels.ndjson, scenarios.json)')
    .option('--seed <n>', 'random seed (same seed, same day)', String(DEFAULT_SIM.seed))
    .option('--scale <x>', 'multiply every volume (1 = about 60,000 sessions over warm-up and day)', '1')
    .option('--day <date>', 'the simulated UTC day', new Date(DEFAULT_SIM.dayStart).toISOString().slice(0, 10))
    .option('--warmup-hours <h>', 'hours of real traffic before the day, labelled warmup', String(DEFAULT_SIM.warmupHours))
    .action((opts: { out: string; seed: string; scale: string; day: string; warmupHours: string }) => {
      const seed = Number(opts.seed);
      const scale = Number(opts.scale);
      const warmupHours = Number(opts.warmupHours);
      // A day that does not exist (2026-02-30) is refused, not rolled over into the next month.
      const parsed = /^\d{4}-\d{2}-\d{2}$/.test(opts.day) ? Date.parse(`${opts.day}T00:00:00Z`) : NaN;
      const dayStart = Number.isFinite(parsed) && new Date(parsed).toISOString().slice(0, 10) === opts.day ? parsed : NaN;
      if (!Number.isInteger(seed) || seed < 0) throw new ConfigError('--seed must be a non-negative integer');
      if (!(scale > 0 && scale <= 20)) throw new ConfigError('--scale must be in (0, 20]');
      if (!(Number.isFinite(warmupHours) && warmupHours >= 0 && warmupHours <= 168)) throw new ConfigError('--warmup-hours must be 0..168');
      if (!Number.isFinite(dayStart)) throw new ConfigError('--day must be a date like 2026-11-23');
      // --out is a folder (created if missing): refuse a file before the (long) simulation, not after it.
      if (existsSync(opts.out) && !statSync(opts.out).isDirectory()) throw new ConfigError(`--out must be a folder: ${opts.out} is a file`);
      const day = simulateDay({ seed, scale, dayStart, warmupHours });
      try {
        writeDay(opts.out, day);
      } catch (err) {
        throw fileError(err, 'write', opts.out);
      }
      const counts = summarizeDay(day);
      process.stderr.write(`wrote ${day.lines.length} events to ${opts.out}\n`);
      for (const [s, c] of Object.entries(counts).sort()) process.stderr.write(`  ${s.padEnd(26)} sends ${String(c.sends).padStart(6)}  checks ${String(c.checks).padStart(6)}  warm-up ${c.warmup}\n`);
    });
}
