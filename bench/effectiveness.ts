/**
 * Effectiveness benchmark: a labelled synthetic day (src/sim/) replayed through the real engine with the
 * default policy (src/replay/), scored per scenario (src/sim/score.ts).
 *
 *   npm run bench:effectiveness -- [--seed N] [--scale 1] [--dir DIR] [--no-captcha] [--policy FILE] [--markdown FILE] [--json FILE]
 *
 * The deployment replayed has a CAPTCHA provider configured (the trace says whether each client passed
 * one; nothing is called), so the rules only a CAPTCHA clears are enforced. `--no-captcha` replays a
 * deployment without one, where they are not (engine/policy.ts `withoutCaptcha`, docs/policy.md).
 * --dir replays an existing `otp-shield simulate --out DIR` output instead of generating the day.
 * Figures go to stdout as Markdown (the tables in docs/benchmarks.md come from here).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Replayer } from '../src/replay/driver.ts';
import { simulateDay, DEFAULT_SIM } from '../src/sim/simulate.ts';
import type { Label } from '../src/sim/scenarios.ts';
import { markdown, scoreRun, targetsMet } from '../src/sim/score.ts';
import { smsPrices } from '../src/sim/prices.ts';
import { loadReplayPolicy } from '../src/cli/commands/replay.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    scale: { type: 'string' },
    dir: { type: 'string' },
    markdown: { type: 'string' },
    json: { type: 'string' },
    'no-captcha': { type: 'boolean', default: false },
    policy: { type: 'string' },
  },
});
const captcha = !values['no-captcha'];

let lines: string[];
let labels: Label[];
let about: string;
if (values.dir) {
  lines = readFileSync(join(values.dir, 'trace.ndjson'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  labels = readFileSync(join(values.dir, 'labels.ndjson'), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Label);
  if (labels.length !== lines.length) throw new Error(`labels (${labels.length}) and trace (${lines.length}) differ in length`);
  about = `trace from ${values.dir}`;
} else {
  const day = simulateDay({ seed: values.seed ? Number(values.seed) : DEFAULT_SIM.seed, scale: values.scale ? Number(values.scale) : DEFAULT_SIM.scale });
  lines = day.lines;
  labels = day.labels;
  about = `seed ${day.options.seed}, scale ${day.options.scale}, ${day.options.warmupHours} h warm-up`;
}

about += captcha ? ', CAPTCHA provider configured' : ', no CAPTCHA provider';
// --policy: the same policy file `otp-shield replay --policy` reads (to compare a policy change on the day).
const custom = values.policy ? loadReplayPolicy(values.policy) : null;
if (values.policy) about += `, policy ${values.policy}`;
process.stderr.write(`replaying ${lines.length} events (${about}) with ${custom ? 'the policy from ' + values.policy : 'the default policy'}…\n`);
// A provider entry only marks the deployment as having one: the replay's signals return the trace's outcome.
const r = await Replayer.create({
  ...(captcha ? { config: { captcha: { provider: 'turnstile', secret: 'replay-never-calls-it' } } } : {}),
  ...(custom ? { policy: custom.policy, policyExtras: custom.extras } : {}),
});
const outputs: Record<string, unknown>[] = [];
const started = performance.now();
for (const [i, l] of lines.entries()) {
  outputs.push(((await r.line(l)) ?? {}) as Record<string, unknown>);
  if (i > 0 && i % 20_000 === 0) process.stderr.write(`  ${i} events, ${Math.round(i / ((performance.now() - started) / 1000))}/s\n`);
}
const summary = r.summary();
const quarantines = r.notableEvents().filter((e) => e.type === 'quarantine.start');
await r.close();

const prices = smsPrices();
const result = scoreRun(lines, labels, outputs, prices);
const md = markdown(result, prices.currency);
process.stdout.write(`${md}\n\n${lines.length} events (${about}) replayed in ${(summary.wallMs / 1000).toFixed(1)} s; quarantines started: ${summary.auditEvents['quarantine.start'] ?? 0}\n`);
if (values.markdown) writeFileSync(values.markdown, md + '\n');
if (values.json) writeFileSync(values.json, JSON.stringify({ about, targets: targetsMet(result.totals), ...result, replay: summary, quarantines }, null, 2) + '\n');
const blockReasons = result.scenarios.map((s) => `${s.scenario}: ${s.blockReasons.map(([k, n]) => `${k} ${n}`).join(', ') || '-'}`);
process.stderr.write(`block reasons:\n  ${blockReasons.join('\n  ')}\n`);
const campaigns = result.scenarios.filter((s) => s.fraud && Object.keys(s.actors).length > 1).map((s) => `${s.scenario}: ${Object.entries(s.actors).map(([a, c]) => `${a} ${c.allow}/${c.sends}`).join(', ')}`);
if (campaigns.length) process.stderr.write(`allowed per campaign:\n  ${campaigns.join('\n  ')}\n`);

// Which quarantines hit real users: legit sends refused by a quarantine, per destination prefix/country.
const refusedLegit = new Map<string, number>();
const refusedFraud = new Map<string, number>();
for (const [i, o] of outputs.entries()) {
  const reasons = (o.reasons as string[] | undefined) ?? [];
  if (labels[i]!.warmup || !reasons.some((x) => x.startsWith('quarantine.'))) continue;
  const to = (JSON.parse(lines[i]!) as { to: string }).to;
  const m = labels[i]!.fraud ? refusedFraud : refusedLegit;
  const key = `${to.slice(0, 7)}…`;
  m.set(key, (m.get(key) ?? 0) + 1);
}
process.stderr.write(`quarantines (${quarantines.length}):\n`);
for (const q of quarantines) {
  const f = (q.data?.figures ?? {}) as Record<string, unknown>;
  process.stderr.write(`  ${new Date(q.at).toISOString().slice(0, 16)} ${String(q.data?.scope).padEnd(18)} ${String(q.decision).padEnd(9)} ${q.reasons?.[0]} ${f.windowMinutes ? `w=${f.windowMinutes}m exp=${f.expected} got=${f.approvals} base=${f.baseline}(${f.baselineSource})` : `block=${f.block ?? ''} run=${f.run ?? ''}`}\n`);
}
process.stderr.write(`legit sends refused by a quarantine, by number start: ${JSON.stringify(Object.fromEntries(refusedLegit))}\n`);
process.stderr.write(`fraud sends refused by a quarantine, by number start: ${JSON.stringify(Object.fromEntries(refusedFraud))}\n`);
