/**
 * The replay's cheap shared-state reloads (src/service/state.ts `settingChanges`, src/replay/driver.ts
 * `ReplayStore`) must give exactly the snapshot a full reload gives: same scopes, same values, same order,
 * the same dropping of unpersisted throttle updates. Checked against a plain SharedState over a plain
 * MemoryStore that receives the same writes, over a long random sequence of writes, deletes, expiries and
 * local throttle updates.
 */
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayStore, Replayer } from '../../src/replay/driver.ts';
import { SETTING, SharedState } from '../../src/service/state.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { seededUniform } from '../../src/sim/random.ts';

const rng = seededUniform;

const view = (s: SharedState) => ({
  pauses: [...s.pauses],
  quarantines: [...s.quarantines],
  throttles: [...s.throttles],
});

describe('shared state with change tracking (replay)', () => {
  for (const seed of [1, 2, 3]) {
    it(`gives the same snapshots as full reloads (random writes, deletes, expiries; seed ${seed})`, async () => {
      const rand = rng(seed);
      let now = Date.parse('2026-11-23T00:00:00Z');
      const clock = () => now;
      const tracked = new ReplayStore(clock, false);
      const plain = new MemoryStore({ clock });
      const fast = new SharedState(tracked, clock, { settingChanges: (t) => tracked.settingChanges(t) });
      const full = new SharedState(plain, clock);
      const scopes = ['global', 'country:ID', 'country:NG', 'prefix:+62812', 'prefix:+62896', 'prefix:+234906', 'all'];
      const prefixes = [SETTING.throttle, SETTING.throttle, SETTING.throttle, SETTING.quarantine, SETTING.pause, 'pumping:history:', 'stats:'];
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      let reloads = 0;
      for (let step = 0; step < 3000; step++) {
        const r = rand();
        if (r < 0.35) {
          const key = pick(prefixes) + pick(scopes);
          const value = { baseline: Math.floor(rand() * 100), sampledAt: now, tightenedSince: rand() < 0.2 ? now : null, until: now + 60_000 };
          const ttl = rand() < 0.7 ? Math.floor(rand() * 120_000) : undefined;
          await tracked.putSetting(key, value, ttl, now);
          await plain.putSetting(key, value, ttl, now);
        } else if (r < 0.42) {
          const key = pick(prefixes) + pick(scopes);
          await tracked.deleteSetting(key);
          await plain.deleteSetting(key);
        } else if (r < 0.6) {
          // An unpersisted update of this instance: kept until the next reload, then dropped.
          const scope = pick(scopes);
          const s = { baseline: rand() * 10, sampledAt: now, tightenedSince: null };
          fast.setThrottleLocal(scope, s);
          full.setThrottleLocal(scope, s);
        } else if (r < 0.7) {
          fast.invalidate();
          full.invalidate();
        } else {
          now += Math.floor(rand() * 3000);
        }
        await fast.fresh();
        await full.fresh();
        assert.deepEqual(view(fast), view(full), `step ${step}`);
        for (const scope of scopes) assert.deepEqual(fast.throttle(scope), full.throttle(scope), `step ${step} ${scope}`);
        assert.equal(fast.pausedFor('+6281234567890', 'ID', 'sms'), full.pausedFor('+6281234567890', 'ID', 'sms'));
        assert.deepEqual(fast.quarantineFor('+62896', 'ID', now), full.quarantineFor('+62896', 'ID', now));
        reloads++;
      }
      assert.ok(reloads > 0);
    });
  }

  it('a map handed out by a getter is not changed under its holder', async () => {
    let now = 0;
    const clock = () => now;
    const store = new ReplayStore(clock, false);
    const state = new SharedState(store, clock, { settingChanges: (t) => store.settingChanges(t) });
    await store.putSetting(SETTING.throttle + 'global', { baseline: 1, sampledAt: 0, tightenedSince: null });
    await state.fresh();
    const held = state.throttles;
    await store.putSetting(SETTING.throttle + 'prefix:+62812', { baseline: 2, sampledAt: 0, tightenedSince: null });
    now += 2000;
    await state.fresh();
    assert.deepEqual([...held.keys()], ['global']);
    assert.deepEqual([...state.throttles.keys()], ['global', 'prefix:+62812']);
  });

  it('a reload drops unpersisted throttle updates (as a full reload does) and keeps persisted ones', async () => {
    let now = 0;
    const clock = () => now;
    const store = new ReplayStore(clock, false);
    const state = new SharedState(store, clock, { settingChanges: (t) => store.settingChanges(t) });
    const stored = { baseline: 1, sampledAt: 0, tightenedSince: null };
    await store.putSetting(SETTING.throttle + 'global', stored);
    await state.fresh();
    const local = { baseline: 5, sampledAt: 10, tightenedSince: null };
    state.setThrottleLocal('global', local);
    state.setThrottleLocal('country:ID', local);
    assert.deepEqual(state.throttle('global'), local);
    assert.deepEqual([...state.throttles], [['global', local], ['country:ID', local]]);
    now += 1000;
    await state.fresh();
    assert.deepEqual(state.throttle('global'), stored);
    assert.equal(state.throttle('country:ID'), null);
    await store.putSetting(SETTING.throttle + 'global', local);
    state.invalidate();
    await state.fresh();
    assert.deepEqual(state.throttle('global'), local);
  });
});

describe('shared state on a shared store', () => {
  it('a write this instance made while a reload was running is seen by the next fresh(), not a second later', async () => {
    let now = Date.parse('2026-11-23T00:00:00Z');
    const clock = () => now;
    const store = new MemoryStore({ clock });
    const state = new SharedState(store, clock);
    // The listing of pauses is slow; the pause is written (and the snapshot invalidated) after it read.
    let gate: () => void = () => {};
    let slow = true;
    const list = store.listSettings.bind(store);
    store.listSettings = (async (prefix: string, at?: number) => {
      const out = await list(prefix, at);
      if (prefix === SETTING.pause && slow) {
        slow = false;
        await new Promise<void>((r) => (gate = r));
      }
      return out;
    }) as typeof store.listSettings;
    const running = state.fresh();
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    await store.putSetting(`${SETTING.pause}all`, { since: now, note: null });
    state.invalidate();
    const next = state.fresh(); // a send right after the admin's pause, while the load still runs
    gate();
    await running;
    await next;
    assert.equal(state.pausedFor('+6281234567890', 'ID', 'sms'), 'all');
    now += 10; // well within refreshMs
    await state.fresh();
    assert.equal(state.pausedFor('+6281234567890', 'ID', 'sms'), 'all');
  });
});

describe('replay store and service ports', () => {
  const T0 = Date.parse('2026-11-23T08:00:00.000Z');
  const bot = { ip: '36.72.10.5', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', formToken: 'valid', pow: 'missing', honeypot: true, elapsedMs: 800 };
  const line = (i: number, to: string) => JSON.stringify({ at: new Date(T0 + i * 1000).toISOString(), type: 'send', to, channel: 'sms', client: bot });

  it('a tarpitted send does not wait for a timer', async () => {
    const r = await Replayer.create();
    const timers = mock.method(globalThis, 'setTimeout');
    try {
      const out = await r.line(line(0, '+6281234567801'));
      assert.equal((out as { decision: string }).decision, 'tarpit');
      assert.equal(timers.mock.callCount(), 0);
    } finally {
      timers.mock.restore();
      await r.close();
    }
  });

  it('per-request audit events are counted, and stored only with keepAuditEvents', async () => {
    for (const keep of [false, true]) {
      const r = await Replayer.create({ keepAuditEvents: keep });
      try {
        for (let i = 0; i < 3; i++) await r.line(line(i, `+628123456780${i}`));
        assert.equal(r.summary().auditEvents.send, 3);
        const stored = await r.ctx.store.queryEvents({ type: 'send', limit: 10 });
        assert.equal(stored.length, keep ? 3 : 0);
      } finally {
        await r.close();
      }
    }
  });
});
