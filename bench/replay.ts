/**
 * Replay throughput: how many trace events per second `otp-shield replay` runs through the real service
 * path on one core (target ≥ 20,000/s, docs/benchmarks.md).
 *
 *   node --import tsx bench/replay.ts [--events 200000] [--trace FILE] [--repeat 1] [--profile out.cpuprofile]
 *
 * --profile writes a CPU profile of the timed loop only (open it in Chrome DevTools or speedscope).
 * --repeat N times the whole trace N times, each on a fresh replayer (same decisions every time), and
 * reports the median run with min and max (the first JSON line; bench/run.ts reads it).
 *
 * Without --trace a deterministic mixed trace is generated in memory: mostly real users (send, then the
 * right code, some typos and resends) across many prefixes and carrier-NAT IPs, plus bot sends that are
 * blocked, challenged or tarpitted, so every branch of the service is exercised in realistic proportion.
 * Generation and reading are not timed; only the replay loop is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { Replayer } from '../src/replay/driver.ts';
import { seededUniform } from '../src/sim/random.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '200000' }, trace: { type: 'string' }, profile: { type: 'string' }, repeat: { type: 'string', default: '1' } },
});
const repeat = Math.max(1, Math.floor(Number(values.repeat)));

const rng = seededUniform;

function generate(n: number): string[] {
  const rand = rng(42);
  const lines: string[] = [];
  let t = Date.parse('2026-11-23T00:00:00.000Z');
  const pending: { at: number; line: string }[] = [];
  const prefixes = ['812', '813', '821', '822', '852', '853', '857', '878', '896', '838'];
  const uas = ['Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1'];
  while (lines.length < n) {
    // About 3,900 sends an hour (real users and bots) into one country: under the default country limit
    // (5,000/h). Until 2c98623 the mix ran at four times that, so most of it was refused by
    // rate_limited.country — cheap rejections that flattered the figure.
    t += Math.floor(rand() * 1600);
    while (pending.length && pending[0]!.at <= t) lines.push(pending.shift()!.line);
    const at = new Date(t).toISOString();
    const to = `+62${prefixes[Math.floor(rand() * prefixes.length)]}${String(Math.floor(rand() * 1e7)).padStart(7, '0')}`;
    // 2,048 /24 subnets: about 40 sends per subnet a day, under the default subnet limits (600 a day).
    const ip = `36.${72 + Math.floor(rand() * 8)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`;
    const r = rand();
    if (r < 0.85) {
      const client = { ip, userAgent: uas[Math.floor(rand() * 2)], deviceId: `dev-${Math.floor(rand() * 1e9).toString(36)}`, formToken: 'valid', pow: 'solved', captcha: 'missing', honeypot: false, elapsedMs: 3000 + Math.floor(rand() * 20000), headless: false, acceptLanguage: 'id-ID' };
      lines.push(JSON.stringify({ at, type: 'send', to, channel: 'sms', client }));
      const checkAt = t + 20_000 + Math.floor(rand() * 60_000);
      if (rand() < 0.1) pending.push({ at: checkAt - 5000, line: JSON.stringify({ at: new Date(checkAt - 5000).toISOString(), type: 'check', to, code: 'wrong' }) });
      if (rand() < 0.9) pending.push({ at: checkAt, line: JSON.stringify({ at: new Date(checkAt).toISOString(), type: 'check', to, code: 'correct' }) });
      pending.sort((a, b) => a.at - b.at);
    } else if (r < 0.95) {
      const client = { ip: `159.89.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}`, userAgent: 'python-requests/2.31', formToken: 'missing', pow: 'missing', captcha: 'missing', honeypot: false, elapsedMs: null, headless: false, acceptLanguage: null };
      lines.push(JSON.stringify({ at, type: 'send', to, channel: 'sms', client }));
    } else {
      const client = { ip, userAgent: uas[0], deviceId: null, formToken: 'valid', pow: 'missing', captcha: 'missing', honeypot: rand() < 0.5, elapsedMs: 800, headless: rand() < 0.5, acceptLanguage: 'id-ID' };
      lines.push(JSON.stringify({ at, type: 'send', to, channel: 'sms', client }));
    }
  }
  return lines.slice(0, n);
}

const lines = values.trace ? readFileSync(values.trace, 'utf8').split('\n').filter((l) => l.trim() !== '') : generate(Number(values.events));
// Warm-up outside the measurement (JIT, intel tables), on a throwaway replayer so state does not carry over.
const warm = await Replayer.create();
for (const l of lines.slice(0, Math.min(5000, lines.length))) await warm.line(l);
await warm.close();

interface Run {
  ms: number;
  cpuMs: number;
  eventsPerSecond: number;
  eventsPerCpuSecond: number;
  summary: ReturnType<Replayer['summary']>;
}

async function timedRun(profile: string | undefined): Promise<Run> {
  const r = await Replayer.create();
  const session = profile ? new Session() : null;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  for (const l of lines) await r.line(l);
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  // CPU time is what "per core" means, and it is less disturbed than wall time when the machine is shared.
  const cpuMs = (cpu.user + cpu.system) / 1000;
  if (session) {
    const { profile: p } = await session.post('Profiler.stop');
    writeFileSync(profile!, JSON.stringify(p));
    session.disconnect();
  }
  const summary = r.summary();
  await r.close();
  return { ms, cpuMs, eventsPerSecond: Math.round((lines.length / ms) * 1000), eventsPerCpuSecond: Math.round((lines.length / cpuMs) * 1000), summary };
}

const runs: Run[] = [];
// Only the first run is profiled.
for (let i = 0; i < repeat; i++) runs.push(await timedRun(i === 0 ? values.profile : undefined));
const byRate = [...runs].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond);
const med = byRate[Math.floor((byRate.length - 1) / 2)]!;
const cpuRates = runs.map((x) => x.eventsPerCpuSecond).sort((a, b) => a - b);
const s = med.summary;
console.log(
  JSON.stringify({
    events: lines.length,
    runs: runs.length,
    ms: Math.round(med.ms),
    cpuMs: Math.round(med.cpuMs),
    eventsPerSecond: med.eventsPerSecond,
    eventsPerCpuSecond: cpuRates[Math.floor((cpuRates.length - 1) / 2)],
    eventsPerSecondMinMax: [byRate[0]!.eventsPerSecond, byRate.at(-1)!.eventsPerSecond],
    eventsPerCpuSecondMinMax: [cpuRates[0], cpuRates.at(-1)],
    perRun: runs.map((x) => ({ ms: Math.round(x.ms), cpuMs: Math.round(x.cpuMs), eventsPerSecond: x.eventsPerSecond, eventsPerCpuSecond: x.eventsPerCpuSecond })),
    sends: s.sends,
    checks: s.checks,
    delivered: s.delivered,
    auditEvents: s.auditEvents,
  }),
);
const fmt = (x: number) => x.toLocaleString('en-US');
const range = (xs: number[]) => (xs.length > 1 ? ` (min ${fmt(Math.min(...xs))}, max ${fmt(Math.max(...xs))}, ${xs.length} runs)` : '');
console.log(
  `replay: ${lines.length} events in ${(med.ms / 1000).toFixed(2)} s wall = ${fmt(med.eventsPerSecond)} events/s${range(runs.map((x) => x.eventsPerSecond))}; ` +
    `${fmt(cpuRates[Math.floor((cpuRates.length - 1) / 2)]!)} events per CPU-second${range(cpuRates)} (target 20,000/s on one core)`,
);
