/**
 * Dynamic throttling relaxes a scope whose surge stopped dead, without waiting for a request to it: the
 * server's background task reads each tightened scope's 10-minute count every minute and steps it as a request
 * would. Before, a prefix tightened by a burst stayed "tightened" in the metrics and the monitoring state
 * (and challenged its first real user) for as long as nobody asked for it again. Real HTTP server on SQLite.
 */
import { it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { StoreUnavailableError } from '../../src/store/errors.ts';
import { RECOVER_AFTER_MS, recoverJournal } from '../../src/service/journal.ts';

const UA = 'Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36';
const MIN = 60_000;

/**
 * Throttle floors of 5 and `minTightenedMinutes`, then a learning hour of one send every 10 minutes (a baseline
 * of 1 per 10 minutes) to numbers of `range` (`+62815`) from addresses of `net` (`36.75`). Returns the send
 * (to `via`, one of the apps on the store; the first by default).
 */
async function learned(apps: TestApp[], range: string, net: string, minTightenedMinutes: number): Promise<(via?: TestApp) => Promise<{ status: number }>> {
  const [t] = apps as [TestApp];
  const put = await t.request('PUT', '/v1/admin/policy', { throttle: { floors: { global: 5, country: 5, prefix: 5 }, minTightenedMinutes } }, { key: t.adminKey });
  assert.equal(put.status, 200, put.text);
  for (const other of apps.slice(1)) other.ctx.state.invalidate();
  let i = 0;
  const send = (via: TestApp = t) =>
    via.request('POST', '/v1/verifications', { to: `${range}34${String(500_000 + i * 7_919).padStart(6, '0')}`, client: { ip: `${net}.${(i >> 8) & 255}.${i++ & 255}`, userAgent: UA, acceptLanguage: 'id-ID', elapsedMs: 6000 } });
  for (let k = 0; k < 8; k++) {
    assert.equal((await send(apps[k % apps.length])).status, 201);
    t.clock.advance(10 * MIN);
  }
  return send;
}

it('a scope tightened by a burst relaxes by itself once the burst stops, recorded once', async () => {
  // The server's own minute timer does it: only setInterval is mocked, so the test moves it.
  mock.timers.enable({ apis: ['setInterval'] });
  const t = await startTestApp();
  try {
    const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
    const send = await learned([t], '+62812', '36.72', 5);
    // A burst: tightened past the floor of 5.
    const burst = [];
    for (let k = 0; k < 10; k++) burst.push((await send()).status);
    assert.ok(burst.includes(403), `the burst was challenged: ${burst.join()}`);
    const state = async () => (await admin('GET', '/v1/admin/monitoring/state')).body.throttles.map((x: { scope: string }) => x.scope).sort();
    assert.deepEqual(await state(), ['country:ID', 'global', 'prefix:+62812']);

    // Nobody asks any more. 20 minutes later the server's task relaxes every scope, once.
    t.clock.advance(20 * MIN);
    mock.timers.tick(MIN);
    // The task runs on its own: wait until it has recorded its flips. The state turns "normal" before each flip's
    // event is appended (the state is written inside the journaled step), so wait for both (CI once read the
    // state empty while the last event was still on its way).
    const relaxedEvents = async () => (await admin('GET', '/v1/admin/events?type=throttle.normal')).body.events as unknown[];
    let left = await state();
    let events = await relaxedEvents();
    for (let k = 0; k < 200 && (left.length > 0 || events.length < 3); k++) {
      await new Promise((r) => setTimeout(r, 25));
      left = await state();
      events = await relaxedEvents();
    }
    assert.deepEqual(left, []);
    assert.deepEqual(await t.ctx.verifications.relaxIdleThrottles(t.clock()), [], 'nothing left to relax');
    assert.equal((await relaxedEvents()).length, 3, 'each scope relaxed once');
    const metrics = (await admin('GET', '/metrics')).text;
    assert.doesNotMatch(metrics, /^otpshield_throttle_tightened\{/m);
    // The next real user is served as usual.
    assert.equal((await send()).status, 201);
  } finally {
    mock.timers.reset();
    await t.close();
  }
});

it('a scope still busy, or tightened for less than minTightenedMinutes, stays tightened', async () => {
  const t = await startTestApp();
  try {
    const send = await learned([t], '+62813', '36.73', 15);
    for (let k = 0; k < 10; k++) await send();
    t.clock.advance(5 * MIN);
    assert.deepEqual(await t.ctx.verifications.relaxIdleThrottles(t.clock()), [], 'not before minTightenedMinutes');
    t.clock.advance(11 * MIN);
    // Still busy: 8 requests in the last 10 minutes, above the relax threshold (max(floor 5, 2 × baseline)).
    for (let k = 0; k < 8; k++) await send();
    const left = await t.ctx.verifications.relaxIdleThrottles(t.clock());
    assert.deepEqual(left, []);
  } finally {
    await t.close();
  }
});

it('two instances flipping a scope at the same moment record it once', async () => {
  // Two servers on one store (SQLite file), same clock: each steps the scope on the shared counts, and each would
  // flip it on its own view; one records the flip.
  const a = await startTestApp();
  const b = await startTestApp({ keepDataDir: a.dataDir, clock: a.clock });
  try {
    const send = await learned([a, b], '+62814', '36.74', 5);
    // The burst goes to both at once.
    await Promise.all(Array.from({ length: 12 }, (_, k) => send(k % 2 ? a : b)));
    const events = (await a.request('GET', '/v1/admin/events?type=throttle.tightened', undefined, { key: a.adminKey })).body.events as { data: { scope: string } }[];
    const byScope = new Map<string, number>();
    for (const e of events) byScope.set(e.data.scope, (byScope.get(e.data.scope) ?? 0) + 1);
    assert.deepEqual([...byScope].sort(), [['country:ID', 1], ['global', 1], ['prefix:+62814', 1]]);
  } finally {
    await b.close();
    await a.close();
  }
});

it('a flip whose write failed after its claim is still stored by the next request, and recovered into the audit log', async () => {
  const t = await startTestApp();
  try {
    const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
    const send = await learned([t], '+62815', '36.75', 5);
    // The first write of a tightened global state fails (a store blip after the flip's claim was taken).
    const store = t.ctx.store;
    const put = store.putSetting.bind(store);
    let failed = false;
    store.putSetting = (async (key: string, value: unknown, ttl?: number, now?: number) => {
      if (!failed && key === 'throttle:global' && (value as { tightenedSince: number | null }).tightenedSince !== null) {
        failed = true;
        throw new StoreUnavailableError('injected: timeout');
      }
      return put(key, value, ttl, now);
    }) as typeof store.putSetting;
    const statuses: number[] = [];
    for (let k = 0; k < 8; k++) statuses.push((await send()).status);
    assert.ok(failed && statuses.includes(503), statuses.join());
    // Past the shared-state refresh, the stored (normal) state is read again and the flip computed again.
    t.clock.advance(2_000);
    await send();
    const stored = await store.getSetting<{ tightenedSince: number | null }>('throttle:global', t.clock());
    assert.notEqual(stored?.tightenedSince ?? null, null, 'a later request stored the tightened state though the claim was taken');
    // The failed flip's journal entry is recorded by recovery, once, as interrupted. The scope went quiet
    // meanwhile and relaxed.
    t.clock.advance(RECOVER_AFTER_MS + 1);
    await t.ctx.verifications.relaxIdleThrottles(t.clock());
    await recoverJournal(store, t.clock());
    const tightened = async () => ((await admin('GET', '/v1/admin/events?type=throttle.tightened')).body.events as { data: { scope: string; interrupted?: boolean } }[]).filter((e) => e.data.scope === 'global');
    assert.deepEqual((await tightened()).map((e) => e.data.interrupted), [true]);
    // A new surge right after the recovery is recorded too: the claim recovery took names the old flip's slot,
    // not every flip of the scope (a review found the next tightening lost for the claim's length).
    t.clock.advance(60_000);
    for (let k = 0; k < 10; k++) await send();
    assert.deepEqual((await tightened()).map((e) => e.data.interrupted ?? false).sort(), [false, true]);
  } finally {
    await t.close();
  }
});
