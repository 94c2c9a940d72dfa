/**
 * `npm run bench`: the performance suite (docs/benchmarks.md).
 *
 *   node --import tsx bench/run.ts [--quick] [--only limiter,send,check,redis,http,memory,replay] [--profile]
 *                                  [--variants shipped,full,memory,redis] [--out DIR]
 *
 * Sections: limiter (OTP Shield's rate-limit layer vs rate-limiter-flexible), http (send / check / redis:
 * OTP Shield vs a bare Fastify route, servers in child processes), memory (RSS under a million
 * key-rotating attackers, twice), replay (bench/replay.ts, when present). Every comparison is measured in
 * the same run as its baseline, repeated and interleaved; numbers are min / median / max of repetitions.
 *
 * `--quick` shrinks every count and duration so the whole suite runs in a few minutes (CI); its numbers
 * are noisier and its memory phases far smaller than a million. Results: a table on stdout,
 * `<out>/latest.json` and `<out>/latest.md` (a markdown section for docs/benchmarks.md).
 * Everything runs on 127.0.0.1 and stops by itself; child processes are stopped by their own pids.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runLimiter, type LimiterResult } from './limiter.ts';
import { runHttp, type HttpResult } from './http.ts';
import { runMemory, type MemorySuiteResult } from './memory.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    profile: { type: 'boolean', default: false },
    out: { type: 'string' },
    /** HTTP only: measure these server variants instead of the defaults (see VARIANTS in bench/http.ts). */
    variants: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node --import tsx bench/run.ts [--quick] [--only limiter,send,check,redis,http,memory,replay] [--profile] [--variants shipped,full,memory,redis] [--out DIR]');
  process.exit(0);
}
const SECTIONS = ['limiter', 'send', 'check', 'redis', 'http', 'memory', 'replay'] as const;
const only = new Set((values.only ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean));
for (const o of only) {
  if (!(SECTIONS as readonly string[]).includes(o)) {
    console.error(`unknown --only "${o}"; known: ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
}
const want = (s: string) => only.size === 0 || only.has(s) || (s === 'http' && ['send', 'check', 'redis'].some((x) => only.has(x)));
const quick = values.quick;
const outDir = values.out ?? here('./results');
const log = (s: string) => process.stderr.write(`${s}\n`);

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here('..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

const cpus = os.cpus();
const meta = {
  date: new Date().toISOString(),
  command: `node --import tsx bench/run.ts${quick ? ' --quick' : ''}${only.size ? ` --only ${[...only].join(',')}` : ''}${values.profile ? ' --profile' : ''}${values.variants ? ` --variants ${values.variants}` : ''}`,
  commit: gitCommit(),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`,
  cpu: `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`,
  memoryGB: Math.round(os.totalmem() / 1024 ** 3),
  /** Load averages when the run started and ended: the machine is shared, and this says how much. */
  loadBefore: os.loadavg().map((x) => Math.round(x * 100) / 100),
  loadAfter: [] as number[],
  quick,
  seconds: 0,
};

interface ReplayResult {
  ran: boolean;
  eventsPerSecond?: number;
  events?: number;
  target: number;
  met?: boolean;
  note?: string;
}

/** bench/replay.ts belongs to the replay work; run it in its own process when it exists. */
async function runReplay(): Promise<ReplayResult> {
  const file = here('./replay.ts');
  if (!existsSync(file)) return { ran: false, target: 20_000, note: 'bench/replay.ts not present' };
  const events = quick ? 20_000 : 200_000;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, '--events', String(events)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.trim().startsWith('{'));
      if (code !== 0 || !line) return resolve({ ran: false, target: 20_000, note: `bench/replay.ts failed (${code}): ${err.trim().split('\n').slice(-3).join(' | ')}` });
      try {
        const j = JSON.parse(line) as { eventsPerSecond: number; events: number };
        resolve({ ran: true, eventsPerSecond: j.eventsPerSecond, events: j.events, target: 20_000, met: j.eventsPerSecond >= 20_000 });
      } catch {
        resolve({ ran: false, target: 20_000, note: `unexpected output from bench/replay.ts: ${line.slice(0, 200)}` });
      }
    });
  });
}

// ---------------------------------------------------------------- run

const started = performance.now();
const results: { limiter?: LimiterResult; http?: HttpResult; memory?: MemorySuiteResult; replay?: ReplayResult } = {};
if (want('limiter')) {
  log('== limiter');
  results.limiter = await runLimiter({ quick, log });
}
if (want('http')) {
  log('== http');
  const httpOnly = new Set([...only].filter((s) => ['send', 'check', 'redis'].includes(s)));
  const variants = (values.variants ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  results.http = await runHttp({ quick, only: httpOnly, profile: values.profile, variants, log });
}
if (want('memory')) {
  log('== memory');
  results.memory = await runMemory({ quick, log });
}
if (want('replay')) {
  log('== replay');
  results.replay = await runReplay();
}
meta.loadAfter = os.loadavg().map((x) => Math.round(x * 100) / 100);
meta.seconds = Math.round((performance.now() - started) / 1000);

// ---------------------------------------------------------------- report

type Row = [section: string, measurement: string, ours: string, baseline: string, ratio: string, target: string, met: string];
const rows: Row[] = [];
const n = (x: number | null | undefined, d = 0) => (x === null || x === undefined ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: d }));
const mark = (m: boolean | null | undefined) => (m === null || m === undefined ? '–' : m ? 'met' : 'MISSED');

if (results.limiter) {
  for (const c of results.limiter.comparisons) {
    rows.push(['limiter', `${c.backend}, ${c.workload}, concurrency ${c.concurrency} (decisions/s)${c.budgetHit ? ' [time budget hit]' : ''}`, n(c.ours), `${n(c.theirs)} (rate-limiter-flexible)`, `${c.ratio}×`, '≥ 1×', mark(c.met)]);
  }
  for (const r of results.limiter.rows.filter((r) => r.backend.startsWith('sqlite'))) {
    rows.push(['limiter', `${r.backend}, ${r.workload} (decisions/s)`, n(r.stats.median), '–', '–', '–', '–']);
  }
  const ours = results.limiter.rows.find((r) => r.impl === 'otp-shield' && r.backend === 'redis');
  const theirs = results.limiter.rows.find((r) => r.impl === 'rate-limiter-flexible' && r.backend === 'redis');
  if (ours && theirs) rows.push(['limiter', 'Redis commands (round trips) per decision, all 12 limits', n(ours.commandsPerDecision, 2), `${n(theirs.commandsPerDecision, 2)} (rate-limiter-flexible)`, '–', '1', mark(ours.commandsPerDecision === 1)]);
}
if (results.http) {
  for (const c of results.http.comparisons) {
    rows.push(['http', `${c.scenario} [${c.server}] (req/s)`, n(c.ours), `${n(c.bare)} (bare Fastify)`, `${Math.round(c.ratio * 1000) / 10}% (CPU ${Math.round(c.cpuRatio * 1000) / 10}%)`, `≥ ${c.target * 100}%`, mark(c.met)]);
    rows.push(['http', `${c.scenario} [${c.server}] p99 at 80% load (ms)`, n(c.p99At80), '–', '–', '< 20 ms', mark(c.p99Met)]);
  }
  for (const p of results.http.points.filter((p) => p.name.includes('denied'))) {
    if (p.server === 'bare Fastify') continue;
    rows.push(['http', `${p.name} [${p.server}] (req/s)`, n(p.stats.median), '–', '–', '–', '–']);
  }
  for (const p of results.http.points.filter((p) => p.perRequest?.redisRoundTrips !== undefined)) {
    const c = p.perRequest!.storeCalls;
    const limitCalls = (c.consumeLimits ?? 0) + (c.peekLimits ?? 0) + (c.tally ?? 0);
    rows.push(['http', `${p.name} [${p.server}] Redis commands per request (of which limit calls)`, `${n(p.perRequest!.redisRoundTrips, 2)} (${n(limitCalls, 2)})`, '–', '–', '1 for all send limits', '–']);
    if (p.perRequest!.redisWaits !== undefined) rows.push(['http', `${p.name} [${p.server}] Redis round trips a request waits for (one request at a time)`, n(p.perRequest!.redisWaits, 2), '–', '–', '–', '–']);
  }
}
if (results.memory) {
  for (const r of results.memory.results) {
    const ph = r.phases;
    const f = (i: number) => (ph[i] ? `${n(ph[i]!.rssMB)} MB after ${n(ph[i]!.attackers)}${ph[i]!.completed ? '' : ' (budget hit)'}` : '–');
    rows.push(['memory', `${r.store}: RSS (baseline ${n(r.baselineRssMB)} MB)`, f(0), f(1), '–', r.store === 'sqlite' ? '< 300 MB, steady' : '–', r.store === 'sqlite' ? mark(results.memory.target.met) : '–']);
    if (r.store.startsWith('sqlite')) rows.push(['memory', `${r.store}: counter rows / expired not swept / file MB`, ph.map((p) => `${n(p.counters)} / ${n(p.expiredNotSwept)} / ${n(p.fileMB, 1)}`).join(' → '), '–', '–', '–', '–']);
    else rows.push(['memory', `${r.store}: live counters, requests/s`, ph.map((p) => `${n(p.counters)}, ${n(p.requestsPerSecond)}/s`).join(' → '), '–', '–', '–', '–']);
  }
}
if (results.replay) {
  rows.push(['replay', 'events per second', results.replay.ran ? n(results.replay.eventsPerSecond) : results.replay.note ?? 'not run', '–', '–', '≥ 20,000', mark(results.replay.met)]);
}

const header: Row = ['section', 'measurement', 'OTP Shield', 'baseline (same run)', 'ratio', 'target', 'status'];
const widths = header.map((h, i) => Math.min(70, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))));
const line = (r: Row) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(`\nOTP Shield benchmarks — ${meta.date} — ${meta.cpu}, Node ${meta.node} — load ${meta.loadBefore.join(' ')} → ${meta.loadAfter.join(' ')}${quick ? ' — QUICK' : ''}\n`);
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log(`\n${meta.seconds} s. Results: ${join(outDir, 'latest.json')}, ${join(outDir, 'latest.md')} (and a dated copy)`);

const md: string[] = [
  `### Results ${meta.date.slice(0, 10)}${quick ? ' (quick)' : ''}`,
  '',
  `- command: \`${meta.command}\`${meta.commit ? ` at ${meta.commit}` : ''}`,
  `- machine: ${meta.cpu}, ${meta.memoryGB} GB, ${meta.platform}, Node ${meta.node}`,
  `- load average (1/5/15 min) before ${meta.loadBefore.join(' / ')}, after ${meta.loadAfter.join(' / ')}${meta.loadBefore[0]! > os.cpus().length * 0.5 ? ' — **shared, busy machine: absolute numbers are noisy; ratios are measured side by side**' : ''}`,
  `- duration: ${meta.seconds} s`,
  '',
  `| ${header.join(' | ')} |`,
  `|${header.map(() => '---').join('|')}|`,
  ...rows.map((r) => `| ${r.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`),
  '',
];
const allNotes = [...(results.limiter?.notes ?? []), ...(results.http?.notes ?? []), ...(results.memory?.notes ?? [])];
if (allNotes.length) md.push('Notes:', '', ...allNotes.map((x) => `- ${x}`), '');
mkdirSync(outDir, { recursive: true });
// latest.* is overwritten by every run; the dated copy keeps partial runs (--only) side by side.
const stamp = `run-${meta.date.slice(0, 19).replaceAll(':', '')}${quick ? '-quick' : ''}${only.size ? `-${[...only].join('+')}` : ''}`;
for (const base of ['latest', stamp]) {
  writeFileSync(join(outDir, `${base}.json`), JSON.stringify({ meta, ...results }, null, 2) + '\n');
  writeFileSync(join(outDir, `${base}.md`), md.join('\n'));
}
