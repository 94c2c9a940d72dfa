/**
 * Limiter benchmark: decisions per second of OTP Shield's rate-limit layer evaluating every dimension of a
 * send together (number ×2 windows, cooldown, IP ×2, subnet ×2, device ×2, prefix, country, global: 12
 * limits, one atomic `consumeLimits`), against rate-limiter-flexible configured with the same 12 limits
 * (12 limiters, consumed together like its RateLimiterUnion but with a key per dimension), memory and
 * Redis, in the same run, interleaved repetition by repetition so machine noise hits both alike.
 *
 *   node --import tsx bench/limiter.ts [--quick]
 *
 * What is and is not the same:
 * - Same limits (the default policy's per-key limits; prefix/country/global raised so that a long run is
 *   not simply denied by the aggregate limits: both sides get the raised values), same keys, same clock
 *   (Date.now), same concurrency, one decision = all 12 limits.
 * - Not the same algorithm: OTP Shield's sliding window is exact "at most N in any window" and
 *   all-or-nothing (a denied request counts nowhere); rate-limiter-flexible is a fixed window per key and
 *   counts a consume in every limiter even when another one rejects. So OTP Shield does more work per
 *   decision; the target is the same throughput anyway.
 * - Workloads: `rotating` (every decision a new number, IP and device: all allowed, keys pile up as
 *   under a key-rotating attack) and `flood` (one number/IP/device: everything after the first denied).
 * Redis "commands per decision" counts what each client sent (ioredis `sendCommand`), the round trips.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { DEFAULT_POLICY, type Policy, type Rate } from '../src/engine/policy.ts';
import { NO_STATE, type SendFacts } from '../src/engine/facts.ts';
import { cooldownMs, sendLimitSpecs } from '../src/engine/limits.ts';
import type { Store } from '../src/store/interface.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { RedisStore } from '../src/store/redis.ts';
import { deviceFor, ipFor, numberFor } from './fixtures/workload.ts';
import { summary, type Stats } from './fixtures/stats.ts';

const RAISED: Rate[] = [{ limit: 100_000_000, windowSeconds: 3600 }];
/** Default per-key limits; aggregates raised (see header). */
export const LIMITER_POLICY: Policy = {
  ...DEFAULT_POLICY,
  limits: { ...DEFAULT_POLICY.limits, prefix: RAISED, country: RAISED, global: RAISED },
};

type Workload = 'rotating' | 'flood';

export interface LimiterVariant {
  impl: 'otp-shield' | 'rate-limiter-flexible';
  backend: string;
  workload: Workload;
  concurrency: number;
  decisions: number;
}

export interface LimiterRow extends LimiterVariant {
  /** Decisions per second of each repetition. */
  reps: number[];
  /** True when some repetition ran out of time before all its decisions (see drive()). */
  budgetHit: boolean;
  stats: Stats;
  allowedShare: number;
  commandsPerDecision: number | null;
  note?: string;
}

export interface LimiterResult {
  rows: LimiterRow[];
  comparisons: { backend: string; workload: Workload; concurrency: number; ours: number; theirs: number; ratio: number; met: boolean; budgetHit: boolean }[];
  notes: string[];
}

interface Keys {
  facts: SendFacts;
}

/**
 * Facts of decisions start..start+count (built before timing: both sides get the same, ready-made inputs).
 * Warm-up and measured runs take disjoint index ranges, so no key of the measured run was seen before
 * (a number the warm-up used would be in its 30-second cooldown and be denied).
 */
function makeFacts(count: number, workload: Workload, salt: number, start = 0): Keys[] {
  const out: Keys[] = [];
  for (let k = 0; k < count; k++) {
    const i = workload === 'flood' ? start : start + k;
    // Spread consecutive decisions over /24s (65537 is odd: a permutation of the /11), so a subnet sees
    // about count/8192 decisions and the subnet limit (60 / 10 min) does not deny a rotating run.
    const ip = ipFor((i * 65_537) % 2_097_152, salt);
    const e164 = numberFor(i + salt * 1_000_003);
    out.push({
      facts: {
        now: 0,
        channel: 'sms',
        number: { e164, region: 'ID', callingCode: '62', type: 'MOBILE', prefix: e164.slice(0, 6), disposable: false, sources: [] },
        ip: { ip, subnet: `${ip.slice(0, ip.lastIndexOf('.'))}.0/24`, network: `${ip.slice(0, ip.lastIndexOf('.'))}.0/24`, site: null, country: 'ID', asn: null, hosting: false, tor: false, proxy: false, vpn: false, sources: [] },
        evidence: { formToken: 'valid', pow: 'solved', captcha: 'missing', honeypot: false, elapsedMs: 5000, headless: false, scriptUserAgent: false, deviceId: deviceFor(i, salt), acceptLanguage: 'id-ID' },
        lists: [],
        state: NO_STATE,
      },
    });
  }
  return out;
}

type Decide = (f: SendFacts) => Promise<boolean>;

/**
 * Run `decide` over the inputs with `concurrency` decisions in flight; decisions/s and share allowed.
 * Bounded in time too: past `budgetMs` no new decision starts, and the rate is over those completed (a
 * limiter that slows down as keys pile up then looks better than it would over the full count: flagged).
 */
async function drive(inputs: Keys[], decide: Decide, concurrency: number, budgetMs: number): Promise<{ perSecond: number; allowed: number; completed: number }> {
  let next = 0;
  let allowed = 0;
  let completed = 0;
  const started = performance.now();
  const deadline = started + budgetMs;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= inputs.length || ((i & 255) === 0 && performance.now() > deadline)) return;
      if (await decide(inputs[i]!.facts)) allowed++;
      completed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const s = (performance.now() - started) / 1000;
  return { perSecond: Math.round(completed / s), allowed: allowed / Math.max(1, completed), completed };
}

/** OTP Shield's layer: build the 12 specs the engine builds, one atomic store call. */
function oursDecide(store: Store, policy: Policy): Decide {
  return async (f) => (await store.consumeLimits(sendLimitSpecs(f, policy, 0), Date.now())).allowed;
}

/** The 12 limits as rate-limiter-flexible limiters, in sendLimitSpecs order, with the key each one takes. */
function rlfLimiters(policy: Policy, make: (prefix: string, r: Rate) => RateLimiterAbstract): { limiter: RateLimiterAbstract; key: (f: SendFacts) => string }[] {
  const L = policy.limits;
  const out: { limiter: RateLimiterAbstract; key: (f: SendFacts) => string }[] = [];
  const cd = Math.round(cooldownMs(policy, 0) / 1000);
  out.push({ limiter: make('cd', { limit: 1, windowSeconds: cd }), key: (f) => `${f.number.e164}:${f.channel}` });
  const dims: [string, Rate[], (f: SendFacts) => string][] = [
    ['n', L.number, (f) => f.number.e164],
    ['ip', L.ip, (f) => f.ip!.ip],
    ['sn', L.subnet, (f) => f.ip!.network],
    ['dv', L.device, (f) => f.evidence.deviceId!],
    ['px', L.prefix, (f) => f.number.prefix!],
    ['cc', L.country, (f) => f.number.region!],
    ['gl', L.global, () => 'gl'],
  ];
  for (const [name, rates, key] of dims) {
    for (const r of rates) out.push({ limiter: make(`${name}${r.windowSeconds}`, r), key });
  }
  return out;
}

function rlfDecide(limiters: { limiter: RateLimiterAbstract; key: (f: SendFacts) => string }[]): Decide {
  return async (f) => {
    // Like RateLimiterUnion.consume: all limiters at once, allowed only if none rejected.
    const res = await Promise.all(limiters.map((l) => l.limiter.consume(l.key(f)).then(() => true, () => false)));
    return res.every(Boolean);
  };
}

/** Count commands a client sends (one script or command = one round trip; ioredis pipelines them). */
function countCommands(client: Redis): { n: number } {
  const counter = { n: 0 };
  const orig = client.sendCommand.bind(client);
  (client as unknown as { sendCommand: typeof orig }).sendCommand = ((...a: Parameters<typeof orig>) => {
    counter.n++;
    return orig(...a);
  }) as typeof orig;
  return counter;
}

async function redisReachable(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

interface Spec extends LimiterVariant {
  id: string;
  /** Builds a fresh limiter (fresh state, own key namespace). */
  setup: (ctx: { rep: number; redis: Redis | null; ns: string; tmp: string }) => Promise<{ decide: Decide; close: () => Promise<void> }>;
  note?: string;
}

/** Every measured variant, in a fixed order (the parent and the children build the same list). */
function buildSpecs(quick: boolean, withRedis: boolean): Spec[] {
  const nMem = quick ? 20_000 : 100_000;
  const nRedis = quick ? 3_000 : 20_000;
  const nSqlite = quick ? 3_000 : 10_000;
  const policy = LIMITER_POLICY;
  const specs: Spec[] = [];
  const add = (s: Omit<Spec, 'id'>) => specs.push({ ...s, id: `${s.impl}|${s.backend}|${s.workload}|${s.concurrency}` });
  for (const workload of ['rotating', 'flood'] as const) {
    add({ impl: 'otp-shield', backend: 'memory', workload, concurrency: 1, decisions: nMem, setup: async () => ({ decide: oursDecide(new MemoryStore(), policy), close: async () => {} }) });
    add({
      impl: 'rate-limiter-flexible', backend: 'memory', workload, concurrency: 1, decisions: nMem,
      setup: async () => ({ decide: rlfDecide(rlfLimiters(policy, (p, r) => new RateLimiterMemory({ keyPrefix: p, points: r.limit, duration: r.windowSeconds }))), close: async () => {} }),
    });
    add({
      // As shipped since 2c0fcb0: synchronous = NORMAL; counters do not wait for the group-commit flush.
      impl: 'otp-shield', backend: 'sqlite (as shipped)', workload, concurrency: 1, decisions: nSqlite,
      setup: async ({ tmp }) => {
        const st = new SqliteStore(join(tmp, 'lim.db'));
        return { decide: oursDecide(st, policy), close: () => st.close() };
      },
    });
    if (withRedis) {
      for (const concurrency of workload === 'rotating' ? [1, 32] : [32]) {
        add({
          impl: 'otp-shield', backend: 'redis', workload, concurrency, decisions: nRedis,
          setup: async ({ redis, ns }) => ({ decide: oursDecide(new RedisStore(redis!, { prefix: `${ns}ours:` }), policy), close: async () => {} }),
        });
        add({
          impl: 'rate-limiter-flexible', backend: 'redis', workload, concurrency, decisions: nRedis,
          setup: async ({ redis, ns }) => ({
            decide: rlfDecide(rlfLimiters(policy, (p, r) => new RateLimiterRedis({ storeClient: redis, keyPrefix: `${ns}rlf:${p}`, points: r.limit, duration: r.windowSeconds }))),
            close: async () => {},
          }),
        });
      }
    }
  }
  return specs;
}

interface RepResult {
  perSecond: number;
  allowed: number;
  commandsPerDecision: number;
  /** Decisions completed (fewer than planned when the time budget ran out). */
  completed: number;
}

/**
 * One repetition of one variant, in this (child) process: a fresh process per repetition, so no variant
 * runs on a heap another one filled (rate-limiter-flexible's memory limiter keeps a timer per key, which
 * keeps its maps alive long after a run; that garbage would tax whatever ran next).
 */
async function childRep(id: string, rep: number, quick: boolean, redisUrl: string): Promise<RepResult> {
  const spec = buildSpecs(quick, true).find((x) => x.id === id);
  if (!spec) throw new Error(`unknown limiter variant ${id}`);
  const ns = `otpsbench:${process.pid}:lim:`;
  const tmp = mkdtempSync(join(tmpdir(), 'otps-bench-lim-'));
  const redis = spec.backend === 'redis' ? new Redis(redisUrl, { maxRetriesPerRequest: 2 }) : null;
  redis?.on('error', () => {});
  const commands = redis ? countCommands(redis) : { n: 0 };
  try {
    const { decide, close } = await spec.setup({ rep, redis, ns, tmp });
    // Warm-up on other keys but the same workload (JIT of this path, connections, script loading), not timed.
    const warmN = Math.min(quick ? 2_000 : 5_000, spec.decisions);
    for (const w of makeFacts(warmN, spec.workload, 100 + rep, spec.decisions + 1)) await decide(w.facts);
    const inputs = makeFacts(spec.decisions, spec.workload, 100 + rep);
    const before = commands.n;
    const r = await drive(inputs, decide, spec.concurrency, quick ? 15_000 : 30_000);
    const cmd = commands.n - before;
    await close();
    return { perSecond: r.perSecond, allowed: r.allowed, commandsPerDecision: cmd / Math.max(1, r.completed), completed: r.completed };
  } finally {
    if (redis) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${ns}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== '0');
      redis.disconnect();
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

function spawnRep(id: string, rep: number, quick: boolean, redisUrl: string): Promise<RepResult> {
  const file = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, '--child', JSON.stringify({ id, rep, quick, redisUrl })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{"perSecond"'));
      if (code === 0 && line) resolve(JSON.parse(line) as RepResult);
      else reject(new Error(`limiter child ${id} rep ${rep} failed (${signal ?? code}): ${err.slice(-1500)}`));
    });
  });
}

export async function runLimiter(opts: { quick: boolean; redisUrl?: string; log?: (s: string) => void } = { quick: false }): Promise<LimiterResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const redisUrl = opts.redisUrl ?? 'redis://127.0.0.1:6379';
  const reps = opts.quick ? 2 : 3;
  const notes: string[] = [];
  const haveRedis = await redisReachable(redisUrl);
  if (!haveRedis) notes.push(`Redis not reachable at ${redisUrl}: Redis rows skipped`);
  const specs = buildSpecs(opts.quick, haveRedis);

  const results = new Map<Spec, RepResult[]>();
  for (let rep = 0; rep < reps; rep++) {
    for (const s of specs) {
      const r = await spawnRep(s.id, rep, opts.quick, redisUrl);
      results.set(s, [...(results.get(s) ?? []), r]);
      log(`limiter rep ${rep + 1}/${reps}: ${s.impl} ${s.backend} ${s.workload} c=${s.concurrency}: ${r.perSecond.toLocaleString('en-US')} decisions/s (allowed ${(r.allowed * 100).toFixed(1)}%${r.completed < s.decisions ? `, time budget hit after ${r.completed.toLocaleString('en-US')}` : ''})`);
    }
  }

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const rows: LimiterRow[] = specs.map((s) => {
    const r = results.get(s)!;
    return {
      impl: s.impl, backend: s.backend, workload: s.workload, concurrency: s.concurrency, decisions: s.decisions,
      reps: r.map((x) => x.perSecond), budgetHit: r.some((x) => x.completed < s.decisions), stats: summary(r.map((x) => x.perSecond)), allowedShare: Math.round(mean(r.map((x) => x.allowed)) * 1000) / 1000,
      commandsPerDecision: s.backend === 'redis' ? Math.round(mean(r.map((x) => x.commandsPerDecision)) * 100) / 100 : null,
      ...(s.note ? { note: s.note } : {}),
    };
  });
  const comparisons: LimiterResult['comparisons'] = [];
  for (const theirs of rows.filter((r) => r.impl === 'rate-limiter-flexible')) {
    for (const ours of rows.filter((r) => r.impl === 'otp-shield' && r.workload === theirs.workload && r.concurrency === theirs.concurrency && r.backend.startsWith(theirs.backend))) {
      const ratio = Math.round((ours.stats.median / theirs.stats.median) * 100) / 100;
      comparisons.push({ backend: ours.backend, workload: ours.workload, concurrency: ours.concurrency, ours: ours.stats.median, theirs: theirs.stats.median, ratio, met: ratio >= 1, budgetHit: ours.budgetHit || theirs.budgetHit });
    }
  }
  const d = specs[0]!;
  notes.push(`limiter: decisions per repetition: memory ${d.decisions.toLocaleString('en-US')}, redis ${opts.quick ? '3,000' : '20,000'}, sqlite ${opts.quick ? '3,000' : '10,000'}, after an untimed warm-up of the same workload on other keys; ${reps} repetitions, interleaved, each in a fresh process`);
  return { rows, comparisons, notes };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, child: { type: 'string' } } });
  if (values.child) {
    const c = JSON.parse(values.child) as { id: string; rep: number; quick: boolean; redisUrl: string };
    console.log(JSON.stringify(await childRep(c.id, c.rep, c.quick, c.redisUrl)));
    process.exit(0);
  }
  const r = await runLimiter({ quick: values.quick });
  console.log(JSON.stringify(r, null, 2));
}
