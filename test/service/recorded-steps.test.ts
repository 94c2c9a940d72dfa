/**
 * Admin steps and the other steps whose audit event follows them (a list change, a pause, a resume, a policy
 * save, a cancel, a quarantine's start and lift, a delivery receipt) are journaled ahead (src/service/journal.ts `recordedStep`): a store that fails the event
 * after the step leaves an entry that recovery writes as the event, marked `interrupted`; a step that failed
 * leaves neither entry nor event; every other request leaves the journal empty. On SQLite, Redis and PostgreSQL.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp } from '../helpers/app.ts';
import { onEveryStore } from '../helpers/every-store.ts';
import type { AuditEvent, Store } from '../../src/store/interface.ts';
import { RECOVER_AFTER_MS, recordedStep, recoverJournal, type StepClaim } from '../../src/service/journal.ts';
import { StoreUnavailableError } from '../../src/store/errors.ts';
import { DEFAULT_POLICY, parsePolicy } from '../../src/engine/policy.ts';
import { emptied } from '../helpers/journal.ts';
import { recordReceipt } from '../../src/monitoring/receipts.ts';


type Method = 'appendEvents' | 'putListEntry' | 'removeListEntry' | 'putSetting' | 'deleteSetting' | 'transition' | 'peekLimits' | 'useOnce' | 'deleteJournal';

/** Make one store method fail (as a timeout or a lost connection would) while `when` holds for its arguments. */
function failing(store: Store, name: Method, when: (...args: unknown[]) => boolean = () => true): () => void {
  const target = store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const orig = target[name]!;
  target[name] = async (...args: unknown[]) => {
    if (when(...args)) throw new StoreUnavailableError(`injected: ${name} failed`);
    return orig.apply(store, args);
  };
  return () => {
    target[name] = orig;
  };
}

const client = { ip: '36.72.10.6', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };

function suite(name: string, makeStore: () => Promise<Store | undefined>, dispose: (s: Store | undefined) => Promise<void>) {
  it(`${name}: an admin step whose event failed is recorded as interrupted; one that failed is not recorded`, async () => {
    const made = await makeStore();
    const t = await startTestApp(made ? { store: made } : {});
    const store = t.ctx.store;
    const journal = () => store.listJournal(Number.MAX_SAFE_INTEGER, 100);
    const eventsOf = async (type: string) => (await store.queryEvents({ limit: 100, type })) as AuditEvent[];
    const later = () => t.clock() + RECOVER_AFTER_MS + 1;
    const failEvent = (type: string) => failing(store, 'appendEvents', (events) => (events as AuditEvent[]).some((e) => e.type === type));
    try {
      const sent = await t.request('POST', '/v1/verifications', { to: '+6281234500300', client });
      assert.equal(sent.status, 201, sent.text);

      // Each step with its event failing: the client hears 503, the step stands, the journal keeps the event.
      const steps: { type: string; run: () => Promise<{ status: number; text: string }>; stood: () => Promise<boolean> }[] = [
        {
          type: 'list.add',
          run: () => t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '198.51.100.7' }, { key: t.adminKey }),
          stood: async () => (await store.listEntries(t.clock())).some((e) => e.value === '198.51.100.7'),
        },
        {
          type: 'pause',
          run: () => t.request('POST', '/v1/admin/pause', { country: 'NG' }, { key: t.adminKey }),
          stood: async () => (await store.listSettings('pause:', t.clock())).length === 1,
        },
        {
          type: 'resume',
          run: () => t.request('POST', '/v1/admin/resume', { country: 'NG' }, { key: t.adminKey }),
          stood: async () => (await store.listSettings('pause:', t.clock())).length === 0,
        },
        {
          type: 'policy.update',
          run: () => t.request('PUT', '/v1/admin/policy', { ...DEFAULT_POLICY, note: 'recorded' }, { key: t.adminKey }),
          stood: async () => (await t.request('GET', '/v1/admin/policy/versions', undefined, { key: t.adminKey })).body.versions.length === 1,
        },
        {
          type: 'cancel',
          run: () => t.request('POST', `/v1/verifications/${sent.body.id}/cancel`),
          stood: async () => (await store.getVerification(sent.body.id))?.status === 'canceled',
        },
        {
          type: 'quarantine.start',
          run: () => t.request('POST', '/v1/admin/quarantines', { scope: 'prefix:+62896', minutes: 30 }, { key: t.adminKey }),
          stood: async () => (await store.listSettings('quarantine:', t.clock())).length === 1,
        },
        {
          type: 'quarantine.end',
          run: () => t.request('DELETE', '/v1/admin/quarantines/prefix:+62896', undefined, { key: t.adminKey }),
          stood: async () => (await store.listSettings('quarantine:', t.clock())).length === 0,
        },
      ];
      for (const step of steps) {
        const restore = failEvent(step.type);
        const version = t.ctx.policyVersion();
        const r = await step.run();
        restore();
        assert.equal(r.status, 503, `${step.type}: ${r.text}`);
        // A saved policy is in force on this instance even though its event failed.
        if (step.type === 'policy.update') assert.equal(t.ctx.policyVersion(), version + 1);
        assert.equal(await step.stood(), true, `${step.type}: the step stands`);
        assert.deepEqual(await eventsOf(step.type), [], `${step.type}: no event yet`);
        assert.equal((await journal()).length, 1, `${step.type}: the journal holds its event`);
        assert.deepEqual(await recoverJournal(store, t.clock()), { recovered: 0, dropped: 0 }, 'not before the grace');
        assert.deepEqual(await recoverJournal(store, later()), { recovered: 1, dropped: 0 });
        const [e] = await eventsOf(step.type);
        assert.equal(e?.data?.interrupted, true, `${step.type}: recorded as interrupted`);
        assert.deepEqual(await journal(), []);
      }
      // The recovered events carry what was known before the step.
      assert.equal((await eventsOf('list.add'))[0]?.data?.entry && typeof ((await eventsOf('list.add'))[0]!.data!.entry as { id: string }).id, 'string');
      assert.equal((await eventsOf('cancel'))[0]?.data?.verificationId, sent.body.id);

      // A delivery receipt whose event failed after its once-only claim: recovered, and the provider's retry
      // (a duplicate now) records nothing more.
      const receipt = { sender: 'webhook', messageId: 'msg-1', to: '+6281234500300', channel: 'sms' as const, status: 'delivered' as const, error: null, verificationId: sent.body.id, now: t.clock() };
      const deps = { store, signals: t.ctx.signals, prefixDigits: 3 };
      let restore = failEvent('delivery.receipt');
      await assert.rejects(recordReceipt(deps, receipt), StoreUnavailableError);
      restore();
      assert.equal(await recordReceipt(deps, receipt), false, 'the retry is a duplicate');
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 1, dropped: 0 });
      assert.deepEqual((await eventsOf('delivery.receipt')).map((e) => [e.data?.messageId, e.data?.interrupted]), [['msg-1', true]]);
      assert.equal(await recordReceipt(deps, { ...receipt, messageId: 'msg-2' }), true);
      assert.equal((await eventsOf('delivery.receipt')).length, 2);
      assert.deepEqual(await journal(), []);

      // A crash after the entry and before the claim (the claim and the entry's deletion fail, as a process
      // that stopped would leave them). If the provider's retry is then recorded, recovery finds its event and
      // drops the entry; if no retry came, recovery takes the claim and records it, and a later retry is the
      // duplicate. Either way one event per message.
      const crashBeforeClaim = async (messageId: string) => {
        const undo = [
          failing(store, 'useOnce', (key) => String(key).startsWith('rcpt:')),
          failing(store, 'deleteJournal'),
        ];
        await assert.rejects(recordReceipt(deps, { ...receipt, messageId }), StoreUnavailableError);
        await new Promise((r) => setTimeout(r, 20));
        for (const u of undo) u();
        assert.equal((await journal()).length, 1);
      };
      await crashBeforeClaim('msg-3');
      assert.equal(await recordReceipt(deps, { ...receipt, messageId: 'msg-3' }), true, 'the retry is recorded');
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 0, dropped: 1 });
      await crashBeforeClaim('msg-4');
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 1, dropped: 0 });
      assert.equal(await recordReceipt(deps, { ...receipt, messageId: 'msg-4' }), false, 'the later retry is the duplicate');
      // A claim whose call failed after the store took it (a timeout, a connection lost with the reply): every
      // retry finds it held, so only the entry the failed call left can record the receipt.
      const target = store as unknown as { useOnce: Store['useOnce'] };
      const useOnce = target.useOnce;
      target.useOnce = async (key, ttlMs, now) => {
        const taken = await useOnce.call(store, key, ttlMs, now);
        if (key.startsWith('rcpt:')) throw new StoreUnavailableError(`injected: the reply of a claim that was ${taken ? 'taken' : 'refused'} was lost`);
        return taken;
      };
      try {
        await assert.rejects(recordReceipt(deps, { ...receipt, messageId: 'msg-5' }), StoreUnavailableError);
      } finally {
        target.useOnce = useOnce;
      }
      assert.equal(await recordReceipt(deps, { ...receipt, messageId: 'msg-5' }), false, 'the retry finds the claim held');
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 1, dropped: 0 });
      const byMessage = (await eventsOf('delivery.receipt')).map((e) => e.data?.messageId).sort();
      assert.deepEqual(byMessage, ['msg-1', 'msg-2', 'msg-3', 'msg-4', 'msg-5']);
      assert.deepEqual(await journal(), []);

      // A quarantine whose end was claimed but whose renewal failed is still recorded as ended (expired): the
      // claim keeps every other instance from recording it.
      assert.equal((await t.request('POST', '/v1/admin/quarantines', { scope: 'prefix:+62877', minutes: 1 }, { key: t.adminKey })).status, 201);
      t.clock.advance(2 * 60_000);
      restore = failing(store, 'peekLimits', (specs) => (specs as { key: string }[]).some((x) => x.key.startsWith('pp:q:')));
      const after = await t.request('POST', '/v1/verifications', { to: '+6281234500302', client });
      restore();
      assert.equal(after.status, 201, after.text);
      const ended = (await eventsOf('quarantine.end')).filter((e) => e.data?.scope === 'prefix:+62877');
      assert.deepEqual(ended.map((e) => [e.reasons, e.data?.interrupted ?? false]), [[['expired'], false]]);
      assert.deepEqual(await journal(), []);

      // An admin's lift that fails before its claim (the quarantine's deletion fails): it did not happen, so it
      // leaves no entry and records nothing, and the quarantine's expiry is recorded when it comes.
      assert.equal((await t.request('POST', '/v1/admin/quarantines', { scope: 'prefix:+62878', minutes: 1 }, { key: t.adminKey })).status, 201);
      restore = failing(store, 'deleteSetting', (key) => String(key).includes('prefix:+62878'));
      assert.equal((await t.request('DELETE', `/v1/admin/quarantines/${encodeURIComponent('prefix:+62878')}`, undefined, { key: t.adminKey })).status, 503);
      restore();
      await emptied(journal); // the best-effort deletion is not waited for by the request
      t.clock.advance(2 * 60_000);
      assert.equal((await t.request('POST', '/v1/verifications', { to: '+6281234500303', client })).status, 201);
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 0, dropped: 0 });
      const lifted = (await eventsOf('quarantine.end')).filter((e) => e.data?.scope === 'prefix:+62878');
      assert.deepEqual(lifted.map((e) => [e.reasons, e.data?.interrupted ?? false]), [[['expired'], false]]);

      // A list removal: the same; removing an entry that does not exist records nothing and leaves nothing.
      const [entry] = await store.listEntries(t.clock());
      assert.ok(entry);
      restore = failEvent('list.remove');
      assert.equal((await t.request('DELETE', `/v1/admin/lists/${entry.id}`, undefined, { key: t.adminKey })).status, 503);
      restore();
      assert.deepEqual(await store.listEntries(t.clock()), []);
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 1, dropped: 0 });
      assert.deepEqual((await eventsOf('list.remove')).map((e) => [e.data?.id, e.data?.interrupted]), [[entry.id, true]]);
      assert.equal((await t.request('DELETE', `/v1/admin/lists/${entry.id}`, undefined, { key: t.adminKey })).status, 404);
      assert.deepEqual(await journal(), []);
      assert.equal((await eventsOf('list.remove')).length, 1);

      // A step that failed: an error, no event, no entry.
      restore = failing(store, 'putListEntry');
      assert.equal((await t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '198.51.100.8' }, { key: t.adminKey })).status, 503);
      restore();
      restore = failing(store, 'putSetting', (key) => String(key).startsWith('pause:'));
      assert.equal((await t.request('POST', '/v1/admin/pause', { all: true }, { key: t.adminKey })).status, 503);
      restore();
      await emptied(journal); // the best-effort deletion is not waited for by the request
      assert.equal((await eventsOf('list.add')).length, 1);
      assert.equal((await eventsOf('pause')).length, 1);

      // Steps that go well: their events, not interrupted, and an empty journal.
      assert.equal((await t.request('POST', '/v1/admin/pause', { prefix: '+62896' }, { key: t.adminKey })).status, 200);
      assert.equal((await t.request('POST', '/v1/admin/resume', { prefix: '+62896' }, { key: t.adminKey })).status, 200);
      const added = await t.request('POST', '/v1/admin/lists', { list: 'allow', kind: 'number', value: '+6281234500301' }, { key: t.adminKey });
      assert.equal(added.status, 201, added.text);
      assert.equal((await t.request('DELETE', `/v1/admin/lists/${added.body.id}`, undefined, { key: t.adminKey })).status, 200);
      const policy = await t.request('PUT', '/v1/admin/policy', { ...DEFAULT_POLICY }, { key: t.adminKey });
      assert.equal(policy.status, 200, policy.text);
      assert.deepEqual(await journal(), []);
      const updates = await eventsOf('policy.update');
      assert.deepEqual(updates.map((e) => [e.data?.version ?? null, e.data?.interrupted ?? false]).sort(), [[null, true], [2, false]]);
      assert.deepEqual((await eventsOf('list.remove')).map((e) => e.data?.interrupted ?? false).sort(), [false, true]);
    } finally {
      await t.close();
      await dispose(made);
    }
  });
}

/** A scope's throttle flip (tightened) whose event failed: the flip stands, and recovery records it. */
function throttleSuite(name: string, makeStore: () => Promise<Store | undefined>, dispose: (s: Store | undefined) => Promise<void>) {
  it(`${name}: a throttle flip whose event failed is recorded by recovery`, async () => {
    const made = await makeStore();
    const t = await startTestApp(made ? { store: made } : {});
    const store = t.ctx.store;
    try {
      const parsed = parsePolicy({
        pumping: { enabled: false },
        risk: { rules: { 'number.unverified_sends': { action: 'score', weight: 60, mode: 'off' }, 'number.failed_checks': { action: 'score', weight: 60, mode: 'off' } } },
        throttle: { enabled: true, factor: 4, relaxFactor: 2, floors: { global: 100_000, country: 100_000, prefix: 2 }, baselineHalfLifeMinutes: 10, minTightenedMinutes: 1 },
      });
      assert.ok(parsed.ok, JSON.stringify(parsed));
      t.ctx.setPolicy(parsed.policy, 0);
      let i = 0;
      const send = () => {
        i++;
        return t.request('POST', '/v1/verifications', { to: `+6287712${String(i).padStart(5, '0')}`, client: { ...client, ip: `36.${72 + (i % 50)}.${i % 250}.9` } });
      };
      // An hour and more of one request a minute teaches the prefix its baseline (about 10 per 10 minutes).
      for (let m = 0; m < 70; m++) {
        assert.equal((await send()).status, 201);
        t.clock.advance(60_000);
      }
      // Then a burst: the request that tightens the prefix fails with its event; those after it are challenged.
      const restore = failing(store, 'appendEvents', (events) => (events as AuditEvent[]).some((e) => e.type === 'throttle.tightened'));
      const statuses: number[] = [];
      for (let k = 0; k < 60 && !statuses.includes(503); k++) statuses.push((await send()).status);
      restore();
      assert.equal(statuses.at(-1), 503, statuses.join(','));
      assert.equal((await send()).status, 403, 'the tightened prefix challenges');
      assert.deepEqual(await store.queryEvents({ limit: 10, type: 'throttle.tightened' }), []);
      assert.deepEqual(await recoverJournal(store, t.clock() + RECOVER_AFTER_MS + 1), { recovered: 1, dropped: 0 });
      const [e] = await store.queryEvents({ limit: 10, type: 'throttle.tightened' });
      assert.equal(e?.data?.scope, 'prefix:+62877');
      assert.equal(e?.data?.interrupted, true);
      assert.deepEqual(await store.listJournal(Number.MAX_SAFE_INTEGER, 10), []);

      // Two instances flip a scope at once: the winner records it; the loser's write fails after it lost the
      // claim, so its entry stays. Recovery drops that entry (the winner's event is there) although the
      // claim, shorter than recovery's wait, has lapsed by then (it recorded the flip a second time).
      const scope = 'prefix:+62899';
      const at = t.clock();
      const claim: StepClaim = { key: `throttle:flip:${scope}:tightened:${at}`, ttlMs: 60_000, find: { query: { type: 'throttle.tightened', from: at }, data: { scope } } };
      const ev = (id: string): AuditEvent => ({ id, at, type: 'throttle.tightened', decision: null, reasons: [], data: { scope } });
      assert.equal(await recordedStep(store, ev('ev_flip_winner'), async (take) => take(), (w, x) => (w ? x : null), claim), true);
      await assert.rejects(
        recordedStep(store, ev('ev_flip_loser'), async (take) => {
          await take();
          throw new StoreUnavailableError('injected: the state write failed');
        }, (w, x) => (w ? x : null), claim),
        StoreUnavailableError,
      );
      assert.equal((await store.listJournal(Number.MAX_SAFE_INTEGER, 10)).length, 1);
      assert.deepEqual(await recoverJournal(store, at + RECOVER_AFTER_MS + 1), { recovered: 0, dropped: 1 });
      assert.deepEqual((await store.queryEvents({ limit: 10, type: 'throttle.tightened' })).filter((x) => x.data?.scope === scope).map((x) => x.id), ['ev_flip_winner']);
    } finally {
      await t.close();
      await dispose(made);
    }
  });
}

await onEveryStore('recorded steps', suite);
await onEveryStore('recorded throttle flips', throttleSuite);
