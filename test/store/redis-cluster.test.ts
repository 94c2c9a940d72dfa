/**
 * A Redis Cluster is refused when the store opens, with one clear line, instead of serving and failing
 * every send with CROSSSLOT (503) at run time. The cluster is a real `redis-server --cluster-enabled yes`
 * started here on a free loopback port (a one-node cluster with no slots assigned is enough: what the
 * store reads is `INFO cluster`). Without a `redis-server` binary on the PATH the test is skipped with a
 * notice; CI has one.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { openStore } from '../../src/store/factory.ts';

const hasRedisServer = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasRedisServer) console.log('# NOTICE: redis-server is not on the PATH; the Redis Cluster refusal test is skipped');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function startCluster(): Promise<{ url: string; proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'otps-cluster-'));
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return { url, proc, dir };
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill();
  throw new Error('the cluster-enabled redis-server did not start');
}

it('a Redis Cluster is refused at start-up with one clear line', { skip: !hasRedisServer }, async () => {
  const { url, proc, dir } = await startCluster();
  try {
    await assert.rejects(openStore({ kind: 'redis', redisUrl: url }), (err: Error) => {
      // The CLI prints errors named ConfigError as their message alone (src/cli/errors.ts).
      assert.equal(err.name, 'ConfigError');
      assert.match(err.message, /Redis Cluster is not supported/);
      return true;
    });
    // Through the command line: `serve` stops with that line and a failure status, no stack.
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0'], {
      env: { ...process.env, NODE_ENV: 'development', OTPSHIELD_REDIS_URL: url, OTPSHIELD_CONFIG: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /Redis Cluster is not supported/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
