import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryStore } from '../../src/store/memory.ts';
import { cachedKeyLookup, createApiKey, verifyApiKey } from '../../src/service/api-keys.ts';
import { startTestApp } from '../helpers/app.ts';

describe('cached API-key lookup', () => {
  it('serves a known key from memory within its TTL, then reads the store again (revocation takes effect)', async () => {
    const store = new MemoryStore();
    const { key, record } = await createApiKey(store, { scopes: ['verify'], now: 1 });
    let reads = 0;
    const counting = { getApiKey: async (id: string) => (reads++, store.getApiKey(id)) };
    const lookup = cachedKeyLookup(counting, { ttlMs: 50 });
    assert.equal((await verifyApiKey(lookup, key, 2)).ok, true);
    assert.equal((await verifyApiKey(lookup, key, 2)).ok, true);
    assert.equal(reads, 1, 'second request served from the cache');
    await store.revokeApiKey(record.id, 3);
    await sleep(80);
    assert.deepEqual(await verifyApiKey(lookup, key, 4), { ok: false, reason: 'revoked' });
    assert.equal(reads, 2);
  });

  it('checks expiry against the request time even on a cache hit, and clear() forgets at once', async () => {
    const store = new MemoryStore();
    const { key, record } = await createApiKey(store, { scopes: ['verify'], now: 1, expiresAt: 100 });
    const lookup = cachedKeyLookup(store, { ttlMs: 60_000 });
    assert.equal((await verifyApiKey(lookup, key, 50)).ok, true);
    assert.deepEqual(await verifyApiKey(lookup, key, 100), { ok: false, reason: 'expired' });
    await store.revokeApiKey(record.id, 60);
    assert.deepEqual(await verifyApiKey(lookup, key, 61), { ok: true, record }, 'stale within the TTL (documented)');
    lookup.clear();
    assert.deepEqual(await verifyApiKey(lookup, key, 61), { ok: false, reason: 'revoked' });
  });

  it('does not cache unknown ids (a guesser cannot fill it, a key created later works at once)', async () => {
    const store = new MemoryStore();
    let reads = 0;
    const lookup = cachedKeyLookup({ getApiKey: async (id: string) => (reads++, store.getApiKey(id)) }, { ttlMs: 60_000, max: 2 });
    const fake = `osk_${'a'.repeat(12)}_${'b'.repeat(43)}`;
    for (let i = 0; i < 5; i++) assert.deepEqual(await verifyApiKey(lookup, fake, 1), { ok: false, reason: 'unknown' });
    assert.equal(reads, 5);
    const { key } = await createApiKey(store, { scopes: ['verify'], now: 1 });
    assert.equal((await verifyApiKey(lookup, key, 2)).ok, true);
  });
});

describe('a key in use', () => {
  it('records when it was last used, at most once a minute (keys list, lastUsedAt)', async () => {
    const t = await startTestApp();
    try {
      const lastUsed = async () => (await t.ctx.store.listApiKeys()).find((k) => k.name === 'test-verify')?.lastUsedAt ?? null;
      const settle = async () => {
        for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      };
      assert.equal(await lastUsed(), null);
      const get = () => t.request('GET', '/v1/verifications/vf_nope');
      await get();
      await settle();
      const first = t.clock();
      assert.equal(await lastUsed(), first);
      t.clock.advance(30_000);
      await get();
      await settle();
      assert.equal(await lastUsed(), first, 'not written again within the minute');
      t.clock.advance(31_000);
      await get();
      await settle();
      assert.equal(await lastUsed(), t.clock());
    } finally {
      await t.close();
    }
  });
});
