/**
 * The CLI opens the store with the server's options: a CLI that left out `store.redisMaxEvents` trimmed the
 * audit log to the default cap (1,000,000) with every event it wrote (a pause, a list change, a key).
 * Against the real Redis when reachable.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.ts';
import { storeFrom } from '../../src/cli/shared.ts';
import { storeConfigOf } from '../../src/store/factory.ts';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { dropRedisPrefix } from '../helpers/every-store.ts';

it('the server and the CLI derive the same store options from a configuration', () => {
  const cfg = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { dataDir: '/srv/otp', store: { kind: 'redis', redisUrl: 'redis://127.0.0.1:6379', prefix: 'p:', redisMaxEvents: 5_000_000, timeoutMs: 2500 } } });
  assert.deepEqual(storeConfigOf(cfg), { kind: 'redis', sqlitePath: '/srv/otp/otp-shield.db', redisUrl: 'redis://127.0.0.1:6379', prefix: 'p:', redisMaxEvents: 5_000_000, timeoutMs: 2500 });
});

await describeWithService('redis', 'CLI store options, Redis', (url) => {
  it('storeFrom keeps the configured event cap and timeout', async () => {
    const prefix = `otps-test:${randomTag()}:`;
    const cfg = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { store: { kind: 'redis', redisUrl: url, prefix, redisMaxEvents: 5_000_000, timeoutMs: 2500 } } });
    const store = await storeFrom(cfg);
    try {
      const r = store as unknown as { maxEvents: number; redis: { options: { commandTimeout?: number } } };
      assert.equal(r.maxEvents, 5_000_000);
      assert.equal(r.redis.options.commandTimeout, 2500);
    } finally {
      await store.close();
      await dropRedisPrefix(url, prefix);
    }
  });
});
