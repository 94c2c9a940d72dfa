import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.ts';
import { storeContract, T0, makeVerification } from './contract.ts';

storeContract('memory', async () => new MemoryStore());

describe('MemoryStore bounds', () => {
  it('holds at most maxKeys counters while 50,000 distinct keys are consumed', async () => {
    const s = new MemoryStore({ maxKeys: 10_000 });
    for (let i = 0; i < 50_000; i++) {
      const r = await s.consumeLimits([{ reason: 'r', key: `k${i}`, limit: 3, windowMs: 600_000 }], T0 + i);
      assert.equal(r.allowed, true);
      if (i % 5000 === 0) assert.ok(s.stats().counters <= 10_000);
    }
    assert.equal(s.stats().counters, 10_000);
    // LRU: the newest keys survived, the oldest were evicted.
    assert.deepEqual(await s.peekLimits([{ reason: 'r', key: 'k49999', limit: 3, windowMs: 600_000 }], T0 + 50_000), [1]);
    assert.deepEqual(await s.peekLimits([{ reason: 'r', key: 'k0', limit: 3, windowMs: 600_000 }], T0 + 50_000), [0]);
  });

  it('a key that keeps being hit (even denied) is not the one evicted', async () => {
    const s = new MemoryStore({ maxKeys: 100 });
    const hot = [{ reason: 'r', key: 'hot', limit: 1, windowMs: 600_000 }];
    assert.equal((await s.consumeLimits(hot, T0)).allowed, true);
    for (let i = 0; i < 1000; i++) {
      await s.consumeLimits([{ reason: 'r', key: `cold${i}`, limit: 3, windowMs: 600_000 }], T0);
      assert.equal((await s.consumeLimits(hot, T0)).allowed, false);
    }
    assert.ok(s.stats().counters <= 100);
  });

  it('tokens and ttl settings are capped too; permanent settings are not evicted', async () => {
    const s = new MemoryStore({ maxKeys: 50 });
    await s.putSetting('policy', { v: 1 }, undefined, T0);
    for (let i = 0; i < 500; i++) {
      await s.useOnce(`t${i}`, 60_000, T0);
      await s.putSetting(`q${i}`, i, 60_000, T0);
    }
    assert.equal(s.stats().tokens, 50);
    assert.equal(s.stats().settings, 51);
    assert.deepEqual(await s.getSetting('policy', T0), { v: 1 });
    assert.equal(await s.getSetting('q499', T0), 499);
  });

  it('sweep(now) drops what expired and keeps what did not', async () => {
    const s = new MemoryStore();
    await s.consumeLimits([{ reason: 'r', key: 'short', limit: 3, windowMs: 1000 }], T0);
    await s.consumeLimits([{ reason: 'r', key: 'long', limit: 3, windowMs: 3_600_000 }], T0);
    await s.useOnce('tok', 500, T0);
    await s.putSetting('tmp', 1, 500, T0);
    await s.putSetting('perm', 1, undefined, T0);
    const v = makeVerification({ expiresAt: T0 + 1000 });
    await s.createVerification(v);
    await s.putListEntry({ id: 'l', list: 'block', kind: 'ip', value: '1.1.1.1', note: null, createdAt: T0, expiresAt: T0 + 500 });
    assert.equal(s.sweep(T0), 0);
    assert.equal(s.sweep(T0 + 10_000), 4); // short counter, token, tmp setting, list entry
    assert.deepEqual(s.stats(), { counters: 1, tokens: 0, settings: 1, verifications: 1, events: 0 });
    // Expired verifications stay readable for the retention period, then go.
    assert.ok(await s.getVerification(v.id));
    s.sweep(T0 + 1000 + 24 * 3_600_000);
    assert.equal(await s.getVerification(v.id), null);
  });

  it('events are capped at maxEvents, oldest dropped', async () => {
    const s = new MemoryStore({ maxEvents: 1000 });
    for (let b = 0; b < 30; b++) {
      await s.appendEvents(Array.from({ length: 100 }, (_, i) => ({ id: `e${b * 100 + i}`, at: T0 + b * 100 + i, type: 't' })));
    }
    assert.equal(s.stats().events, 1000);
    const oldest = await s.queryEvents({ limit: 1, order: 'asc' });
    assert.equal(oldest[0]!.id, 'e2000');
    const newest = await s.queryEvents({ limit: 1 });
    assert.equal(newest[0]!.id, 'e2999');
  });

  it('sweepIntervalMs runs an unref()ed timer that close() stops', async () => {
    let calls = 0;
    const s = new MemoryStore({ sweepIntervalMs: 5, clock: () => { calls++; return T0; } });
    await new Promise((r) => setTimeout(r, 40));
    await s.close();
    const seen = calls;
    assert.ok(seen > 0);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(calls, seen);
  });
});
