import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.ts';
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
  it('uses WAL, synchronous=NORMAL (durability comes from the barrier), busy_timeout and records the schema version', async () => {
    const s = new SqliteStore(file());
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.db.pragma('synchronous', { simple: true }), 1); // NORMAL
    assert.ok((s.db.pragma('busy_timeout', { simple: true }) as number) > 0);
    assert.equal(s.db.pragma('user_version', { simple: true }), 1);
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
});
