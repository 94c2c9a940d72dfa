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
    // The newest keys survived, the oldest were evicted.
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

  it('CLOCK: hot keys touched on every call stay exact while thousands of keys rotate through a small cap', async () => {
    const cap = 64;
    const s = new MemoryStore({ maxKeys: cap });
    const N = 3000;
    // Two hot keys (like number and global), one hot key that is only ever denied, and two fresh keys per call.
    const hot = { reason: 'rl.hot', key: 'hot', limit: N, windowMs: 3_600_000 };
    const global = { reason: 'rl.global', key: 'global', limit: 1_000_000, windowMs: 86_400_000 };
    const blocked = { reason: 'rl.blocked', key: 'blocked', limit: 1, windowMs: 3_600_000 };
    assert.equal((await s.consumeLimits([blocked], T0)).allowed, true);
    for (let i = 0; i < N; i++) {
      const now = T0 + i * 1000;
      const r = await s.consumeLimits([hot, global, { reason: 'r', key: `a${i}`, limit: 3, windowMs: 60_000 }, { reason: 'r', key: `b${i}`, limit: 3, windowMs: 600_000 }], now);
      assert.equal(r.allowed, true, `call ${i}`);
      assert.deepEqual(r.counts, [i + 1, i + 1, 1, 1], `call ${i}`);
      const d = await s.consumeLimits([blocked], now);
      assert.equal(d.allowed, false, `blocked key forgotten at call ${i}`);
      assert.ok(s.stats().counters <= cap, `${s.stats().counters} counters at call ${i}`);
    }
    const end = T0 + N * 1000;
    assert.deepEqual(await s.peekLimits([hot, global, blocked], end), [N, N, 1]);
    // The hot limit is exactly full: the next call is denied by it alone, with a real Retry-After.
    const over = await s.consumeLimits([hot, global], end);
    assert.equal(over.allowed, false);
    assert.deepEqual(over.denied.map((x) => x.reason), ['rl.hot']);
    assert.ok(over.denied[0]!.retryAfterMs > 0 && over.denied[0]!.retryAfterMs <= 3_600_000 + 60_000);
    // The newest rotating keys are still there; the old ones are gone (evicted or expired).
    assert.deepEqual(await s.peekLimits([{ reason: 'r', key: `b${N - 1}`, limit: 3, windowMs: 600_000 }], end), [1]);
    assert.deepEqual(await s.peekLimits([{ reason: 'r', key: 'b0', limit: 3, windowMs: 600_000 }], end), [0]);
  });

  it('CLOCK: beyond the cap untouched counters go first, oldest first; used ones survive', async () => {
    const s = new MemoryStore({ maxKeys: 100 });
    const spec = (k: string) => ({ reason: 'r', key: k, limit: 1, windowMs: 600_000 });
    for (let i = 0; i < 100; i++) await s.consumeLimits([spec(`k${i}`)], T0);
    // Use every third key again: a denied consume is a use too (limit 1, so all of these are denied).
    for (let i = 0; i < 100; i += 3) assert.equal((await s.consumeLimits([spec(`k${i}`)], T0 + 1)).allowed, false);
    // A read does not count as a use.
    await s.peekLimits([spec('k1'), spec('k2')], T0 + 1);
    for (let i = 0; i < 50; i++) await s.consumeLimits([spec(`n${i}`)], T0 + 2);
    assert.equal(s.stats().counters, 100);
    const untouched = Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 3 !== 0);
    const evicted = new Set(untouched.slice(0, 50)); // the 50 oldest untouched
    const all = [...Array.from({ length: 100 }, (_, i) => `k${i}`), ...Array.from({ length: 50 }, (_, i) => `n${i}`)];
    const counts = await s.peekLimits(all.map(spec), T0 + 3);
    const expected = all.map((k) => (k.startsWith('k') && evicted.has(Number(k.slice(1))) ? 0 : 1));
    assert.deepEqual(counts, expected);
    // Next round: the survivors lost their second chance when the hand passed them; used again, they stay.
    for (let i = 0; i < 100; i += 3) await s.consumeLimits([spec(`k${i}`)], T0 + 4);
    for (let i = 50; i < 90; i++) await s.consumeLimits([spec(`n${i}`)], T0 + 5);
    const kept = await s.peekLimits(Array.from({ length: 34 }, (_, j) => spec(`k${j * 3}`)), T0 + 6);
    assert.deepEqual(kept, Array.from({ length: 34 }, () => 1));
    assert.equal(s.stats().counters, 100);
  });

  it('expired counters are swept as calls go by, without sweep() or a timer', async () => {
    const s = new MemoryStore();
    // 20,000 one-second keys, one every 10 ms: about 100 are live at any time.
    for (let i = 0; i < 20_000; i++) await s.consumeLimits([{ reason: 'r', key: `s${i}`, limit: 3, windowMs: 1000 }], T0 + i * 10);
    assert.ok(s.stats().counters < 400, `${s.stats().counters} counters left for ~100 live keys`);
    // What the incremental sweep left behind, a full sweep removes; live keys are untouched.
    s.sweep(T0 + 20_000 * 10);
    assert.ok(s.stats().counters <= 102);
    assert.deepEqual(await s.peekLimits([{ reason: 'r', key: 's19999', limit: 3, windowMs: 1000 }], T0 + 20_000 * 10), [1]);
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
