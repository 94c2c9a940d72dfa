/**
 * End-to-end HTTP benchmarks: OTP Shield's send and check routes with every layer on, against a bare
 * Fastify route answering a body of the same size, on the same machine, in the same run.
 *
 *   node --import tsx bench/http.ts [--quick] [--only send,check,redis] [--profile]
 *
 * Servers run in CHILD processes (bench/fixtures/server.ts); autocannon runs here, so the load generator
 * never shares the measured event loop (it does share the machine's cores: 2 on the reference machine).
 *
 * - send: POST /v1/verifications. Every request a new number, IP and device, and a fresh signed form
 *   token with a solved proof-of-work (bench/fixtures/workload.ts), so the bot-filtering layer verifies
 *   them for real and the decision is `allow`; policy bench/fixtures/policy-throughput.json (very high
 *   limits, dynamic throttling off: a benchmark is a surge by definition). Store: the embedded SQLite as
 *   shipped (group commit), next to `synchronous = FULL` (the behaviour before it, docs/decisions.md). The all-denied path is measured
 *   separately with bench/fixtures/policy-denied.json (number limit 0): every request runs every layer
 *   and is refused with 429 by the send limits.
 * - check: POST /v1/verifications/check with the right code (approval: the most expensive outcome).
 *   Pending verifications are written through the Store before each run (the check path is measured,
 *   not the send path).
 * - redis: the send path with the Redis store; store calls and Redis round trips per request.
 *
 * Each measured point: max throughput (16 connections) repeated and interleaved with the bare route
 * (min/median/max of repetitions), then latency at 80% of OTP Shield's own median max throughput.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import type { ServerOptions } from './fixtures/server.ts';
import { sendBodies } from './fixtures/workload.ts';
import { summary, type Stats } from './fixtures/stats.ts';
import { formatSummary, summarise, type ProfileSummary } from './fixtures/profile-summary.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const SERVER = here('./fixtures/server.ts');
const CONNECTIONS = 16;

// ---------------------------------------------------------------- child servers

interface Child {
  proc: ChildProcess;
  url: string;
  key: string | null;
  request<T>(cmd: Record<string, unknown>, reply: string): Promise<T>;
  stop(): Promise<void>;
}

async function startServer(opts: ServerOptions, execArgv: string[] = []): Promise<Child> {
  const proc = fork(SERVER, [JSON.stringify(opts)], { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const waitFor = <T>(type: string, timeoutMs = 120_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`server child: no "${type}" within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
      const onMsg = (m: { type: string; message?: string }) => {
        if (m.type === type) done(null, m as T);
        else if (m.type === 'error') done(new Error(`server child: ${m.message}`));
      };
      const onExit = (code: number | null) => done(new Error(`server child exited (${code}) before "${type}"\n${stderr}`));
      function done(err: Error | null, v?: T) {
        clearTimeout(timer);
        proc.off('message', onMsg);
        proc.off('exit', onExit);
        if (err) reject(err);
        else resolve(v as T);
      }
      proc.on('message', onMsg);
      proc.on('exit', onExit);
    });
  const ready = await waitFor<{ url: string; key?: string }>('ready');
  return {
    proc,
    url: ready.url,
    key: ready.key ?? null,
    async request<T>(cmd: Record<string, unknown>, reply: string): Promise<T> {
      const p = waitFor<T>(reply);
      proc.send(cmd);
      return p;
    },
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.send({ cmd: 'exit' });
      // Bounded: a child that does not exit in time is killed by its own pid.
      const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

interface ServerStats {
  rss: number;
  cpuMicros: number;
  calls: Record<string, number>;
  redisRoundTrips: number | null;
  /** Writes on the Redis socket (calls issued together share one). */
  redisWrites?: number | null;
  sqliteBytes: number | null;
  /** SQLite write transactions committed (commit batches, or every write without batching). */
  sqliteCommits?: number | null;
}

// ---------------------------------------------------------------- load

export interface LoadResult {
  rps: number;
  requests: number;
  seconds: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  status: Record<string, number>;
  errors: number;
}

async function load(url: string, path: string, o: { key: string | null; bodies: string[]; amount?: number; duration?: number; rate?: number }): Promise<LoadResult> {
  let i = 0;
  const bodies = o.bodies;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.key) headers.authorization = `Bearer ${o.key}`;
  // autocannon ends an `amount` run on its 1-second ticker, so its own duration is up to a second too long:
  // throughput is completed responses over the time from start to the last response.
  let completed = 0;
  let last = 0;
  const started = performance.now();
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    pipelining: 1,
    ...(o.amount !== undefined ? { amount: o.amount } : { duration: o.duration ?? 5 }),
    ...(o.rate !== undefined ? { overallRate: o.rate } : {}),
    timeout: 30,
    requests: [{
      method: 'POST', path, headers,
      setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length]! }),
      onResponse: () => {
        completed++;
        last = performance.now();
      },
    }],
  });
  const status: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) status[code] = s.count ?? 0;
  const total = Object.values(status).reduce((a, b) => a + b, 0);
  const secs = last > started ? (last - started) / 1000 : r.duration;
  return {
    rps: Math.round(completed / secs),
    requests: total,
    seconds: Math.round(secs * 100) / 100,
    latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    status,
    errors: r.errors,
  };
}

// ---------------------------------------------------------------- scenarios

export interface HttpPoint {
  name: string;
  server: string;
  /** Max throughput of each repetition (requests/s). */
  reps: number[];
  stats: Stats;
  /** Status codes over all repetitions. */
  status: Record<string, number>;
  /**
   * Server CPU time (user + system) per request, ms, over the max-throughput runs. Unlike requests/s it
   * is barely affected by other processes competing for the cores, so it is the steadier comparison.
   */
  cpuMsPerRequest: number;
  latencyAtMax?: { p50: number; p99: number };
  /** Latency at 80% of this server's median max throughput (coordinated-omission corrected). */
  at80?: { rate: number; achieved: number; p50: number; p90: number; p99: number; max: number; status: Record<string, number> };
  /**
   * redisRoundTrips: Redis commands and scripts sent per request (each its own round trip without
   * pipelining); redisWaits: round trips one request waits for, measured one request at a time.
   */
  perRequest?: { storeCalls: Record<string, number>; redisRoundTrips?: number; redisWaits?: number };
  sqliteBytesPerRequest?: number;
  /** SQLite commits per request (the writes of one event-loop turn share one, docs/decisions.md). */
  sqliteCommitsPerRequest?: number;
  serverRssMB?: number;
}

export interface HttpComparison {
  scenario: string;
  server: string;
  ours: number;
  bare: number;
  ratio: number;
  /** bare CPU per request / ours CPU per request: the throughput ratio on an otherwise idle core. */
  cpuRatio: number;
  target: number;
  met: boolean;
  p99At80?: number;
  p99Met?: boolean;
}

export interface HttpResult {
  points: HttpPoint[];
  comparisons: HttpComparison[];
  profiles: { name: string; summary: ProfileSummary; text: string }[];
  notes: string[];
}

interface Opts {
  quick: boolean;
  only?: Set<string>;
  /** Replace the default variants of the send/check points (names in VARIANTS); for exploring. */
  variants?: string[];
  profile?: boolean;
  redisUrl?: string;
  log?: (s: string) => void;
}

interface Variant {
  label: string;
  server: Omit<ServerOptions, 'mode' | 'policyFile'>;
}

/**
 * What ships, and the variants it is compared with (applied in the child only). Earlier prototypes
 * (log masking, throttle writes, synchronous = NORMAL) were merged into src/; their before/after figures
 * are in docs/benchmarks.md.
 */
const SHIPPED: Variant = { label: 'sqlite, as shipped', server: { store: 'sqlite' } };
/** The behaviour before the group commit (synchronous = FULL, one blocking fsync per commit): the side-by-side. */
const FULL: Variant = { label: 'sqlite synchronous=FULL (before group commit)', server: { store: 'sqlite-full' } };
/** Reference only: what everything but durable storage costs (the memory store is not for production). */
const MEMORY: Variant = { label: 'memory store (reference)', server: { store: 'memory' } };
const REDIS: Variant = { label: 'redis, as shipped', server: { store: 'redis' } };

export const VARIANTS: Record<string, Variant> = { shipped: SHIPPED, full: FULL, memory: MEMORY, redis: REDIS };

const addStatus = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
};

async function redisUp(url: string): Promise<boolean> {
  try {
    const { Redis } = await import('ioredis');
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    r.on('error', () => {});
    await r.connect();
    const ok = (await r.ping()) === 'PONG';
    r.disconnect();
    return ok;
  } catch {
    return false;
  }
}

export async function runHttp(opts: Opts): Promise<HttpResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const want = (n: string) => !opts.only || opts.only.size === 0 || opts.only.has(n) || opts.only.has('http');
  const reps = opts.quick ? 2 : 3;
  const seconds = opts.quick ? 2 : 5;
  const redisUrl = opts.redisUrl ?? 'redis://127.0.0.1:6379';
  const points: HttpPoint[] = [];
  const comparisons: HttpComparison[] = [];
  const profiles: HttpResult['profiles'] = [];
  const notes: string[] = [
    `autocannon ${CONNECTIONS} connections, pipelining 1, in the runner process; servers in child processes; ${reps} interleaved repetitions of ~${seconds} s per point`,
  ];
  const throughputPolicy = here('./fixtures/policy-throughput.json');
  const deniedPolicy = here('./fixtures/policy-denied.json');
  let salt = 1;
  const sizes = { send: 237, check: 21 };

  const sendBodiesFor = async (n: number) => sendBodies(n, { salt: salt++ });
  const checkBodiesFor = (ours: Child) => async (n: number) => {
    const r = await ours.request<{ items: { id: string; code: string; ip: string; deviceId: string }[] }>({ cmd: 'prepareChecks', n, salt: salt++ }, 'checks');
    return r.items.map((c) => JSON.stringify({ id: c.id, code: c.code, client: { ip: c.ip, deviceId: c.deviceId } }));
  };

  /**
   * One point: max throughput of OTP Shield and of the bare route, interleaved repetition by repetition,
   * then OTP Shield's latency at 80% of its median max throughput. `makeBodies(n)` gives n fresh
   * single-use bodies; each run's size comes from the previous one so runs last about `seconds`.
   */
  async function measure(name: string, variant: Variant, policyFile: string, path: string, target: number | null, kind: 'send' | 'check'): Promise<void> {
    const ours = await startServer({ mode: 'otp', policyFile, redisUrl, ...variant.server });
    let bare: Child | null = null;
    try {
      const makeBodies = kind === 'send' ? sendBodiesFor : checkBodiesFor(ours);
      // The real answer sizes (from a real request), so the bare route sends exactly as many bytes.
      const probe = await fetch(`${ours.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ours.key}`, 'content-type': 'application/json' }, body: (await makeBodies(1))[0]! });
      const text = await probe.text();
      if (probe.ok) sizes[kind] = Buffer.byteLength(text);
      bare = await startServer({ mode: 'bare', sendBytes: sizes.send, checkBytes: sizes.check });
      const bareBodies = await makeBodies(50);

      const warmN = opts.quick ? 150 : 300;
      const warm = await load(ours.url, path, { key: ours.key, bodies: await makeBodies(warmN), amount: warmN });
      await load(bare.url, path, { key: null, bodies: bareBodies, duration: 1 });
      let estimate = Math.max(20, warm.rps);
      const oursReps: number[] = [];
      const bareReps: number[] = [];
      const status: Record<string, number> = {};
      let latencyAtMax = { p50: 0, p99: 0 };
      let bareCpu = 0;
      let bareRequests = 0;
      let requests = 0;
      // Server-side counters are summed over the measured runs only: preparing bodies (for the check path,
      // writing verifications through the store) happens outside these windows.
      let oursCpu = 0;
      let sqliteBytes: number | null = null;
      let sqliteCommits: number | null = null;
      const calls: Record<string, number> = {};
      let roundTrips: number | null = null;
      let rss = 0;
      for (let r = 0; r < reps; r++) {
        const bb = await bare.request<ServerStats>({ cmd: 'stats' }, 'stats');
        const b = await load(bare.url, path, { key: null, bodies: bareBodies, duration: seconds });
        const ba = await bare.request<ServerStats>({ cmd: 'stats' }, 'stats');
        bareCpu += ba.cpuMicros - bb.cpuMicros;
        bareRequests += b.requests;
        bareReps.push(b.rps);
        const amount = Math.max(100, Math.ceil(estimate * seconds));
        const bodies = await makeBodies(amount);
        const before = await ours.request<ServerStats>({ cmd: 'stats' }, 'stats');
        const o = await load(ours.url, path, { key: ours.key, bodies, amount });
        const after = await ours.request<ServerStats>({ cmd: 'stats' }, 'stats');
        oursCpu += after.cpuMicros - before.cpuMicros;
        for (const [k, v] of Object.entries(after.calls)) calls[k] = (calls[k] ?? 0) + v - (before.calls[k] ?? 0);
        if (after.redisRoundTrips !== null && before.redisRoundTrips !== null) roundTrips = (roundTrips ?? 0) + after.redisRoundTrips - before.redisRoundTrips;
        if (after.sqliteBytes !== null && before.sqliteBytes !== null) sqliteBytes = (sqliteBytes ?? 0) + after.sqliteBytes - before.sqliteBytes;
        if (typeof after.sqliteCommits === 'number' && typeof before.sqliteCommits === 'number') sqliteCommits = (sqliteCommits ?? 0) + after.sqliteCommits - before.sqliteCommits;
        rss = after.rss;
        oursReps.push(o.rps);
        addStatus(status, o.status);
        requests += o.requests;
        estimate = Math.max(20, o.rps);
        latencyAtMax = { p50: o.latency.p50, p99: o.latency.p99 };
        log(`http ${name} [${variant.label}] rep ${r + 1}/${reps}: ${o.rps} req/s (bare ${b.rps}) p99 ${o.latency.p99} ms ${JSON.stringify(o.status)}${o.errors ? ` errors ${o.errors}` : ''}`);
      }
      // Round trips a request waits for: requests one at a time, socket writes counted in the server.
      let waits: number | null = null;
      const first = await ours.request<ServerStats>({ cmd: 'stats' }, 'stats');
      if (typeof first.redisWrites === 'number') {
        const seq = await makeBodies(100);
        for (const body of seq) {
          const res = await fetch(`${ours.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ours.key}`, 'content-type': 'application/json' }, body });
          await res.arrayBuffer();
        }
        const last = await ours.request<ServerStats>({ cmd: 'stats' }, 'stats');
        waits = Math.round(((last.redisWrites! - first.redisWrites) / seq.length) * 100) / 100;
      }
      const storeCalls: Record<string, number> = {};
      for (const [k, v] of Object.entries(calls)) if (v > 0) storeCalls[k] = Math.round((v / Math.max(1, requests)) * 100) / 100;
      const point: HttpPoint = {
        name, server: variant.label, reps: oursReps, stats: summary(oursReps), status,
        cpuMsPerRequest: Math.round((oursCpu / 1000 / Math.max(1, requests)) * 1000) / 1000, latencyAtMax,
        perRequest: {
          storeCalls,
          ...(roundTrips !== null ? { redisRoundTrips: Math.round((roundTrips / Math.max(1, requests)) * 100) / 100 } : {}),
          ...(waits !== null ? { redisWaits: waits } : {}),
        },
        serverRssMB: Math.round(rss / 1048576),
      };
      // The WAL grows in steps and is reused after checkpoints: good to an order of magnitude only.
      if (sqliteBytes !== null && requests > 0) point.sqliteBytesPerRequest = Math.round(sqliteBytes / requests);
      if (sqliteCommits !== null && requests > 0) point.sqliteCommitsPerRequest = Math.round((sqliteCommits / requests) * 1000) / 1000;
      const barePoint: HttpPoint = { name, server: 'bare Fastify', reps: bareReps, stats: summary(bareReps), status: {}, cpuMsPerRequest: Math.round((bareCpu / 1000 / Math.max(1, bareRequests)) * 1000) / 1000 };

      // Latency at 80% of our own median max throughput (docs/benchmarks.md says why this load).
      const rate = Math.max(1, Math.floor(point.stats.median * 0.8));
      const amount = Math.max(50, rate * seconds);
      const at = await load(ours.url, path, { key: ours.key, bodies: await makeBodies(amount), amount, rate });
      point.at80 = { rate, achieved: at.rps, p50: at.latency.p50, p90: at.latency.p90, p99: at.latency.p99, max: at.latency.max, status: at.status };
      log(`http ${name} [${variant.label}] at 80% (${rate} req/s): p50 ${at.latency.p50} ms, p99 ${at.latency.p99} ms; CPU/request ${point.cpuMsPerRequest} ms (bare ${barePoint.cpuMsPerRequest} ms)${point.sqliteCommitsPerRequest !== undefined ? `; SQLite commits/request ${point.sqliteCommitsPerRequest}` : ''}`);
      points.push(barePoint, point);
      if (target !== null) {
        const ratio = Math.round((point.stats.median / barePoint.stats.median) * 1000) / 1000;
        const cpuRatio = Math.round((barePoint.cpuMsPerRequest / Math.max(1e-6, point.cpuMsPerRequest)) * 1000) / 1000;
        comparisons.push({ scenario: name, server: variant.label, ours: point.stats.median, bare: barePoint.stats.median, ratio, cpuRatio, target, met: ratio >= target, p99At80: at.latency.p99, p99Met: at.latency.p99 < 20 });
      }
    } finally {
      await ours.stop();
      await bare?.stop();
    }
  }

  const pick = (defaults: Variant[]): Variant[] => (opts.variants?.length ? opts.variants.map((n) => {
    const v = VARIANTS[n];
    if (!v) throw new Error(`unknown variant "${n}" (known: ${Object.keys(VARIANTS).join(', ')})`);
    return v;
  }) : defaults);
  const sendPath = '/v1/verifications';
  const checkPath = '/v1/verifications/check';
  if (want('send')) {
    for (const v of pick(opts.quick ? [SHIPPED] : [SHIPPED, FULL, MEMORY])) await measure('send', v, throughputPolicy, sendPath, 0.5, 'send');
    // All-denied: same bodies, number limit 0: every request runs every layer and ends in 429.
    for (const v of pick(opts.quick ? [SHIPPED] : [SHIPPED])) await measure('send, all denied (429)', v, deniedPolicy, sendPath, null, 'send');
  }
  if (want('check')) {
    for (const v of pick(opts.quick ? [SHIPPED] : [SHIPPED, FULL])) await measure('check', v, throughputPolicy, checkPath, 0.6, 'check');
  }
  if (want('redis')) {
    if (!(await redisUp(redisUrl))) notes.push(`redis: not reachable at ${redisUrl}, skipped`);
    else {
      for (const v of [REDIS]) await measure('send (redis)', v, throughputPolicy, sendPath, 0.5, 'send');
      if (!opts.quick) await measure('send, all denied (429, redis)', REDIS, deniedPolicy, sendPath, null, 'send');
    }
  }

  if (opts.profile) {
    // CPU profiles of the server child's load window (not part of the numbers above). Raw profiles are
    // megabytes each and machine-specific: they go to the temp folder, their summaries into the results.
    const dir = join(tmpdir(), 'otps-bench-profiles');
    mkdirSync(dir, { recursive: true });
    const targets: [string, Variant, string, string, 'send' | 'check'][] = [
      ['send-shipped', SHIPPED, throughputPolicy, sendPath, 'send'],
      ['send-memory', MEMORY, throughputPolicy, sendPath, 'send'],
      ['send-denied-shipped', SHIPPED, deniedPolicy, sendPath, 'send'],
      ['check-shipped', SHIPPED, throughputPolicy, checkPath, 'check'],
      ['send-redis', REDIS, throughputPolicy, sendPath, 'send'],
    ];
    for (const [name, variant, policyFile, path, kind] of targets.filter(([n]) => !opts.variants?.length || opts.variants.some((v) => n.includes(v)))) {
      const ours = await startServer({ mode: 'otp', policyFile, redisUrl, ...variant.server });
      const file = join(dir, `${name}.cpuprofile`);
      try {
        const n = variant === SHIPPED ? 1500 : opts.quick ? 3000 : 10_000;
        const bodies = await (kind === 'send' ? sendBodiesFor : checkBodiesFor(ours))(n + 300);
        // Warm-up outside the profile (JIT, first-use lazy loads), then profile the load window only.
        await load(ours.url, path, { key: ours.key, bodies: bodies.slice(0, 300), amount: 300 });
        await ours.request({ cmd: 'profileStart' }, 'profiling');
        await load(ours.url, path, { key: ours.key, bodies: bodies.slice(300), amount: n });
        await ours.request({ cmd: 'profileStop', file }, 'profile');
      } finally {
        await ours.stop();
      }
      const sum = summarise(JSON.parse(readFileSync(file, 'utf8')), 30);
      profiles.push({ name, summary: sum, text: formatSummary(sum) });
      log(`profile ${name}: ${file}`);
    }
  }
  return { points, comparisons, profiles, notes };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, profile: { type: 'boolean', default: false }, variants: { type: 'string' } } });
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const r = await runHttp({ quick: values.quick, only: new Set(list(values.only)), profile: values.profile, variants: list(values.variants) });
  console.log(JSON.stringify(r, null, 2));
}
