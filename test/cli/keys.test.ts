import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { verifyApiKey } from '../../src/service/api-keys.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'otps-keys-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));
const cli = (...args: string[]) =>
  execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, NODE_ENV: 'test', OTPSHIELD_DATA_DIR: dataDir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('otp-shield keys', () => {
  it('creates a key printed once, stores only its hash, lists and revokes it', async () => {
    const key = cli('keys', 'create', '--scope', 'verify', '--name', 'ci').trim();
    assert.match(key, /^osk_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    const id = key.split('_')[1]!;
    const store = new SqliteStore(join(dataDir, 'otp-shield.db'));
    const rec = await store.getApiKey(id);
    assert.ok(rec && !JSON.stringify(rec).includes(key.split('_').slice(2).join('_')), 'the secret is not stored');
    assert.equal((await verifyApiKey(store, key, Date.now())).ok, true);

    const list = JSON.parse(cli('keys', 'list', '--json')) as { id: string; scopes: string[]; revokedAt: string | null }[];
    assert.deepEqual(list.map((k) => [k.id, k.scopes, k.revokedAt]), [[id, ['verify'], null]]);
    assert.ok(!cli('keys', 'list').includes(key), 'list never shows the secret');

    cli('keys', 'revoke', id);
    const after = await verifyApiKey(store, key, Date.now());
    assert.deepEqual(after, { ok: false, reason: 'revoked' });
    // Both are audit events, with the key's id and never its secret; revoking an unknown id records nothing.
    assert.throws(() => cli('keys', 'revoke', 'nosuchkey000'), (e: { stderr?: string }) => /no such key/.test(String(e.stderr)));
    // A retried revoke: the key is revoked, which is what the script wanted (exit 0), and nothing is recorded twice.
    assert.match(cli('keys', 'revoke', id), new RegExp(`^already revoked ${id}`));
    const events = (await store.queryEvents({ limit: 10, order: 'asc' })).filter((e) => e.type.startsWith('key.'));
    assert.deepEqual(events.map((e) => [e.type, e.data?.id, e.data?.by]), [['key.create', id, 'cli'], ['key.revoke', id, 'cli']]);
    assert.deepEqual(events[0]!.data?.scopes, ['verify']);
    assert.ok(!JSON.stringify(events).includes(key.split('_').slice(2).join('_')), 'no secret in the events');
    assert.deepEqual(await store.listJournal(Number.MAX_SAFE_INTEGER, 10), []);
    await store.close();
  });

  it('refuses unknown scopes with a clear message', () => {
    assert.throws(() => cli('keys', 'create', '--scope', 'root'), (e: { stderr?: string }) => /unknown scope: root \(use verify, admin, read or metrics\)/.test(String(e.stderr)));
  });

  it('creates read-only and metrics-only keys', () => {
    const read = JSON.parse(cli('keys', 'create', '--scope', 'read', '--name', 'grafana', '--json'));
    assert.deepEqual(read.scopes, ['read']);
    const scraper = JSON.parse(cli('keys', 'create', '--scope', 'metrics', '--json'));
    assert.deepEqual(scraper.scopes, ['metrics']);
  });

  it('expiring keys stop working after their expiry', async () => {
    const out = JSON.parse(cli('keys', 'create', '--scope', 'admin', '--expires-in-days', '1', '--json')) as { key: string; expiresAt: string };
    const store = new SqliteStore(join(dataDir, 'otp-shield.db'));
    assert.equal((await verifyApiKey(store, out.key, Date.now())).ok, true);
    assert.deepEqual(await verifyApiKey(store, out.key, Date.parse(out.expiresAt) + 1), { ok: false, reason: 'expired' });
    await store.close();
  });
});
