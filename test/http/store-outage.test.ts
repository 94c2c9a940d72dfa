/**
 * A store outage is an outage, not a bug: requests get 503 `unavailable` with Retry-After (clients retry),
 * /readyz fails, and the service answers again when the store is back. The outage is real: the server talks
 * to the real Redis through a TCP relay on 127.0.0.1 that the test cuts and restores.
 */
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { dropRedisPrefix } from '../helpers/every-store.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { isStoreUnavailable } from '../../src/store/errors.ts';

/** A TCP relay to `target` that can drop every connection and refuse new ones (`cut`), then come back. */
async function relay(target: { host: string; port: number }): Promise<{ port: number; cut(): void; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(target.port, target.host);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  await listen();
  return {
    port,
    cut() {
      server.close();
      for (const s of sockets) s.destroy();
    },
    restore: listen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

await describeWithService('redis', 'a store outage', (redisUrl) => {
  let t: TestApp;
  let r: Awaited<ReturnType<typeof relay>>;
  const prefix = `otps-test:${randomTag()}:`;

  before(async () => {
    const u = new URL(redisUrl);
    r = await relay({ host: u.hostname, port: Number(u.port || 6379) });
    // Short command timeout: the test waits for it while the relay is cut.
    t = await startTestApp({ store: new RedisStore(`redis://127.0.0.1:${r.port}`, { prefix, commandTimeoutMs: 1000 }) });
  });

  after(async () => {
    // After the app has closed: its shutdown still writes settings (throttle state) under the prefix.
    await t.close();
    await r.close();
    await dropRedisPrefix(redisUrl, prefix);
  });

  const client = { ip: '36.72.50.5', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };

  it('answers 503 unavailable with Retry-After while Redis is unreachable, and recovers', async () => {
    assert.equal((await t.request('POST', '/v1/verifications', { to: '+6281355501234', client })).status, 201);
    r.cut();
    const send = await t.request('POST', '/v1/verifications', { to: '+6281355501235', client });
    assert.equal(send.status, 503, send.text);
    assert.equal(send.body.error.code, 'unavailable');
    assert.ok(Number(send.headers.get('retry-after')) >= 1);
    const check = await t.request('POST', '/v1/verifications/check', { to: '+6281355501234', code: '123456' });
    assert.equal(check.status, 503, check.text);
    assert.equal((await t.request('GET', '/readyz', undefined, { key: null })).status, 503);

    await r.restore();
    let back = 0;
    for (let i = 0; i < 50 && back !== 201; i++) {
      back = (await t.request('POST', '/v1/verifications', { to: '+6281355501236', client })).status;
      if (back !== 201) await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(back, 201, 'serves again once Redis is back');
  });
});

it('isStoreUnavailable: outages of each store, not bugs', () => {
  const e = (message: string, props: Record<string, unknown> = {}) => Object.assign(new Error(message), props);
  for (const err of [
    e('connect ECONNREFUSED 127.0.0.1:6379', { code: 'ECONNREFUSED' }),
    e('Reached the max retries per request limit (which is 2).', { name: 'MaxRetriesPerRequestError' }),
    e('Command timed out'),
    e('LOADING Redis is loading the dataset in memory', { name: 'ReplyError' }),
    e('OOM command not allowed when used memory > maxmemory', { name: 'ReplyError' }),
    e('the database system is shutting down', { code: '57P03' }),
    e('terminating connection due to administrator command', { code: '57P01' }),
    e('connection failure', { code: '08006' }),
    e('Connection terminated unexpectedly'),
    e('database or disk is full', { code: 'SQLITE_FULL' }),
    e('database is locked', { code: 'SQLITE_BUSY' }),
    e('disk I/O error', { code: 'SQLITE_IOERR_WRITE' }),
    new AggregateError([e('connect ECONNREFUSED ::1:5432', { code: 'ECONNREFUSED' })], 'all addresses failed'),
  ]) {
    assert.equal(isStoreUnavailable(err), true, err.message);
  }
  for (const err of [
    e('ERR Error running script: attempt to compare nil with number', { name: 'ReplyError' }),
    e('duplicate key value violates unique constraint', { code: '23505' }),
    e('UNIQUE constraint failed: verifications.id', { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }),
    new TypeError("Cannot read properties of undefined (reading 'x')"),
    'a string',
  ]) {
    assert.equal(isStoreUnavailable(err), false, String(err));
  }
});
