/**
 * Real backing services for tests (Redis, PostgreSQL), and the one policy for when they are missing:
 * - reachable: the suite runs against it;
 * - unreachable and OTPSHIELD_REQUIRE_SERVICES=1 (CI): the test file FAILS, with a clear message;
 * - unreachable otherwise: a `# NOTICE: ...` line is printed and the suite is skipped.
 *
 * Use from a test file with top-level await:
 *   await describeWithService('redis', 'RedisStore', (url) => { storeContract(...); it(...); });
 */
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';

export type ServiceKind = 'redis' | 'postgres';

export const REDIS_URL = process.env.OTPSHIELD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.OTPSHIELD_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

// A refused connection answers at once; the timeout only bounds a server that does not answer. It was 1.5 s
// until a CI run on a loaded 2-core machine (test files starting in parallel, benchmarks beside them) missed
// a running Redis and PostgreSQL by it: a reachable service must not be reported missing because the test
// process was slow, so the probe waits longer and, where the services are required, tries three times.
const PROBE_TIMEOUT_MS = 5000;
const PROBE_ATTEMPTS_REQUIRED = 3;
const cache = new Map<ServiceKind, Promise<string | null>>();

async function probe(check: () => Promise<boolean>): Promise<boolean> {
  const attempts = servicesRequired() ? PROBE_ATTEMPTS_REQUIRED : 1;
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true;
    if (i + 1 < attempts) await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/** Redacts a password in a URL for messages. */
function safe(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function probeRedis(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => {});
  try {
    await withTimeout(r.connect(), PROBE_TIMEOUT_MS);
    return (await withTimeout(r.ping(), PROBE_TIMEOUT_MS)) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

async function probePostgres(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  c.on('error', () => {});
  try {
    await withTimeout(c.connect(), PROBE_TIMEOUT_MS);
    await withTimeout(c.query('SELECT 1'), PROBE_TIMEOUT_MS);
    return true;
  } catch {
    return false;
  } finally {
    c.end().catch(() => {});
  }
}

/** The Redis URL when a server answers PING there, else null. */
export function redisAvailable(): Promise<string | null> {
  let p = cache.get('redis');
  if (!p) cache.set('redis', (p = probe(() => probeRedis(REDIS_URL)).then((ok) => (ok ? REDIS_URL : null))));
  return p;
}

/** The PostgreSQL URL when a server accepts a connection and `SELECT 1` there, else null. */
export function postgresAvailable(): Promise<string | null> {
  let p = cache.get('postgres');
  if (!p) cache.set('postgres', (p = probe(() => probePostgres(POSTGRES_URL)).then((ok) => (ok ? POSTGRES_URL : null))));
  return p;
}

const LABEL: Record<ServiceKind, string> = { redis: 'Redis', postgres: 'PostgreSQL' };

export function servicesRequired(): boolean {
  return process.env.OTPSHIELD_REQUIRE_SERVICES === '1';
}

/**
 * Register `fn`'s tests inside `describe(title)` when the service is reachable; otherwise apply the policy
 * above. `fn` receives the service URL.
 */
export async function describeWithService(kind: ServiceKind, title: string, fn: (url: string) => void): Promise<void> {
  const url = await (kind === 'redis' ? redisAvailable() : postgresAvailable());
  if (url) {
    describe(title, () => fn(url));
    return;
  }
  const where = safe(kind === 'redis' ? REDIS_URL : POSTGRES_URL);
  if (servicesRequired()) {
    describe(title, () => {
      it(`${LABEL[kind]} is reachable`, () => {
        throw new Error(`${LABEL[kind]} not reachable at ${where} and OTPSHIELD_REQUIRE_SERVICES=1: start it (or unset the variable to skip)`);
      });
    });
    return;
  }
  const env = kind === 'redis' ? 'OTPSHIELD_TEST_REDIS_URL' : 'OTPSHIELD_TEST_POSTGRES_URL';
  // Under `node --test` the runner already prefixes a child's stdout lines with "# " in TAP output.
  const hash = process.env.NODE_TEST_CONTEXT ? '' : '# ';
  console.log(`${hash}NOTICE: ${LABEL[kind]} not reachable at ${where}, skipping ${title} suite (set ${env}, or OTPSHIELD_REQUIRE_SERVICES=1 to fail instead)`);
  describe(title, { skip: `${LABEL[kind]} not reachable at ${where}` }, () => {});
}

/** A random key prefix / schema suffix so parallel test files never share state. */
export function randomTag(): string {
  return `${process.pid.toString(36)}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
