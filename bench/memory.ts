/**
 * Memory under a key-rotating attack: resident memory of an embedded OTP Shield process after
 * 1,000,000 distinct attackers (each with its own number, IP and device id), and after a second
 * million, to show it levels off instead of growing. Target: under 300 MB for the embedded (SQLite) mode.
 *
 *   node --expose-gc --import tsx bench/memory.ts [--store sqlite|memory] [--per-phase 1000000] [--span-hours 24]
 *
 * Each store runs in its own fresh child process (RSS of a process that ran other benchmarks would mean
 * nothing). The child builds the real context and server (config, intel tables, Fastify routes: the
 * resident baseline of a real instance), then drives `store.consumeLimits` with exactly the specs the
 * engine builds for a send that is allowed (`observationSpecs` + `sendLimitSpecs`): the worst case for
 * key growth, since a denied send writes nothing of its send limits. HTTP, evidence checks, verifications
 * and audit events are left out on purpose: this measures the rate-limit state, the part an attacker who
 * rotates keys can inflate (verifications and events have their own caps/retention, see docs/benchmarks.md).
 *
 * Time is simulated: each phase spreads its requests evenly over `--span-hours` (default 24 h, one
 * million distinct attackers per day), so after the second phase the first phase's day-long counters have
 * expired and a store that forgets expired keys must be back where it was. SQLite runs with
 * `synchronous = OFF` during the fill: fsync changes time, not memory or file size, and a million
 * fsync'ed transactions would take hours on this disk.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

export type MemoryVariant = 'sqlite' | 'sqlite-sweep100' | 'memory';

export interface MemoryPhase {
  attackers: number;
  /** False when the phase hit its time budget before all its attackers were driven. */
  completed: boolean;
  rssMB: number;
  heapUsedMB: number;
  /** Highest RSS sampled during the phase (no forced GC): what the OS must be able to give. */
  peakRssMB: number;
  /** Live counter keys in the store after the phase. */
  counters: number;
  /** SQLite only: counter rows already expired at the phase's end but not yet swept. */
  expiredNotSwept?: number;
  /** SQLite only: database + WAL file size. */
  fileMB?: number;
  seconds: number;
  requestsPerSecond: number;
}

export interface MemoryResult {
  store: MemoryVariant;
  perPhase: number;
  spanHours: number;
  baselineRssMB: number;
  baselineHeapUsedMB: number;
  phases: MemoryPhase[];
  notes: string[];
}

const MB = 1024 * 1024;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

// ---------------------------------------------------------------- parent side

/** Run the memory benchmark for one store in a fresh child process. */
export function runMemoryChild(store: MemoryVariant, perPhase: number, spanHours: number, budgetSeconds: number): Promise<MemoryResult> {
  const file = fileURLToPath(import.meta.url);
  const timeoutMs = (2 * budgetSeconds + 300) * 1000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', file, '--child', '--store', store, '--per-phase', String(perPhase), '--span-hours', String(spanHours), '--budget', String(budgetSeconds)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // Bounded: a runaway run is killed (by its pid) rather than left eating the shared machine.
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{"store"'));
      if (code === 0 && line) resolve(JSON.parse(line) as MemoryResult);
      else reject(new Error(`memory benchmark (${store}) failed: ${signal ?? code}\n${err.slice(-2000)}`));
    });
  });
}

// ---------------------------------------------------------------- child side

async function child(variant: MemoryVariant, perPhase: number, spanHours: number, budgetSeconds: number): Promise<MemoryResult> {
  // As `otp-shield serve` does: V8's heap growth bounded (src/lib/heap-growth.ts); OTPS_V8_DEFAULT_HEAP=1 measures without.
  if (!process.env.OTPS_V8_DEFAULT_HEAP) (await import('../src/lib/heap-growth.ts')).limitHeapGrowth();
  const { loadConfig } = await import('../src/config/load.ts');
  const { buildContext } = await import('../src/service/context.ts');
  const { buildServer } = await import('../src/http/server.ts');
  const { observationSpecs, sendLimitSpecs } = await import('../src/engine/limits.ts');
  const { NO_STATE } = await import('../src/engine/facts.ts');
  const { SqliteStore } = await import('../src/store/sqlite.ts');
  const { MemoryStore } = await import('../src/store/memory.ts');
  const { BENCH_SECRET, numberFor, ipFor, deviceFor } = await import('./fixtures/workload.ts');
  type Store = import('../src/store/interface.ts').Store;
  type SendFacts = import('../src/engine/facts.ts').SendFacts;

  const dataDir = mkdtempSync(join(tmpdir(), 'otps-bench-mem-'));
  const dbFile = join(dataDir, 'otp-shield.db');
  let sqlite: InstanceType<typeof SqliteStore> | null = null;
  let memory: { stats(): { counters: number } } | null = null;
  let store: Store;
  if (variant === 'sqlite' || variant === 'sqlite-sweep100') {
    // sqlite-sweep100: PROTOTYPE of the proposed sweep change, through the existing option (default 500).
    sqlite = new SqliteStore(dbFile, variant === 'sqlite-sweep100' ? { sweepEveryWrites: 100 } : {});
    sqlite.db.pragma('synchronous = OFF');
    store = sqlite;
  } else {
    // As the factory opens it (no sweep timer): what `store.kind: memory` gives an operator.
    const m = new MemoryStore();
    memory = m;
    store = m;
  }
  const cfg = loadConfig({
    env: { NODE_ENV: 'production' },
    overrides: {
      dataDir,
      server: { host: '127.0.0.1', port: 0 },
      secrets: { codeSecret: BENCH_SECRET, previousCodeSecrets: [] },
      senders: [],
      logLevel: 'warn',
      policyFile: fileURLToPath(new URL('./fixtures/policy-throughput.json', import.meta.url)),
    } as never,
  });
  const ctx = await buildContext(cfg, { store, delivery: { deliver: async () => ({ ok: true, sender: 'noop', providerId: null }) } });
  const app = await buildServer(ctx);
  await app.ready();
  const policy = ctx.policy();

  const gc = (globalThis as { gc?: () => void }).gc;
  const settle = async () => {
    // Two passes: the first frees, the second lets V8 release emptied pages back to the OS.
    for (let k = 0; k < 2; k++) {
      gc?.();
      await new Promise((r) => setTimeout(r, 50));
    }
    return process.memoryUsage();
  };
  const base = await settle();

  const counterRows = (): number =>
    sqlite ? (sqlite.db.prepare('SELECT count(*) AS n FROM counters').get() as { n: number }).n : memory!.stats().counters;
  const fileMB = (): number => {
    let bytes = 0;
    for (const f of [dbFile, `${dbFile}-wal`]) {
      try {
        bytes += statSync(f).size;
      } catch {
        /* no WAL yet */
      }
    }
    return round(bytes / MB);
  };

  const T0 = Date.parse('2026-11-23T00:00:00.000Z');
  const stepMs = (spanHours * 3_600_000) / perPhase;
  const phases: MemoryPhase[] = [];
  let total = 0;
  for (let phase = 0; phase < 2; phase++) {
    const started = performance.now();
    const deadline = started + budgetSeconds * 1000;
    let peak = 0;
    let done = 0;
    for (let k = 0; k < perPhase; k++) {
      // Bounded in time as well as in count: a store that slows down is reported, not waited for.
      if ((k & 1023) === 0 && performance.now() > deadline) break;
      done++;
      const i = phase * perPhase + k;
      const now = Math.floor(T0 + i * stepMs);
      const e164 = numberFor(i);
      const ip = ctx.signals.ipFacts(ipFor(i));
      const facts: SendFacts = {
        now,
        channel: 'sms',
        number: { e164, region: 'ID', callingCode: '62', type: 'MOBILE', prefix: ctx.signals.prefixOf(e164, policy.limits.prefixDigits), disposable: false, sources: [] },
        ip,
        evidence: { formToken: 'valid', pow: 'solved', captcha: 'missing', honeypot: false, elapsedMs: 5000, headless: false, scriptUserAgent: false, deviceId: deviceFor(i), acceptLanguage: 'id-ID' },
        lists: [],
        state: NO_STATE,
      };
      // What VerificationService.send does for an allowed request: one observation call, one send-limit call.
      await store.consumeLimits(observationSpecs(facts, policy, null).specs, now);
      const out = await store.consumeLimits(sendLimitSpecs(facts, policy, 0), now);
      if (!out.allowed) throw new Error(`unexpected denial at ${i}: ${JSON.stringify(out.denied)}`);
      if (k % 20_000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    const seconds = (performance.now() - started) / 1000;
    total += done;
    const endNow = Math.floor(T0 + (phase * perPhase + done) * stepMs);
    const m = await settle();
    peak = Math.max(peak, m.rss);
    const p: MemoryPhase = {
      // Distinct attackers driven so far (a phase cut short by its budget still starts the next phase at
      // its own index range, so keys never repeat).
      attackers: total,
      completed: done === perPhase,
      rssMB: round(m.rss / MB),
      heapUsedMB: round(m.heapUsed / MB),
      peakRssMB: round(peak / MB),
      counters: counterRows(),
      seconds: round(seconds),
      requestsPerSecond: Math.round(done / seconds),
    };
    if (sqlite) {
      p.expiredNotSwept = (sqlite.db.prepare('SELECT count(*) AS n FROM counters WHERE expires_at <= ?').get(endNow) as { n: number }).n;
      p.fileMB = fileMB();
    }
    phases.push(p);
    process.stderr.write(`memory/${variant}: ${JSON.stringify(p)}\n`);
  }

  const notes: string[] = [];
  if (memory) notes.push(`counters capped at 2,000,000 keys (CLOCK eviction), expired ones swept a few per call; counters after run: ${memory.stats().counters}`);
  if (sqlite) notes.push('SQLite page cache is the default (about 2 MB); counters live in the file, swept in batches of 2,000 every 500 writes');
  await app.close();
  await ctx.close();
  rmSync(dataDir, { recursive: true, force: true });
  return { store: variant, perPhase, spanHours, baselineRssMB: round(base.rss / MB), baselineHeapUsedMB: round(base.heapUsed / MB), phases, notes };
}

export interface MemorySuiteResult {
  results: MemoryResult[];
  /** Embedded-mode target: RSS under 300 MB after the first and the second million, and not growing. */
  target: { rssMB: number; worstRssMB: number | null; growthMB: number | null; met: boolean | null };
  notes: string[];
}

/**
 * The memory suite: each variant in its own child process, one after the other. Budgets bound the time
 * per phase; a phase that runs out reports how far it got (`completed: false`).
 */
export async function runMemory(opts: { quick: boolean; log?: (s: string) => void }): Promise<MemorySuiteResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const plan: [MemoryVariant, number, number][] = opts.quick
    ? [['sqlite', 20_000, 120], ['sqlite-sweep100', 20_000, 120], ['memory', 20_000, 120]]
    : [['sqlite', 1_000_000, 900], ['sqlite-sweep100', 200_000, 600], ['memory', 1_000_000, 600]];
  const results: MemoryResult[] = [];
  const notes: string[] = [];
  for (const [variant, perPhase, budget] of plan) {
    log(`memory: ${variant}, ${perPhase.toLocaleString('en-US')} attackers per phase (budget ${budget} s per phase)`);
    try {
      results.push(await runMemoryChild(variant, perPhase, 24, budget));
    } catch (err) {
      notes.push(`${variant}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const sqlite = results.find((r) => r.store === 'sqlite');
  const worst = sqlite ? Math.max(...sqlite.phases.map((p) => p.peakRssMB)) : null;
  const growth = sqlite && sqlite.phases.length === 2 ? Math.round((sqlite.phases[1]!.rssMB - sqlite.phases[0]!.rssMB) * 10) / 10 : null;
  const complete = sqlite ? sqlite.phases.every((p) => p.completed) : false;
  // "Not growing": the second million adds less than 5% of the first phase's RSS.
  const met = worst === null ? null : complete && worst < 300 && growth !== null && growth < 0.05 * sqlite!.phases[0]!.rssMB;
  return { results, target: { rssMB: 300, worstRssMB: worst, growthMB: growth, met }, notes };
}

// Entry point only when run directly (the runner imports runMemoryChild).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean', default: false },
      store: { type: 'string', default: 'sqlite' },
      'per-phase': { type: 'string', default: '1000000' },
      'span-hours': { type: 'string', default: '24' },
      budget: { type: 'string', default: '900' },
    },
  });
  const known: MemoryVariant[] = ['sqlite', 'sqlite-sweep100', 'memory'];
  const store = known.find((k) => k === values.store);
  if (!store) throw new Error(`--store must be one of ${known.join(', ')}`);
  const perPhase = Number(values['per-phase']);
  const spanHours = Number(values['span-hours']);
  const budget = Number(values.budget);
  if (values.child) {
    const r = await child(store, perPhase, spanHours, budget);
    console.log(JSON.stringify(r));
    process.exit(0);
  } else {
    const r = await runMemoryChild(store, perPhase, spanHours, budget);
    console.log(JSON.stringify(r, null, 2));
  }
}
