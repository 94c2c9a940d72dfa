import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore, storedCounterExpiry } from '../../src/store/sqlite.ts';
import { isStoreUnavailable } from '../../src/store/errors.ts';
import type { LimitSpec } from '../../src/store/interface.ts';
import { storeContract, T0, makeVerification } from './contract.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otps-sqlite-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => path.join(dir, `s${++n}.db`);

storeContract('sqlite :memory:', async () => new SqliteStore(':memory:'));
storeContract('sqlite file', async () => new SqliteStore(file()), {
  makePair: async () => {
    const f = file();
    return [new SqliteStore(f), new SqliteStore(f)];
  },
});

describe('SqliteStore specifics', () => {
  it("retention's purge leaves nothing of the purged events in the file's free pages", async () => {
    const f = file();
    const s = new SqliteStore(f);
    const marker = '+6281277775555';
    // Enough events to fill whole pages, which the purge then frees (FAST zeroes only pages that stay in use).
    const events = Array.from({ length: 400 }, (_, i) => ({ id: `ev_${i}`, at: T0 + i, type: 'send', to: marker, ip: '36.72.10.5', data: { userAgent: `UA-${'x'.repeat(200)}` } }));
    await s.appendEvents(events);
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    const occurrences = () => fs.readdirSync(dir).filter((x) => x.startsWith(path.basename(f))).reduce((n, x) => n + fs.readFileSync(path.join(dir, x)).toString('latin1').split(marker).length - 1, 0);
    assert.ok(occurrences() >= 400, 'written');
    assert.equal(await s.purgeEvents(T0 + 1_000), 400);
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    assert.equal(occurrences(), 0);
    await s.close();
  });

  it("retention's purge of a backlog runs in batches, with the event loop free between them, and takes the reasons with their events", async () => {
    const s = new SqliteStore(file());
    const events = Array.from({ length: 12_345 }, (_, i) => ({ id: `ev_${i}`, at: T0 + i, type: 'send', to: '+6281277770000', reasons: ['too_fast'] }));
    for (let i = 0; i < events.length; i += 2000) await s.appendEvents(events.slice(i, i + 2000));
    await s.appendEvents([{ id: 'ev_new', at: T0 + 1_000_000, type: 'send', reasons: ['too_fast'] }]);
    // What other work running during the purge sees: the old events left.
    const seen: number[] = [];
    let running = true;
    const oldLeft = s.db.prepare('SELECT count(*) AS n FROM events WHERE at < ?');
    const tick = () => {
      if (!running) return;
      seen.push((oldLeft.get(T0 + 100_000) as { n: number }).n);
      setImmediate(tick);
    };
    setImmediate(tick);
    const purged = await s.purgeEvents(T0 + 100_000);
    running = false;
    assert.equal(purged, 12_345);
    // One DELETE held the event loop for all of it: nothing else ran until every old event was gone.
    assert.ok(seen.some((n) => n > 0 && n < 12_345), `other work ran between batches: saw ${[...new Set(seen)].join(', ')}`);
    assert.deepEqual((await s.queryEvents({ limit: 10, reason: 'too_fast' })).map((e) => e.id), ['ev_new']);
    assert.equal((s.db.prepare('SELECT count(*) AS n FROM event_reasons').get() as { n: number }).n, 1, 'no reason rows left behind');
    await s.close();
  });

  it('uses WAL, synchronous=NORMAL (durability comes from the barrier), a 10,000-page autocheckpoint, busy_timeout and records the schema version', async () => {
    const s = new SqliteStore(file());
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.db.pragma('synchronous', { simple: true }), 1); // NORMAL
    assert.ok((s.db.pragma('busy_timeout', { simple: true }) as number) > 0);
    assert.equal(s.db.pragma('user_version', { simple: true }), 3);
    assert.equal(s.db.pragma('wal_autocheckpoint', { simple: true }), 10_000);
    assert.equal(s.db.pragma('journal_size_limit', { simple: true }), 64 * 1024 * 1024);
    await s.close();
  });

  it('a durable write resolves only after a WAL flush that began after its commit; concurrent writes share one flush', async () => {
    const f = file();
    const held: { fd: number; cb: (err: NodeJS.ErrnoException | null) => void }[] = [];
    const s = new SqliteStore(f, { fdatasync: (fd, cb) => held.push({ fd, cb }) });
    const reader = new SqliteStore(f);
    const v1 = makeVerification();
    let done1 = false;
    const p1 = s.createVerification(v1).then(() => (done1 = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(held.length, 1, 'one flush started');
    assert.equal(done1, false, 'not acknowledged before the flush completed');
    // Committed already: another connection sees it (a process crash now would lose nothing).
    assert.deepEqual(await reader.getVerification(v1.id), v1);
    // Two writes while the first flush runs: both wait for a second flush, not the running one.
    const v2 = makeVerification();
    let done2 = false;
    const p2 = Promise.all([s.createVerification(v2), s.appendEvents([{ id: 'ev_1', at: T0, type: 'send' }])]).then(() => (done2 = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(held.length, 1, 'no second flush while one runs');
    held[0]!.cb(null);
    await p1;
    assert.equal(done1, true);
    await new Promise((r) => setImmediate(r));
    assert.equal(done2, false, 'writes that came during the first flush wait for the next');
    assert.equal(held.length, 2, 'the second flush covers both waiting writes');
    // The descriptor flushed is the WAL file's.
    assert.equal(fs.fstatSync(held[1]!.fd).ino, fs.statSync(`${f}-wal`).ino);
    held[1]!.cb(null);
    await p2;
    assert.equal(s.flushes, 2);
    // Counters do not wait for a flush (the request's audit event does).
    await s.consumeLimits([{ reason: 'r', key: 'k', limit: 3, windowMs: 60_000 }], T0);
    assert.equal(held.length, 2);
    await reader.close();
    const closing = s.close();
    await closing;
  });

  it('a database deleted while the store runs: writes and the readiness probe are unavailable (503), not internal errors', async () => {
    // A chaos review deleted the file (and its WAL) under a running server: every write answered 500 (ENOENT from
    // the WAL flush) and /readyz stayed 200.
    const f = file();
    const s = new SqliteStore(f);
    try {
      await s.createVerification(makeVerification());
      await s.ping();
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(f + suffix, { force: true });
      const write = await s.createVerification(makeVerification()).then(() => null, (err: unknown) => err);
      assert.ok(isStoreUnavailable(write), `a write: ${String(write)}`);
      const probe = await s.ping().then(() => null, (err: unknown) => err);
      assert.ok(isStoreUnavailable(probe), `readiness: ${String(probe)}`);
      assert.match(String(probe), /deleted or replaced/);
    } finally {
      await s.close().catch(() => {});
    }
    // Replaced by another file at the same path: also not the database this process writes to.
    const g = file();
    const t = new SqliteStore(g);
    try {
      await t.ping();
      fs.rmSync(g);
      new Database(g).close();
      const probe = await t.ping().then(() => null, (err: unknown) => err);
      assert.ok(isStoreUnavailable(probe), String(probe));
    } finally {
      await t.close().catch(() => {});
    }
  });

  it('a journal entry waits for its flush, unless a later durable write of the caller covers it', async () => {
    const f = file();
    const held: (() => void)[] = [];
    const s = new SqliteStore(f, { fdatasync: (fd, cb) => held.push(() => cb(null)) });
    let plain = false;
    const p = s.putJournal('send:a', T0, { kind: 'send' }).then(() => (plain = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(plain, false, 'a send entry is on disk before the code leaves');
    held.shift()!();
    await p;
    // Covered (an approval entry: the transition's flush comes after it): resolved at once, and the next durable
    // write's flush takes it along.
    await s.putJournal('approval:b', T0, { kind: 'approval' }, { covered: true });
    assert.equal(held.length, 0);
    const v = makeVerification();
    const created = s.createVerification(v);
    await new Promise((r) => setImmediate(r));
    assert.equal(held.length, 1);
    held.shift()!();
    await created;
    const reader = new SqliteStore(f);
    assert.deepEqual((await reader.listJournal(T0, 10)).map((x) => x.key), ['approval:b', 'send:a']);
    await reader.close();
    await s.close();
  });

  it('settled() waits for the flush of what reads can already see, and for nothing when all is on disk', async () => {
    const held: (() => void)[] = [];
    const s = new SqliteStore(file(), { fdatasync: (_fd, cb) => held.push(() => cb(null)) });
    let settled = false;
    await s.settled().then(() => (settled = true));
    assert.equal(settled, true, 'nothing written: at once');
    assert.equal(s.flushes, 0, 'and without a flush of its own');
    settled = false;
    const v = makeVerification();
    const created = s.createVerification(v);
    assert.deepEqual(await s.getVerification(v.id), v, 'visible in its own turn');
    const p = s.settled().then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(held.length, 1);
    assert.equal(settled, false, 'not before the flush that covers the write');
    held.shift()!();
    await Promise.all([created, p]);
    assert.equal(settled, true);
    await s.close();
  });

  it('a file a newer version migrates while this one runs makes it unavailable (503, readiness fails), not a 500 per request', async () => {
    // A rolling deploy overlapping on one file: the newer process migrates it, and this one could not read
    // rows in the new format (an ops review saw an older build answer every send with 500, /readyz 200).
    const f = file();
    const running = new SqliteStore(f);
    const spec = { reason: 'r', key: 'k', limit: 5, windowMs: 60_000 };
    await running.consumeLimits([spec], T0);
    await running.ping();
    await new Promise((r) => setImmediate(r)); // its write batch commits at the end of the turn
    const newer = new Database(f); // another process's connection
    const current = newer.pragma('user_version', { simple: true }) as number;
    newer.pragma(`user_version = ${current + 1}`); // what the next version's migration will leave
    await assert.rejects(running.ping(), (e: unknown) => isStoreUnavailable(e) && /newer than this OTP Shield/.test((e as Error).message));
    await assert.rejects(running.consumeLimits([spec], T0 + 1), (e: unknown) => isStoreUnavailable(e));
    await assert.rejects(running.peekLimits([spec], T0 + 1), (e: unknown) => isStoreUnavailable(e));
    await new Promise((r) => setImmediate(r)); // the refused write's batch (empty) ends with the turn
    newer.pragma(`user_version = ${current}`);
    newer.close();
    await running.ping(); // back to a version it knows: serving again
    await running.close();
  });

  it('after a failed write the readiness probe fails until a write of its own reaches the disk (a full disk)', async () => {
    // An ops review: on a full disk writes answered 503 but /readyz stayed 200, its probe only reading.
    let full = false;
    const s = new SqliteStore(file(), {
      fdatasync: (fd, cb) => (full ? setImmediate(() => cb(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }))) : fs.fdatasync(fd, cb)),
    });
    await s.createVerification(makeVerification());
    await s.ping();
    const flushes = s.flushes;
    await s.ping();
    assert.equal(s.flushes, flushes, 'a healthy probe writes nothing');
    full = true;
    await assert.rejects(s.createVerification(makeVerification()), /ENOSPC/);
    await assert.rejects(s.ping(), /ENOSPC/, 'not ready while writes fail');
    full = false;
    await s.ping(); // the probe's write reached the disk: ready again
    await s.ping();
    const after = s.flushes;
    await s.ping();
    assert.equal(s.flushes, after, 'and it stops writing');
    await s.close();
  });

  it('a failed WAL flush fails the writes that waited for it', async () => {
    const s = new SqliteStore(file(), { fdatasync: (_fd, cb) => setImmediate(() => cb(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }))) });
    await assert.rejects(s.createVerification(makeVerification()), /EIO/);
    await assert.rejects(s.appendEvents([{ id: 'ev_2', at: T0, type: 'send' }]), /EIO/);
    await s.close();
  });

  it('reopening a file keeps data and does not re-run migrations', async () => {
    const f = file();
    const a = new SqliteStore(f);
    const v = makeVerification();
    await a.createVerification(v);
    await a.putSetting('k', { x: 1 }, undefined, T0);
    await a.putListEntry({ id: 'l', list: 'block', kind: 'number', value: '+1', note: null, createdAt: T0, expiresAt: null });
    await a.close();
    const b = new SqliteStore(f);
    assert.deepEqual(await b.getVerification(v.id), v);
    assert.deepEqual(await b.getSetting('k', T0), { x: 1 });
    assert.equal(await b.listsVersion(), 1);
    await b.close();
  });

  it('upgrades a version-1 file in place: its JSON counter rows keep counting, the file is then version 3 with a journal', async () => {
    const f = file();
    const a = new SqliteStore(f);
    // What a version-1 binary left: no schema_notes or journal table, counter rows as JSON.
    a.db.exec('DROP TABLE schema_notes; DROP TABLE journal; ALTER TABLE verifications DROP COLUMN approved_by');
    a.db.pragma('user_version = 1');
    a.db.prepare('INSERT INTO counters (key, state, expires_at) VALUES (?, ?, ?)').run('v1', JSON.stringify([[T0, 2]]), T0 + 20 * 60_000);
    await a.close();
    const b = new SqliteStore(f);
    assert.equal(b.db.pragma('user_version', { simple: true }), 3);
    assert.deepEqual((await b.consumeLimits([{ reason: 'r', key: 'v1', limit: 10, windowMs: 10 * 60_000 }], T0 + 1000)).counts, [3]);
    await b.putJournal('send:x', T0, { kind: 'send' });
    assert.equal((await b.listJournal(T0, 10)).length, 1);
    assert.match(b.db.prepare('SELECT state FROM counters WHERE key = ?').pluck().get('v1') as string, /^~/);
    await b.close();
  });

  it('refuses a file from a newer schema', async () => {
    const f = file();
    const a = new SqliteStore(f);
    a.db.pragma('user_version = 99');
    await a.close();
    assert.throws(() => new SqliteStore(f), /newer/);
  });

  it('creates parent directories', async () => {
    const f = path.join(dir, 'nested', 'deeper', 'x.db');
    const s = new SqliteStore(f);
    await s.ping();
    await s.close();
    assert.ok(fs.existsSync(f));
  });

  it('sweep(now) purges expired rows so the file does not grow without bound', async () => {
    const s = new SqliteStore(':memory:', { sweepEveryWrites: 0 });
    for (let i = 0; i < 3000; i++) {
      await s.consumeLimits([{ reason: 'r', key: `k${i}`, limit: 3, windowMs: 60_000 }], T0);
      await s.useOnce(`t${i}`, 1000, T0);
    }
    await s.consumeLimits([{ reason: 'r', key: 'long', limit: 3, windowMs: 3_600_000 }], T0);
    await s.putSetting('tmp', 1, 1000, T0);
    await s.putSetting('perm', 1, undefined, T0);
    const old = makeVerification({ expiresAt: T0 + 1000 });
    await s.createVerification(old);
    const count = (t: string) => (s.db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
    assert.equal(count('counters'), 3001);
    assert.equal(s.sweep(T0), 0);
    assert.equal(s.sweep(T0 + 120_000), 6001);
    assert.equal(count('counters'), 1);
    assert.equal(count('once_tokens'), 0);
    assert.equal(count('settings'), 1);
    assert.equal(count('verifications'), 1);
    assert.equal(s.sweep(T0 + 1000 + 24 * 3_600_000), 2); // the hour-long counter and the retained verification
    assert.equal(count('verifications'), 0);
    await s.close();
  });

  it('opportunistic sweeping keeps rotating keys bounded', async () => {
    const s = new SqliteStore(':memory:', { sweepEveryWrites: 100 });
    let now = T0;
    for (let i = 0; i < 5000; i++) {
      now += 100;
      await s.consumeLimits([{ reason: 'r', key: `rot${i}`, limit: 3, windowMs: 10_000 }], now);
    }
    const n = (s.db.prepare('SELECT count(*) AS n FROM counters').get() as { n: number }).n;
    // Live keys: ~10.2 s of window at one key per 100 ms ≈ 102, plus up to one sweep interval of 100.
    assert.ok(n <= 300, `${n} counters left`);
    await s.close();
  });

  it('filtering by reason uses the event_reasons index', async () => {
    const s = new SqliteStore(':memory:');
    const plan = s.db
      .prepare(`EXPLAIN QUERY PLAN SELECT seq, body FROM events WHERE seq IN (SELECT seq FROM event_reasons WHERE reason = ?) ORDER BY seq DESC LIMIT 10`)
      .all('x') as { detail: string }[];
    assert.ok(plan.some((p) => /event_reasons USING (PRIMARY KEY|COVERING INDEX)/.test(p.detail)), JSON.stringify(plan));
    await s.close();
  });

  describe('commit batching (the writes of one event-loop turn share one transaction)', () => {
    const lim = (key: string, limit: number): LimitSpec => ({ reason: 'r', key, limit, windowMs: 600_000 });
    const turn = () => new Promise((r) => setImmediate(r));
    /** Another process's view: a plain connection, which no SqliteStore of this process commits for. */
    const outsider = (f: string) => new Database(f, { readonly: true });
    const countRows = (db: Database.Database, table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    /** A store on a new file whose events of `type` fail with RAISE(`raise`): ABORT undoes the statement's call, ROLLBACK the whole transaction. */
    const storeFailingOn = (type: string, raise: 'ABORT' | 'ROLLBACK') => {
      const f = file();
      const s = new SqliteStore(f);
      s.db.exec(`CREATE TRIGGER fail_${type} BEFORE INSERT ON events WHEN NEW.type = '${type}' BEGIN SELECT RAISE(${raise}, '${type}'); END`);
      return { f, s };
    };

    it('one commit per turn; other connections see the writes only after it, this one at once', async () => {
      const f = file();
      const s = new SqliteStore(f);
      const other = outsider(f);
      const before = s.commits;
      const durable = s.createVerification(makeVerification());
      for (let i = 0; i < 10; i++) assert.equal((await s.consumeLimits([lim(`k${i}`, 5), lim('shared', 100)], T0)).allowed, true);
      const appended = s.appendEvents([{ id: 'ev_b1', at: T0, type: 'send' }]);
      // Same turn (awaits of settled promises stay in it): nothing committed yet.
      assert.equal(s.commits, before);
      assert.equal(countRows(other, 'counters'), 0);
      assert.deepEqual(await s.peekLimits([lim('shared', 100)], T0), [10]);
      await turn();
      assert.equal(s.commits, before + 1, 'twelve writes, one commit');
      assert.equal(countRows(other, 'counters'), 11);
      assert.equal(countRows(other, 'verifications'), 1);
      await Promise.all([durable, appended]);
      other.close();
      await s.close();
    });

    it('a loop that never yields commits every 1,000 writes instead of holding one growing transaction', async () => {
      const f = file();
      const s = new SqliteStore(f, { sweepEveryWrites: 0 });
      const other = outsider(f);
      const before = s.commits;
      for (let i = 0; i < 2500; i++) await s.consumeLimits([lim(`loop${i}`, 5)], T0);
      assert.equal(s.commits, before + 2);
      assert.equal(countRows(other, 'counters'), 2000);
      await turn();
      assert.equal(countRows(other, 'counters'), 2500);
      other.close();
      await s.close();
    });

    it('commitBatching: false commits every write by itself', async () => {
      const f = file();
      const s = new SqliteStore(f, { commitBatching: false });
      const other = outsider(f);
      const before = s.commits;
      await s.consumeLimits([lim('a', 5)], T0);
      assert.equal(countRows(other, 'counters'), 1, 'visible before the turn ends');
      await s.consumeLimits([lim('b', 5)], T0);
      assert.equal(s.commits, before, 'no batch commits');
      other.close();
      await s.close();
    });

    it('a write that fails undoes only itself; the rest of its batch commits and resolves', async () => {
      const { f, s } = storeFailingOn('boom', 'ABORT');
      const created = s.createVerification(makeVerification());
      await s.consumeLimits([lim('c', 5)], T0);
      // Two events in one call: the first inserted, then the second fails: the call's savepoint undoes both.
      await assert.rejects(s.appendEvents([{ id: 'ev_ok_then_undone', at: T0, type: 'send' }, { id: 'ev_boom', at: T0, type: 'boom' }]), /boom/);
      const appended = s.appendEvents([{ id: 'ev_after', at: T0, type: 'send' }]);
      await Promise.all([created, appended]);
      const other = outsider(f);
      assert.equal(countRows(other, 'verifications'), 1);
      assert.equal(countRows(other, 'counters'), 1);
      assert.deepEqual((other.prepare('SELECT id FROM events ORDER BY seq').all() as { id: string }[]).map((r) => r.id), ['ev_after']);
      other.close();
      await s.close();
    });

    it('when SQLite rolls the whole batch back by itself, every durable write of the batch is rejected and nothing of it stays', async () => {
      // RAISE(ROLLBACK) ends the whole transaction, as SQLite does after an I/O error or a full disk.
      const { f, s } = storeFailingOn('doom', 'ROLLBACK');
      const created = s.createVerification(makeVerification());
      await s.consumeLimits([lim('d', 5)], T0);
      await assert.rejects(s.appendEvents([{ id: 'ev_doom', at: T0, type: 'doom' }]), /doom/);
      // Still the same turn: a read does not see the undone count from the counter cache.
      assert.deepEqual(await s.peekLimits([lim('d', 5)], T0), [0]);
      await assert.rejects(created, /rolled back/);
      // The next write starts a new batch, and the counter cache forgot the rolled-back state.
      await s.appendEvents([{ id: 'ev_next', at: T0, type: 'send' }]);
      assert.deepEqual((await s.consumeLimits([lim('d', 5)], T0)).counts, [1]);
      const other = outsider(f);
      assert.equal(countRows(other, 'verifications'), 0);
      assert.deepEqual((other.prepare('SELECT id FROM events').all() as { id: string }[]).map((r) => r.id), ['ev_next']);
      other.close();
      await s.close();
    });

    it('two stores of one process on one file: each commits the other\'s open batch before it reads or writes', async () => {
      const f = file();
      const a = new SqliteStore(f, { busyTimeoutMs: 50 });
      const b = new SqliteStore(f, { busyTimeoutMs: 50 });
      // Same turn: without the hand-over, B would wait for A's write lock (and fail after busyTimeoutMs).
      await a.consumeLimits([lim('p', 5)], T0);
      assert.deepEqual(await b.peekLimits([lim('p', 5)], T0), [1], 'B sees what A wrote in this turn');
      assert.equal((await b.consumeLimits([lim('p', 5)], T0)).allowed, true);
      assert.deepEqual((await a.consumeLimits([lim('p', 5)], T0)).counts, [3]);
      await a.close();
      await b.close();
    });

    it('close() commits the open batch', async () => {
      const f = file();
      const s = new SqliteStore(f);
      await s.consumeLimits([lim('z', 5)], T0);
      await s.close();
      const other = outsider(f);
      assert.equal(countRows(other, 'counters'), 1);
      other.close();
    });
  });

  describe('WAL checkpoints from a worker thread', () => {
    const lim = (key: string): LimitSpec => ({ reason: 'r', key, limit: 5, windowMs: 600_000 });
    /**
     * Frames in the WAL, read through a PASSIVE checkpoint of the main connection (which copies them too, so
     * it is read only at the end of a test). The open batch is committed first: a checkpoint cannot run in it.
     */
    const walFrames = (s: SqliteStore) => {
      s.commitBatch();
      return (s.db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log;
    };
    const fill = async (s: SqliteStore) => {
      for (let i = 0; i < 2000; i++) {
        await s.consumeLimits([lim(`w${i}`)], T0);
        if (i % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setImmediate(r));
    };
    /** Waits until the thread has copied frames and then reported nothing new for 200 ms. */
    const settled = async (s: SqliteStore) => {
      let last = -1;
      for (const end = Date.now() + 5000; Date.now() < end; ) {
        const now = s.checkpointer?.stats.frames ?? 0;
        if (now > 0 && now === last) return;
        last = now;
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    it('copies the committed frames while the event loop goes on, so the next write starts the WAL over', async () => {
      const s = new SqliteStore(file(), { checkpointIntervalMs: 20 });
      await fill(s);
      await settled(s);
      assert.ok(s.checkpointer!.stats.frames >= 100, JSON.stringify(s.checkpointer!.stats));
      await s.consumeLimits([lim('after')], T0);
      assert.ok(walFrames(s) < 20, `WAL started over: ${walFrames(s)} frames`);
      await s.close();
    });

    it('close() does not wait for a thread that already died', async () => {
      const s = new SqliteStore(file());
      await (s.checkpointer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      await new Promise((r) => setImmediate(r));
      assert.equal(s.checkpointer!.running, false);
      await s.close();
    });

    it('without the thread (checkpointThread: false) the same writes stay in the WAL below the autocheckpoint', async () => {
      const s = new SqliteStore(file(), { checkpointThread: false });
      assert.equal(s.checkpointer, null);
      await fill(s);
      await new Promise((r) => setTimeout(r, 200));
      await s.consumeLimits([lim('after')], T0);
      assert.ok(walFrames(s) > 100, `${walFrames(s)} frames`);
      await s.close();
    });
  });

  describe('counter read cache (valid while PRAGMA data_version is unchanged)', () => {
    const lim = (key: string, limit: number, windowMs = 600_000): LimitSpec => ({ reason: 'r', key, limit, windowMs });
    const cacheOf = (s: SqliteStore) => (s as unknown as { counterCache: Map<string, unknown> }).counterCache;
    /** Counts the SELECTs of counter rows that `s` runs from now on. */
    const countReads = (s: SqliteStore) => {
      const st = (s as unknown as { st: { getCounter: { get: (...a: unknown[]) => unknown } } }).st.getCounter;
      const get = st.get.bind(st);
      const c = { n: 0 };
      st.get = (...a: unknown[]) => { c.n++; return get(...a); };
      return c;
    };

    it('serves repeated reads from the cache while no other connection wrote', async () => {
      const s = new SqliteStore(file());
      const specs = [lim('hot1', 100), lim('hot2', 100), { ...lim('read-only', 100), cost: 0 }];
      await s.consumeLimits(specs, T0);
      const reads = countReads(s);
      const out = await s.consumeLimits(specs, T0 + 1);
      assert.deepEqual(out.counts, [2, 2, 0]);
      assert.deepEqual(await s.peekLimits(specs, T0 + 2), [2, 2, 0]);
      assert.equal(reads.n, 0);
      await s.close();
    });

    it("a write through another connection is seen by the next consumeLimits and peekLimits, even with a warm cache", async () => {
      const f = file();
      const a = new SqliteStore(f);
      const b = new SqliteStore(f);
      const k = [lim('shared', 3)];
      assert.equal((await a.consumeLimits(k, T0)).allowed, true);
      assert.equal((await a.consumeLimits(k, T0 + 1)).allowed, true); // A's cache now holds count 2
      assert.equal((await b.consumeLimits(k, T0 + 2)).allowed, true); // 3: full
      assert.deepEqual(await a.peekLimits(k, T0 + 3), [3]);
      const denied = await a.consumeLimits(k, T0 + 3);
      assert.equal(denied.allowed, false);
      assert.deepEqual(denied.counts, [3]);
      // A reset through B (a delete) is seen too.
      await b.resetLimits(['shared']);
      assert.deepEqual((await a.consumeLimits(k, T0 + 4)).counts, [1]);
      await a.close();
      await b.close();
    });

    it('a write through another connection to a different table also invalidates it (data_version is per database)', async () => {
      const f = file();
      const a = new SqliteStore(f);
      const b = new SqliteStore(f);
      await a.consumeLimits([lim('x', 10)], T0);
      await b.putSetting('unrelated', 1);
      const reads = countReads(a);
      await a.consumeLimits([lim('x', 10)], T0 + 1);
      assert.equal(reads.n, 1);
      await a.close();
      await b.close();
    });

    it('resetLimits through the same connection forgets the cached state', async () => {
      const s = new SqliteStore(file());
      for (let i = 0; i < 3; i++) await s.consumeLimits([lim('r', 3)], T0 + i);
      assert.equal((await s.consumeLimits([lim('r', 3)], T0 + 3)).allowed, false);
      await s.resetLimits(['r']);
      assert.deepEqual((await s.consumeLimits([lim('r', 3)], T0 + 4)).counts, [1]);
      await s.close();
    });

    it('a sweep that deleted a cached row forgets the cache (the next write recreates the row)', async () => {
      const s = new SqliteStore(file(), { sweepEveryWrites: 0 });
      const k = [lim('sw', 10, 10_000)];
      await s.consumeLimits(k, T0);
      const stored = (s.db.prepare('SELECT expires_at FROM counters WHERE key = ?').pluck().get('sw') as number);
      assert.equal(s.sweep(stored), 1);
      // Same `now` again: same expiry, the case where a stale cache would only UPDATE a row that is gone.
      assert.deepEqual((await s.consumeLimits(k, T0)).counts, [1]);
      assert.equal(s.db.prepare('SELECT count(*) FROM counters WHERE key = ?').pluck().get('sw'), 1);
      assert.deepEqual(await s.peekLimits(k, T0), [1]);
      await s.close();
    });

    it('a rolled-back consumeLimits leaves no uncommitted state in the cache', async () => {
      const s = new SqliteStore(file());
      const st = (s as unknown as { st: { putCounter: { run: (...a: unknown[]) => unknown } } }).st.putCounter;
      const run = st.run.bind(st);
      st.run = (...a: unknown[]) => {
        if (a[0] === 'second') throw new Error('disk full (injected)');
        return run(...a);
      };
      await assert.rejects(s.consumeLimits([lim('first', 5), lim('second', 5)], T0), /injected/);
      st.run = run;
      assert.deepEqual(await s.peekLimits([lim('first', 5), lim('second', 5)], T0), [0, 0]);
      assert.equal(s.db.prepare('SELECT count(*) FROM counters').pluck().get(), 0);
      await s.close();
    });

    it('is bounded under rotating keys and stays exact after eviction', async () => {
      const s = new SqliteStore(file(), { counterCacheSize: 50, sweepEveryWrites: 0 });
      await s.consumeLimits([lim('early', 10)], T0);
      for (let i = 0; i < 2000; i++) {
        await s.consumeLimits([lim(`rot${i}`, 10), { ...lim(`ro${i}`, 10), cost: 0 }], T0 + 1);
        assert.ok(cacheOf(s).size <= 50, `cache holds ${cacheOf(s).size}`);
      }
      assert.equal(cacheOf(s).has('early'), false);
      assert.deepEqual((await s.consumeLimits([lim('early', 10)], T0 + 2)).counts, [2]);
      await s.close();
    });

    it('a write that finds its cached row gone (deleted behind the store through store.db) recreates it', async () => {
      const s = new SqliteStore(file());
      await s.consumeLimits([lim('gone', 10)], T0);
      s.db.prepare('DELETE FROM counters WHERE key = ?').run('gone'); // same connection: data_version unchanged
      await s.consumeLimits([lim('gone', 10)], T0);
      assert.equal(s.db.prepare('SELECT count(*) FROM counters WHERE key = ?').pluck().get('gone'), 1);
      await s.close();
    });

    it('counterCacheSize 0 disables it', async () => {
      const s = new SqliteStore(file(), { counterCacheSize: 0 });
      await s.consumeLimits([lim('z', 10)], T0);
      const reads = countReads(s);
      assert.deepEqual((await s.consumeLimits([lim('z', 10)], T0 + 1)).counts, [2]);
      assert.equal(reads.n, 1);
      assert.equal(cacheOf(s).size, 0);
      await s.close();
    });
  });

  describe('stored counter expiry', () => {
    it('is rounded up to 1/8 of the window: never earlier than the real expiry, less than 1/8 window later', () => {
      for (const windowMs of [1, 7, 1000, 15_000, 600_000, 86_400_000]) {
        for (const e of [T0, T0 + 1, T0 + 12_345, T0 + windowMs]) {
          const g = Math.ceil(windowMs / 8);
          const r = storedCounterExpiry(e, windowMs);
          assert.ok(r >= e && r - e < g && r % g === 0, `${windowMs} ${e} -> ${r}`);
        }
      }
    });

    it('a hot key keeps one expires_at over many writes, and rows stored by older versions (exact expiry) still work', async () => {
      const s = new SqliteStore(file(), { sweepEveryWrites: 0 });
      const spec = { reason: 'r', key: 'hot', limit: 1000, windowMs: 15_000 };
      // An older version stored the exact expiry (slot + slotMs + window).
      s.db.prepare('INSERT INTO counters (key, state, expires_at) VALUES (?, ?, ?)').run('hot', JSON.stringify([[T0, 2]]), T0 + 250 + 15_000);
      const seen = new Set<number>();
      for (let i = 0; i < 7; i++) {
        const out = await s.consumeLimits([spec], T0 + i * 250);
        assert.equal(out.counts[0], 3 + i);
        seen.add(s.db.prepare('SELECT expires_at FROM counters WHERE key = ?').pluck().get('hot') as number);
      }
      // 7 slots of 250 ms: 7 exact expiries, but at most 2 granules of 1875 ms.
      assert.ok(seen.size <= 2, [...seen].join(','));
      const last = s.db.prepare('SELECT expires_at FROM counters WHERE key = ?').pluck().get('hot') as number;
      assert.ok(last >= T0 + 6 * 250 + 250 + 15_000, `${last}`); // never before the newest slot leaves the window
      await s.close();
    });
  });
});
