/**
 * `kill -9` during traffic, then a restart on the same SQLite file: every verification the server
 * answered 201 for is still there and its code still checks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeServer } from '../helpers/fake-http.ts';
import { startInstance } from '../helpers/process.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { createApiKey } from '../../src/service/api-keys.ts';
import { outcome } from '../helpers/app.ts';

describe('crash safety of the embedded store', () => {
  it('loses no verification that was answered 201 when the server is killed with SIGKILL', async () => {
    const receiver = await startFakeServer(() => ({ status: 200, json: { ok: true } }));
    const dir = mkdtempSync(join(tmpdir(), 'otps-kill-'));
    const configFile = join(dir, 'config.json');
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ limits: { ip: [{ limit: 100000, windowSeconds: 600 }], subnet: [{ limit: 100000, windowSeconds: 600 }], prefix: [{ limit: 100000, windowSeconds: 3600 }] }, throttle: { enabled: false }, pumping: { enabled: false } }));
    writeFileSync(
      configFile,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0 },
        secrets: { codeSecret: 'restart-test-secret-0123456789abcdefgh', previousCodeSecrets: [] },
        senders: [{ type: 'webhook', url: `${receiver.url}/deliver`, secret: 'restart-test-webhook-secret' }],
        policyFile,
        logLevel: 'silent',
      }),
    );
    const db = join(dir, 'data', 'otp-shield.db');
    const seed = new SqliteStore(db);
    const key = (await createApiKey(seed, { scopes: ['verify'], now: Date.now() })).key;
    await seed.close();

    const post = (base: string, path: string, body: unknown) =>
      fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const first = await startInstance(configFile, join(dir, 'data'));
    const answered: { id: string; to: string }[] = [];
    let i = 0;
    const traffic = (async () => {
      for (;;) {
        const to = `+6281288${String(100000 + i++).padStart(6, '0')}`;
        try {
          const r = await post(first.url, '/v1/verifications', { to, client: { ip: `36.77.${i % 250}.${(i % 200) + 1}`, userAgent: 'Mozilla/5.0', acceptLanguage: 'id' } });
          if (r.status === 201) answered.push({ id: ((await r.json()) as { id: string }).id, to });
        } catch {
          return; // the server is gone
        }
      }
    })();
    while (answered.length < 40) await new Promise((r) => setTimeout(r, 20));
    first.proc.kill('SIGKILL');
    await traffic;

    const second = await startInstance(configFile, join(dir, 'data'));
    try {
      for (const a of answered) {
        const code = (receiver.requests.find((r) => (r.json as { id: string }).id === a.id)?.json as { code: string }).code;
        const r = await post(second.url, '/v1/verifications/check', { id: a.id, code });
        assert.deepEqual(outcome(await r.json()), { status: 'approved' }, `verification ${a.id} survived the crash`);
      }
      assert.ok(answered.length >= 40);
    } finally {
      second.proc.kill('SIGTERM');
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
