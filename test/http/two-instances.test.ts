/**
 * Two real server processes sharing one Redis behave as one service: 100 parallel sends to one number,
 * spread over both, allow exactly the limit; a code sent through one instance is checked through the other.
 */
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { dropRedisPrefix } from '../helpers/every-store.ts';
import { startFakeServer, type FakeServer } from '../helpers/fake-http.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { createApiKey } from '../../src/service/api-keys.ts';
import { startInstance } from '../helpers/process.ts';

await describeWithService('redis', 'two server processes sharing Redis', (redisUrl) => {
  let receiver: FakeServer;
  let dir: string;
  let instances: { url: string; proc: ChildProcess }[] = [];
  let key: string;
  const prefix = `otps-test:${randomTag()}:`;

  before(async () => {
    receiver = await startFakeServer(() => ({ status: 200, json: { ok: true } }));
    dir = mkdtempSync(join(tmpdir(), 'otps-two-'));
    const policyFile = join(dir, 'policy.json');
    // Cooldown 0 and the number-history rules off: this test is about the per-number limit being one atomic
    // counter across instances (with `number.unverified_sends` on, parallel requests that observe two
    // earlier sends would be challenged instead, and fewer than 3 could pass).
    const off = { action: 'score', weight: 60, mode: 'off' };
    writeFileSync(policyFile, JSON.stringify({ limits: { cooldown: { firstSeconds: 0, factor: 2, maxSeconds: 0 }, ip: [{ limit: 1000, windowSeconds: 600 }], subnet: [{ limit: 1000, windowSeconds: 600 }] }, throttle: { enabled: false }, risk: { rules: { 'number.unverified_sends': off, 'number.failed_checks': off } } }));
    const configFile = join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0 },
        store: { kind: 'redis', redisUrl, prefix },
        secrets: { codeSecret: 'two-instances-secret-0123456789abcdef', previousCodeSecrets: [] },
        senders: [{ type: 'webhook', url: `${receiver.url}/deliver`, secret: 'two-instances-webhook-secret' }],
        policyFile,
        logLevel: 'silent',
      }),
    );
    const store = new RedisStore(redisUrl, { prefix });
    key = (await createApiKey(store, { scopes: ['verify'], now: Date.now() })).key;
    await store.close();
    instances = await Promise.all([startInstance(configFile, join(dir, 'a')), startInstance(configFile, join(dir, 'b'))]);
  });

  after(async () => {
    await Promise.all(instances.map((i) => new Promise((r) => (i.proc.exitCode !== null ? r(null) : (i.proc.once('exit', r), i.proc.kill('SIGTERM'))))));
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await dropRedisPrefix(redisUrl, prefix);
  });

  const post = (base: string, path: string, body: unknown) =>
    fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

  it('100 parallel sends to one number over both instances allow exactly 3', async () => {
    const to = '+6281277770001';
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => post(instances[i % 2]!.url, '/v1/verifications', { to, client: { ip: `36.75.${i % 7}.${i + 1}`, userAgent: 'Mozilla/5.0', acceptLanguage: 'id' } })),
    );
    assert.equal(results.filter((r) => r.status === 201).length, 3, results.map((r) => r.status).join(','));
    assert.equal(results.filter((r) => r.status === 429).length, 97);
    assert.equal(receiver.requests.filter((r) => (r.json as { to: string }).to === to).length, 3);
  });

  it('a code sent through one instance is approved through the other, once', async () => {
    const to = '+6281277770002';
    const s = await post(instances[0]!.url, '/v1/verifications', { to, client: { ip: '36.76.0.1', userAgent: 'Mozilla/5.0', acceptLanguage: 'id' } });
    assert.equal(s.status, 201);
    const code = (receiver.requests.at(-1)!.json as { code: string }).code;
    const checks = await Promise.all(Array.from({ length: 10 }, (_, i) => post(instances[i % 2]!.url, '/v1/verifications/check', { id: s.body.id, code })));
    assert.equal(checks.filter((c) => c.body.status === 'approved').length, 1);
  });
});
