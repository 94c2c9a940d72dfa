/**
 * Open the configured store. Backends are imported lazily so that, e.g., a Redis deployment never loads
 * the native SQLite module and a SQLite one never needs `pg`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Store } from './interface.ts';
import type { Config } from '../config/schema.ts';

export interface StoreConfig {
  kind: 'memory' | 'sqlite' | 'redis' | 'postgres';
  /** SQLite file (parent directories are created); ':memory:' allowed. Required for kind 'sqlite'. */
  sqlitePath?: string;
  /** Required for kind 'redis'. */
  redisUrl?: string;
  /** Required for kind 'postgres'. */
  postgresUrl?: string;
  /** Redis key prefix (default `otps:`). */
  prefix?: string;
  /** Redis: approximate cap of the audit event stream (default 1,000,000; RedisStoreOptions.maxEvents). */
  redisMaxEvents?: number;
  /** Redis and PostgreSQL: the timeout of a store call (default 5000 ms). */
  timeoutMs?: number;
  /** PostgreSQL schema (default `otpshield`). */
  postgresSchema?: string;
  /** PostgreSQL connections per instance (default 10). */
  postgresPoolSize?: number;
}

/**
 * The store options of a configuration, for the server and every CLI command alike (a CLI that left out
 * `redisMaxEvents` trimmed the audit log to the default cap with each event it wrote).
 */
export function storeConfigOf(cfg: Pick<Config, 'dataDir' | 'store'>): StoreConfig & { sqlitePath: string } {
  const s = cfg.store;
  return {
    kind: s.kind,
    sqlitePath: s.sqlitePath ?? path.join(cfg.dataDir, 'otp-shield.db'),
    ...(s.redisUrl ? { redisUrl: s.redisUrl } : {}),
    ...(s.postgresUrl ? { postgresUrl: s.postgresUrl } : {}),
    ...(s.prefix ? { prefix: s.prefix } : {}),
    ...(s.redisMaxEvents !== undefined ? { redisMaxEvents: s.redisMaxEvents } : {}),
    ...(s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
    ...(s.postgresPoolSize !== undefined ? { postgresPoolSize: s.postgresPoolSize } : {}),
  };
}

export async function openStore(cfg: StoreConfig): Promise<Store> {
  switch (cfg.kind) {
    case 'memory': {
      const { MemoryStore } = await import('./memory.ts');
      return new MemoryStore();
    }
    case 'sqlite': {
      if (!cfg.sqlitePath) throw new Error('store.kind is sqlite but no sqlitePath is configured');
      if (cfg.sqlitePath !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(cfg.sqlitePath)), { recursive: true });
      const { SqliteStore } = await import('./sqlite.ts');
      return new SqliteStore(cfg.sqlitePath);
    }
    case 'redis': {
      if (!cfg.redisUrl) throw new Error('store.kind is redis but no redisUrl is configured');
      const { RedisStore } = await import('./redis.ts');
      const store = new RedisStore(cfg.redisUrl, {
        ...(cfg.prefix !== undefined ? { prefix: cfg.prefix } : {}),
        ...(cfg.redisMaxEvents !== undefined ? { maxEvents: cfg.redisMaxEvents } : {}),
        ...(cfg.timeoutMs !== undefined ? { commandTimeoutMs: cfg.timeoutMs } : {}),
      });
      return ready(store, () => store.checkSupported());
    }
    case 'postgres': {
      if (!cfg.postgresUrl) throw new Error('store.kind is postgres but no postgresUrl is configured');
      const { PostgresStore } = await import('./postgres.ts');
      const store = new PostgresStore(cfg.postgresUrl, {
        ...(cfg.postgresSchema !== undefined ? { schema: cfg.postgresSchema } : {}),
        ...(cfg.timeoutMs !== undefined ? { timeoutMs: cfg.timeoutMs } : {}),
        ...(cfg.postgresPoolSize !== undefined ? { poolSize: cfg.postgresPoolSize } : {}),
      });
      return ready(store, () => store.init());
    }
    default: {
      const kind: never = cfg.kind;
      throw new Error(`unknown store kind ${String(kind)}`);
    }
  }
}

/** `store` once `prepare` (migrations, checks) succeeded; closed, and the error passed on, when it failed. */
async function ready(store: Store, prepare: () => Promise<void>): Promise<Store> {
  try {
    await prepare();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
