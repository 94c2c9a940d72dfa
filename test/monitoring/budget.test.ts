/**
 * The budget circuit breaker (src/monitoring/budget.ts) at the store level: a store failure at the moment of
 * tripping must not switch it off for the rest of the day, and several sends crossing the budget at once report
 * one trip. (The HTTP path, the alert and an admin's resume: test/monitoring/alert-rules.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.ts';
import { recordSpend } from '../../src/monitoring/budget.ts';
import { resolveMonitoringPolicy } from '../../src/monitoring/config.ts';
import { StoreUnavailableError } from '../../src/store/errors.ts';

const T0 = Date.parse('2026-11-23T08:00:00.000Z');
const policy = resolveMonitoringPolicy({ budgets: { countries: { ID: 1 }, circuitBreaker: true } }).value;
const send = (store: MemoryStore, i: number) => recordSpend(store, policy, { country: 'ID', priceMicros: 400_000, now: T0 + i });

describe('budget circuit breaker', () => {
  it('a pause write that fails when the budget is crossed is retried by the next send over budget', async () => {
    const store = new MemoryStore({ clock: () => T0 });
    const put = store.putSetting.bind(store);
    let failNext = true;
    store.putSetting = (async (...a: Parameters<typeof put>) => {
      if (failNext && String(a[0]).startsWith('pause:')) {
        failNext = false;
        throw new StoreUnavailableError('injected: command timed out');
      }
      return put(...a);
    }) as typeof store.putSetting;
    assert.equal((await send(store, 1))?.trip, null);
    assert.equal((await send(store, 2))?.trip, null);
    await assert.rejects(send(store, 3), StoreUnavailableError, 'the third send crosses 1.00; its pause fails');
    assert.equal(await store.getSetting('pause:country:ID', T0 + 3), null);
    const retried = await send(store, 4);
    assert.equal(retried?.trip?.country, 'ID', 'the next send over budget trips it');
    assert.ok(await store.getSetting('pause:country:ID', T0 + 4));
    // Tripped once today: after an admin's resume, more spend does not trip again.
    await store.deleteSetting('pause:country:ID');
    assert.equal((await send(store, 5))?.trip, null);
    assert.equal(await store.getSetting('pause:country:ID', T0 + 5), null);
  });

  it("an admin's resume stands until midnight UTC, also late in the day", async () => {
    const H = 3_600_000;
    const store = new MemoryStore({ clock: () => T0 });
    await send(store, 1);
    await send(store, 2);
    assert.equal((await send(store, 3))?.trip?.country, 'ID', 'tripped at 08:00');
    await store.deleteSetting('pause:country:ID'); // the admin resumes
    // A window recomputed to midnight on each call shrank past the 08:00 mark by 16:00 and tripped again.
    for (const at of [T0 + H, T0 + 8 * H, T0 + 15 * H + 59 * 60_000]) {
      const out = await recordSpend(store, policy, { country: 'ID', priceMicros: 400_000, now: at });
      assert.equal(out?.trip, null, new Date(at).toISOString());
      assert.equal(await store.getSetting('pause:country:ID', at), null);
    }
    // The next day trips again.
    const next = T0 + 24 * H;
    for (let i = 0; i < 2; i++) await recordSpend(store, policy, { country: 'ID', priceMicros: 400_000, now: next + i });
    assert.equal((await recordSpend(store, policy, { country: 'ID', priceMicros: 400_000, now: next + 2 }))?.trip?.country, 'ID');
  });

  it('sends crossing the budget at the same moment report one trip', async () => {
    const store = new MemoryStore({ clock: () => T0 });
    await send(store, 1);
    await send(store, 2);
    const outs = await Promise.all([send(store, 3), send(store, 3), send(store, 3)]);
    assert.equal(outs.filter((o) => o?.trip).length, 1);
    assert.ok(await store.getSetting('pause:country:ID', T0 + 3));
  });
});
