/**
 * The send journal (src/service/send-journal.ts): a code handed to a sender always ends up with an audit
 * event, even when the process dies while the provider holds the message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { startFakeServer } from '../helpers/fake-http.ts';
import { startInstance } from '../helpers/process.ts';
import { startTestApp } from '../helpers/app.ts';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import type { AuditEvent, Store } from '../../src/store/interface.ts';
import { createApiKey } from '../../src/service/api-keys.ts';
import { runMaintenance } from '../../src/service/maintenance.ts';
import { RECOVER_AFTER_MS, recoverSendJournal, SEND_JOURNAL_PREFIX, sendJournalKey, type SendJournalEntry } from '../../src/service/send-journal.ts';
import { factsFromEvent } from '../../src/monitoring/facts.ts';
import { DEFAULT_MONITORING_POLICY } from '../../src/monitoring/config.ts';
import { parsePolicy } from '../../src/engine/policy.ts';

const silent = pino({ level: 'silent' });
const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

describe('send journal: a crash while the provider holds the message', () => {
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
      assert.equal((await store.listSettings(SEND_JOURNAL_PREFIX)).length, 1, 'the journal holds the send');

      // Too early: a delivery on another instance could still be running.
      assert.equal((await runMaintenance({ store, clock: () => now, log: silent, retentionDays: 30 })).recovered, 0);
      assert.deepEqual(await sends(), []);

      now = killedAt + RECOVER_AFTER_MS + 1000;
      assert.equal((await runMaintenance({ store, clock: () => now, log: silent, retentionDays: 30 })).recovered, 1);
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

      assert.equal((await store.listSettings(SEND_JOURNAL_PREFIX)).length, 0, 'the entry is gone');
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

function suite(name: string, makeStore: () => Promise<Store | undefined>, dispose: (s: Store | undefined) => Promise<void>) {
  it(`${name}: sends, resends, failures and refusals leave no journal entry; a stray entry is recovered once or dropped`, async () => {
    const made = await makeStore();
    const t = await startTestApp(made ? { store: made } : {});
    const store = t.ctx.store;
    const journal = async () => store.listSettings<SendJournalEntry>(SEND_JOURNAL_PREFIX, t.clock());
    try {
      const parsed = parsePolicy({
        pumping: { enabled: false },
        risk: { rules: NO_HISTORY_RULES },
        limits: { cooldown: { firstSeconds: 30, factor: 2, maxSeconds: 60 }, number: [{ limit: 2, windowSeconds: 600 }] },
      });
      assert.ok(parsed.ok);
      t.ctx.setPolicy(parsed.policy, 0);

      // An allowed first send and a resend.
      const a = await t.request('POST', '/v1/verifications', { to: '+6281234500100', client: client('36.72.10.6') });
      assert.equal(a.status, 201, a.text);
      t.clock.advance(31_000);
      const b = await t.request('POST', '/v1/verifications', { to: '+6281234500100', client: client('36.72.10.6') });
      assert.equal(b.status, 201, b.text);
      assert.equal(b.body.id, a.body.id);
      assert.deepEqual(await journal(), []);
      const sends = (await store.queryEvents({ limit: 10, type: 'send' })).filter((e) => e.to === '+6281234500100');
      assert.deepEqual(sends.map((e) => (e.data?.delivery as { ok: boolean }).ok), [true, true]);

      // Refused by the number limit inside the atomic create (no pending verification: it was canceled).
      assert.equal((await t.request('POST', `/v1/verifications/${a.body.id}/cancel`)).status, 200);
      const refused = await t.request('POST', '/v1/verifications', { to: '+6281234500100', client: client('36.72.10.6') });
      assert.equal(refused.status, 429, refused.text);
      assert.deepEqual(await journal(), []);

      // A provider failure: send.failed, no entry.
      t.receiver.setHandler(() => ({ status: 400, json: { error: 'rejected' } }));
      const failed = await t.request('POST', '/v1/verifications', { to: '+6281234500101', client: client('36.72.10.7') });
      assert.equal(failed.status, 502, failed.text);
      assert.equal((await store.queryEvents({ limit: 10, type: 'send.failed' })).length, 1);
      assert.deepEqual(await journal(), []);

      // A stray entry of a real send is recovered exactly once, even by two instances at the same moment; one
      // whose verification never held the send is dropped.
      const real = sends[0]!;
      const base: AuditEvent = { ...real, id: 'ev_journal_test_1', seq: undefined, data: { ...real.data } };
      delete base.seq;
      delete (base.data as Record<string, unknown>).delivery;
      await store.putSetting(sendJournalKey(base.id), { event: base, verificationId: a.body.id, sends: 2 } satisfies SendJournalEntry);
      await store.putSetting(sendJournalKey('ev_journal_test_2'), { event: { ...base, id: 'ev_journal_test_2' }, verificationId: a.body.id, sends: 3 } satisfies SendJournalEntry);
      const later = t.clock() + RECOVER_AFTER_MS + 1;
      const runs = await Promise.all([recoverSendJournal(store, later), recoverSendJournal(store, later)]);
      assert.equal(runs[0].recovered + runs[1].recovered, 1, JSON.stringify(runs));
      assert.equal(runs[0].dropped + runs[1].dropped, 1, JSON.stringify(runs));
      const recovered = (await store.queryEvents({ limit: 50 })).filter((e) => e.id.startsWith('ev_journal_test'));
      assert.deepEqual(recovered.map((e) => [e.id, e.data?.delivery]), [['ev_journal_test_1', { ok: null, interrupted: true }]]);
      assert.deepEqual(await journal(), []);
    } finally {
      await t.close();
      await dispose(made);
    }
  });
}

describe('send journal', () => {
  suite('SQLite (the default store)', async () => undefined, async () => {});
});

await describeWithService('redis', 'send journal, Redis', (url) => {
  const prefix = `otps-test:${randomTag()}:`;
  suite('Redis', async () => new RedisStore(url, { prefix }), async () => {
    // The app closed the store with itself: delete its keys over a connection of our own.
    const s = new RedisStore(url, { prefix });
    try {
      const keys = await s.redis.keys(`${prefix}*`);
      if (keys.length) await s.redis.unlink(...keys);
    } finally {
      await s.close();
    }
  });
});

await describeWithService('postgres', 'send journal, PostgreSQL', (url) => {
  suite('PostgreSQL', async () => {
    const s = new PostgresStore(url, { schema: `otps_test_${randomTag()}`, poolSize: 4 });
    await s.init();
    return s;
  }, async (s) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS "${(s as PostgresStore).schema}" CASCADE`);
    } finally {
      await c.end();
    }
  });
});
