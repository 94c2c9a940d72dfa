/**
 * The journal (src/service/journal.ts): a code handed to a sender, or an approval, always ends up with its
 * audit event, even when the process dies while the provider holds the message or the store fails the event.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startFakeServer } from '../helpers/fake-http.ts';
import { startInstance } from '../helpers/process.ts';
import { startTestApp } from '../helpers/app.ts';
import { onEveryStore } from '../helpers/every-store.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { AuditEvent, Store } from '../../src/store/interface.ts';
import { createApiKey } from '../../src/service/api-keys.ts';
import { runMaintenance } from '../../src/service/maintenance.ts';
import { RECOVER_AFTER_MS, recoverJournal, journalKey, type JournalEntry } from '../../src/service/journal.ts';
import { StoreUnavailableError } from '../../src/store/errors.ts';
import { factsFromEvent } from '../../src/monitoring/facts.ts';
import { DEFAULT_MONITORING_POLICY } from '../../src/monitoring/config.ts';
import { parsePolicy, type Policy } from '../../src/engine/policy.ts';
import { loadConfig } from '../../src/config/load.ts';
import { buildContext } from '../../src/service/context.ts';
import { spendToday } from '../../src/monitoring/budget.ts';
import { emptied } from '../helpers/journal.ts';
import { verifiedNumberSpec } from '../../src/engine/limits.ts';


const silent = pino({ level: 'silent' });
const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

describe('journal: a crash while the provider holds the message', () => {
  it('SIGKILL during delivery: the send gets its audit event (delivery interrupted) once the grace has passed', async () => {
    // The provider receives the message and never answers: the process is killed while it waits.
    const receiver = await startFakeServer(() => ({ status: 200, json: { ok: true }, delayMs: 600_000 }));
    const dir = mkdtempSync(join(tmpdir(), 'otps-journal-'));
    const configFile = join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0 },
        secrets: { codeSecret: 'journal-test-secret-0123456789abcdefgh', previousCodeSecrets: [] },
        senders: [{ type: 'webhook', url: `${receiver.url}/deliver`, secret: 'journal-test-webhook-secret', timeoutMs: 60_000 }],
        logLevel: 'silent',
      }),
    );
    const db = join(dir, 'data', 'otp-shield.db');
    const seed = new SqliteStore(db);
    const key = (await createApiKey(seed, { scopes: ['verify'], now: Date.now() })).key;
    await seed.close();
    const to = '+6281234500077';
    const inst = await startInstance(configFile, join(dir, 'data'));
    let store: SqliteStore | undefined;
    try {
      const answer = fetch(`${inst.url}/v1/verifications`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to, client: client('36.72.10.5') }),
      }).then(
        (r) => r.status,
        () => 'no answer',
      );
      await receiver.waitFor(1, 20_000);
      inst.proc.kill('SIGKILL');
      assert.equal(await answer, 'no answer', 'the send was never acknowledged');
      const delivered = receiver.requests[0]!.json as { id: string; to: string; code: string };
      assert.equal(delivered.to, to);

      const killedAt = Date.now();
      let now = killedAt;
      store = new SqliteStore(db, { clock: () => now });
      const sends = async () => (await store!.queryEvents({ limit: 10, type: 'send' })) as AuditEvent[];
      assert.deepEqual(await sends(), [], 'the final event was never written: the provider had not answered');
      assert.equal((await store.listJournal(Number.MAX_SAFE_INTEGER, 10)).length, 1, 'the journal holds the send');

      // Too early: a delivery on another instance could still be running.
      assert.equal((await runMaintenance({ store, clock: () => now, log: silent, retentionDays: 30 })).recovered, 0);
      assert.deepEqual(await sends(), []);

      now = killedAt + RECOVER_AFTER_MS + 1000;
      // The server's maintenance loop, with its context: the recovered send's after-steps run too.
      const cfg = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { dataDir: join(dir, 'data'), secrets: { codeSecret: 'journal-test-secret-0123456789abcdefgh', previousCodeSecrets: [] }, logLevel: 'silent' } });
      const ctx = await buildContext(cfg, { store, clock: () => now });
      assert.equal((await spendToday(store, ['ID'], now)).totalMicros, 0, 'the stopped request never counted its spend');
      assert.equal((await runMaintenance({ store, clock: () => now, log: silent, retentionDays: 30, afterRecovered: (x, at) => ctx.verifications.afterRecovered(x, at) })).recovered, 1);
      const spend = await spendToday(store, ['ID'], now);
      assert.deepEqual([spend.totalMicros, spend.countries.get('ID')], [400_000, 400_000], 'counted in spend and the country budget (ID at 0.40)');
      const [e] = await sends();
      assert.ok(e);
      assert.equal(e.to, to);
      assert.equal(e.decision, 'allow');
      assert.equal(e.data?.verificationId, delivered.id);
      assert.deepEqual(e.data?.delivery, { ok: null, interrupted: true });
      assert.equal(typeof e.data?.score, 'number');
      assert.equal(JSON.stringify(e).includes(delivered.code), false, 'no code in the recovered event');
      // Counted as sent (spend errs on the side of the money), with an unknown sender.
      const sent = factsFromEvent(e, DEFAULT_MONITORING_POLICY.prices).find((f) => f.kind === 'sent');
      assert.ok(sent && sent.kind === 'sent' && sent.sender === 'unknown');

      assert.equal((await store.listJournal(Number.MAX_SAFE_INTEGER, 10)).length, 0, 'the entry is gone');
      assert.equal((await runMaintenance({ store, clock: () => now + 60_000, log: silent, retentionDays: 30 })).recovered, 0, 'recovered once');
      assert.equal((await sends()).length, 1);
    } finally {
      inst.proc.kill('SIGKILL');
      await store?.close();
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const NO_HISTORY_RULES = {
  'number.unverified_sends': { action: 'score', weight: 60, mode: 'off' },
  'number.failed_checks': { action: 'score', weight: 60, mode: 'off' },
};

/** The suites' policy: no SMS-pumping layer, no number-history rules, and these limits. */
function usePolicy(t: { ctx: { setPolicy: (p: Policy, version: number) => void } }, limits: Record<string, unknown>): void {
  const parsed = parsePolicy({ pumping: { enabled: false }, risk: { rules: NO_HISTORY_RULES }, limits });
  assert.ok(parsed.ok);
  t.ctx.setPolicy(parsed.policy, 0);
}

/** Make one store method fail (as a timeout or a lost connection would) while `when` holds for its arguments. */
function failing<K extends 'appendEvents' | 'transition' | 'addCode' | 'consumeLimitsAndCreate' | 'putJournal'>(store: Store, name: K, when: (...args: Parameters<Store[K]>) => boolean): () => void {
  const target = store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const orig = target[name]!;
  target[name] = async (...args: unknown[]) => {
    if (when(...(args as Parameters<Store[K]>))) throw new StoreUnavailableError(`injected: ${name} failed`);
    return orig.apply(store, args);
  };
  return () => {
    target[name] = orig;
  };
}

function suite(name: string, makeStore: () => Promise<Store | undefined>, dispose: (s: Store | undefined) => Promise<void>) {
  it(`${name}: every request leaves the journal empty; a failed event write is recovered; a step that did not happen is not`, async () => {
    const made = await makeStore();
    const t = await startTestApp(made ? { store: made } : {});
    const store = t.ctx.store;
    const journal = async () => store.listJournal<JournalEntry>(Number.MAX_SAFE_INTEGER, 100);
    const later = () => t.clock() + RECOVER_AFTER_MS + 1;
    const approvedOf = async (id: string) => (await store.queryEvents({ limit: 100, type: 'check', decision: 'approved' })).filter((e) => e.data?.verificationId === id);
    const send = (to: string, ip: string) => t.request('POST', '/v1/verifications', { to, client: client(ip) });
    try {
      usePolicy(t, { cooldown: { firstSeconds: 30, factor: 2, maxSeconds: 60 }, number: [{ limit: 2, windowSeconds: 600 }] });

      // An allowed first send and a resend; a refusal; a provider failure; a wrong and a right code.
      const a = await send('+6281234500100', '36.72.10.6');
      assert.equal(a.status, 201, a.text);
      t.clock.advance(31_000);
      const b = await send('+6281234500100', '36.72.10.6');
      assert.equal(b.status, 201, b.text);
      assert.equal(b.body.id, a.body.id);
      const sends = (await store.queryEvents({ limit: 10, type: 'send' })).filter((e) => e.to === '+6281234500100');
      assert.deepEqual(sends.map((e) => (e.data?.delivery as { ok: boolean }).ok), [true, true]);
      assert.equal((await t.request('POST', `/v1/verifications/${a.body.id}/cancel`)).status, 200);
      assert.equal((await send('+6281234500100', '36.72.10.6')).status, 429, 'the number limit');
      t.receiver.setHandler(() => ({ status: 400, json: { error: 'rejected' } }));
      assert.equal((await send('+6281234500101', '36.72.10.7')).status, 502);
      assert.equal((await store.queryEvents({ limit: 10, type: 'send.failed' })).length, 1);
      t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
      const c = await send('+6281234500102', '36.72.10.8');
      const code = t.lastCode('+6281234500102')!;
      assert.equal((await t.request('POST', '/v1/verifications/check', { id: c.body.id, code: code === '000000' ? '111111' : '000000' })).body.status, 'denied');
      assert.equal((await t.request('POST', '/v1/verifications/check', { id: c.body.id, code })).body.status, 'approved');
      assert.deepEqual(await journal(), []);

      // A store step that failed leaves no entry and sends nothing: a first send, a resend.
      const delivered = t.receiver.requests.length;
      let restore = failing(store, 'consumeLimitsAndCreate', () => true);
      assert.equal((await send('+6281234500104', '36.72.10.10')).status, 503);
      restore();
      const e = await send('+6281234500105', '36.72.10.11');
      assert.equal(e.status, 201);
      t.clock.advance(31_000);
      restore = failing(store, 'addCode', () => true);
      assert.equal((await send('+6281234500105', '36.72.10.11')).status, 503);
      restore();
      assert.equal(t.receiver.requests.length, delivered + 1, 'only the successful send was delivered');
      assert.deepEqual(await journal(), []);

      // The store fails the approval's event after the approval happened: 503, the approval stands, the journal
      // keeps the event, and recovery writes it (not before the grace).
      const d = await send('+6281234500103', '36.72.10.9');
      assert.equal(d.status, 201, d.text);
      restore = failing(store, 'appendEvents', (events) => events.some((x) => x.decision === 'approved'));
      const approval = await t.request('POST', '/v1/verifications/check', { id: d.body.id, code: t.lastCode('+6281234500103')!, client: { ip: '36.72.10.9' } });
      restore();
      assert.equal(approval.status, 503, approval.text);
      assert.equal((await t.request('GET', `/v1/verifications/${d.body.id}`)).body.status, 'approved', 'the approval stands');
      assert.equal((await approvedOf(d.body.id)).length, 0);
      assert.deepEqual((await journal()).map((x) => x.value.kind), ['approval']);
      assert.deepEqual(await recoverJournal(store, t.clock()), { recovered: 0, dropped: 0 }, 'not before the grace');
      const after: JournalEntry[] = [];
      assert.deepEqual(await recoverJournal(store, later(), async (x) => void after.push(x)), { recovered: 1, dropped: 0 });
      assert.deepEqual(after.map((x) => x.kind), ['approval'], 'its after-steps are run');
      const [approvedEvent] = await approvedOf(d.body.id);
      assert.equal(approvedEvent?.to, '+6281234500103');
      assert.equal(approvedEvent?.ip, '36.72.10.9');
      assert.deepEqual(await journal(), []);

      // A transition that failed: its entry stays; the user's retry a minute and a half later is approved; the
      // failed check's entry is dropped, not recorded as a second approval.
      const f = await send('+6281234500106', '36.72.10.12');
      restore = failing(store, 'transition', () => true);
      const failedCheck = await t.request('POST', '/v1/verifications/check', { id: f.body.id, code: t.lastCode('+6281234500106')!, client: { ip: '203.0.113.9' } });
      restore();
      assert.equal(failedCheck.status, 503);
      assert.equal((await journal()).length, 1);
      t.clock.advance(90_000);
      assert.equal((await t.request('POST', '/v1/verifications/check', { id: f.body.id, code: t.lastCode('+6281234500106')!, client: { ip: '36.72.10.12' } })).body.status, 'approved');
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 0, dropped: 1 });
      assert.deepEqual((await approvedOf(f.body.id)).map((x) => x.ip), ['36.72.10.12']);

      // The same right code twice in the same millisecond (a double submit): one approves; the other's closing
      // event fails, so its entry stays. It did not approve: recovery drops it (approvedBy names the winner).
      const g = await send('+6281234500107', '36.72.10.13');
      const gCode = t.lastCode('+6281234500107')!;
      restore = failing(store, 'appendEvents', (events) => events.some((x) => x.decision === 'not_pending'));
      const both = await Promise.all([
        t.request('POST', '/v1/verifications/check', { id: g.body.id, code: gCode, client: { ip: '36.72.10.13' } }),
        t.request('POST', '/v1/verifications/check', { id: g.body.id, code: gCode, client: { ip: '198.51.100.7' } }),
      ]);
      restore();
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 503]);
      assert.equal((await journal()).length, 1);
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 0, dropped: 1 });
      assert.equal((await approvedOf(g.body.id)).length, 1);

      // A step that stored the code and its entry but was reported failed (a command timeout, a connection lost
      // after COMMIT): the send answers 503, sends nothing, and leaves no entry for recovery to record as sent.
      // A first send, then a resend.
      const sentBefore = t.receiver.requests.length;
      const landed = <K extends 'consumeLimitsAndCreate' | 'addCode'>(name: K) => {
        const target = store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
        const orig = target[name]!;
        target[name] = async (...args: unknown[]) => {
          await orig.apply(store, args);
          throw new StoreUnavailableError('injected: the reply was lost');
        };
        return () => void (target[name] = orig);
      };
      restore = landed('consumeLimitsAndCreate');
      const lost = await send('+6281234500108', '36.72.10.14');
      restore();
      assert.equal(lost.status, 503, lost.text);
      const h = await send('+6281234500110', '36.72.10.16');
      assert.equal(h.status, 201, h.text);
      t.clock.advance(31_000);
      restore = landed('addCode');
      assert.equal((await send('+6281234500110', '36.72.10.16')).status, 503);
      restore();
      assert.equal(t.receiver.requests.length, sentBefore + 1, 'only the first send of the second number left');
      await emptied(journal); // the best-effort deletion is not waited for by the request

      // A provider failure whose status update then fails: the failure's event is written (and the entry gone).
      t.receiver.setHandler(() => ({ status: 400, json: { error: 'rejected' } }));
      restore = failing(store, 'transition', () => true);
      assert.equal((await send('+6281234500109', '36.72.10.15')).status, 503);
      restore();
      t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
      assert.equal((await store.queryEvents({ limit: 10, type: 'send.failed', number: '+6281234500109' })).length, 1);
      assert.deepEqual(await journal(), []);

      // The store fails the send's closing writes after the code left: the client still gets 201 and the id of
      // the code its user is reading (a 503 sent it to retry into the cooldown); the journal keeps the event.
      restore = failing(store, 'appendEvents', (events) => events.some((x) => x.type === 'send' && x.to === '+6281234500112'));
      const sentAnyway = await send('+6281234500112', '36.72.10.18');
      restore();
      assert.equal(sentAnyway.status, 201, sentAnyway.text);
      assert.match(String(sentAnyway.body.id), /^vf_/);
      assert.match(t.lastCode('+6281234500112') ?? '', /^\d{6}$/);
      assert.deepEqual((await journal()).map((x) => x.value.kind), ['send']);
      assert.deepEqual(await recoverJournal(store, later()), { recovered: 1, dropped: 0 });
      const [late] = await store.queryEvents({ limit: 10, type: 'send', number: '+6281234500112' });
      assert.equal(late?.data?.verificationId, sentAnyway.body.id);
      // This process knew the delivery's outcome: recorded as delivered, not as interrupted (a chaos review).
      const delivery = late?.data?.delivery as { ok?: unknown; interrupted?: unknown; sender?: unknown } | undefined;
      assert.equal(delivery?.ok, true, JSON.stringify(delivery));
      assert.equal(delivery?.interrupted, undefined);
      assert.equal(late?.decision, 'allow');

      // An approval whose process stopped right after the transition: recovery counts the number as verified
      // (quarantines exempt it, its trusted context gets its own failure budget).
      const k = await send('+6281234500111', '36.72.10.17');
      assert.equal(k.status, 201, k.text);
      assert.ok(await store.transition(k.body.id, 'approved', t.clock(), { approvedBy: 'ev_stopped_check' }));
      const verified = async () => (await store.peekLimits([verifiedNumberSpec('+6281234500111')], t.clock()))[0];
      assert.equal(await verified(), 0);
      const stopped: AuditEvent = { id: 'ev_stopped_check', at: t.clock(), type: 'check', to: '+6281234500111', decision: 'approved', reasons: [], data: { verificationId: k.body.id } };
      await t.ctx.verifications.afterRecovered({ kind: 'approval', event: stopped, verificationId: k.body.id }, t.clock());
      assert.equal(await verified(), 1);

      // A stray send entry is recovered exactly once, even by two instances at the same moment.
      const base: AuditEvent = { ...sends[0]!, id: 'ev_journal_test_1', data: { ...sends[0]!.data } };
      delete base.seq;
      delete (base.data as Record<string, unknown>).delivery;
      await store.putJournal(journalKey('send', base.id), base.at, { kind: 'send', event: base } satisfies JournalEntry);
      const runs = await Promise.all([recoverJournal(store, later()), recoverJournal(store, later())]);
      assert.equal(runs[0].recovered + runs[1].recovered, 1, JSON.stringify(runs));
      const recovered = (await store.queryEvents({ limit: 100 })).filter((x) => x.id === 'ev_journal_test_1');
      assert.deepEqual(recovered.map((x) => x.data?.delivery), [{ ok: null, interrupted: true }]);
      assert.deepEqual(await journal(), []);
    } finally {
      await t.close();
      await dispose(made);
    }
  });

  it(`${name}: two resends at once each journal their own send number while their messages are in flight`, async () => {
    const made = await makeStore();
    const t = await startTestApp(made ? { store: made } : {});
    const store = t.ctx.store;
    // Released in `finally` too: a failed assertion must not leave the provider holding requests (a hang).
    let release: () => void = () => {};
    try {
      // Without a cooldown (its limit would let only one of them through), so both reach the store step.
      usePolicy(t, { cooldown: { firstSeconds: 0, factor: 1, maxSeconds: 0 }, number: [{ limit: 5, windowSeconds: 600 }] });
      const to = '+6281234500200';
      const first = await t.request('POST', '/v1/verifications', { to, client: client('36.72.11.6') });
      assert.equal(first.status, 201, first.text);
      // Both see the verification with one send; the store step says which is the second and which the third.
      // The provider holds both messages until the test has read the journal (a fixed delay raced a slow machine).
      const gate = new Promise<void>((r) => (release = r));
      t.receiver.setHandler(async () => {
        await gate;
        return { status: 200, json: { ok: true } };
      });
      const deliveredBefore = t.receiver.requests.length;
      const resends = Promise.all([0, 1].map(() => t.request('POST', '/v1/verifications', { to, client: client('36.72.11.6') })));
      // Read once both messages are with the provider: each entry is final before its code is handed over.
      await t.receiver.waitFor(deliveredBefore + 2, 30_000);
      const entries = (await store.listJournal<JournalEntry>(Number.MAX_SAFE_INTEGER, 10)).map((x) => x.value);
      release();
      assert.deepEqual(entries.map((e) => e.event.data?.sends).sort(), [2, 3]);
      assert.deepEqual(entries.map((e) => e.event.data?.resend), [true, true]);
      assert.deepEqual((await resends).map((r) => r.status), [201, 201]);
      assert.deepEqual(await store.listJournal(Number.MAX_SAFE_INTEGER, 10), []);
    } finally {
      release();
      await t.close();
      await dispose(made);
    }
  });
}

await onEveryStore('journal', suite);
