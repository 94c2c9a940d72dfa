/**
 * Runs one HTTP-level suite against each store an app can run on: SQLite (the default, always), then Redis and
 * PostgreSQL when reachable (describeWithService's policy). Each store is fresh; the app closes it with itself,
 * and `dispose` then removes what it left, over a connection of its own.
 */
import { describe } from 'node:test';
import pg from 'pg';
import type { Store } from '../../src/store/interface.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { describeWithService, randomTag } from './services.ts';

/**
 * Remove every key of a Redis store's prefix, over a connection of its own: settings, API keys and events have
 * no expiry, and the shared Redis should keep nothing of a run.
 */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  const s = new RedisStore(url, { prefix });
  try {
    const keys = await s.redis.keys(`${prefix}*`);
    if (keys.length) await s.redis.unlink(...keys);
  } finally {
    await s.close();
  }
}

/** `makeStore` undefined: the app's default (SQLite in its data dir). */
export type StoreSuite = (name: string, makeStore: () => Promise<Store | undefined>, dispose: (s: Store | undefined) => Promise<void>) => void;

export async function onEveryStore(title: string, suite: StoreSuite, kinds: readonly ('redis' | 'postgres')[] = ['redis', 'postgres']): Promise<void> {
  describe(title, () => suite('SQLite (the default store)', async () => undefined, async () => {}));
  if (kinds.includes('redis')) {
    await describeWithService('redis', `${title}, Redis`, (url) => {
      const prefix = `otps-test:${randomTag()}:`;
      suite('Redis', async () => new RedisStore(url, { prefix }), () => dropRedisPrefix(url, prefix));
    });
  }
  if (kinds.includes('postgres')) {
    await describeWithService('postgres', `${title}, PostgreSQL`, (url) => {
      suite(
        'PostgreSQL',
        async () => {
          const s = new PostgresStore(url, { schema: `otps_test_${randomTag()}`, poolSize: 4 });
          await s.init();
          return s;
        },
        async (s) => {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          try {
            await c.query(`DROP SCHEMA IF EXISTS "${(s as PostgresStore).schema}" CASCADE`);
          } finally {
            await c.end();
          }
        },
      );
    });
  }
}
