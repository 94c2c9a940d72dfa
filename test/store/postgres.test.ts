import { it } from 'node:test';
import net from 'node:net';
import { isStoreUnavailable } from '../../src/store/errors.ts';
import assert from 'node:assert/strict';
import { PostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/interface.ts';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { storeContract, T0, makeVerification } from './contract.ts';

/** Drop the store's throwaway schema, then close it. */
async function destroy(s: Store): Promise<void> {
  const p = s as PostgresStore;
  try {
    await p.pool.query(`DROP SCHEMA IF EXISTS "${p.schema}" CASCADE`);
  } finally {
    await p.close();
  }
}

await describeWithService('postgres', 'PostgresStore', (url) => {
  const schema = () => `otps_test_${randomTag()}`;
  const fresh = async (opts: { sweepEveryWrites?: number; timeoutMs?: number } = {}) => {
    const s = new PostgresStore(url, { schema: schema(), poolSize: 4, ...opts });
    await s.init();
    return s;
  };

  storeContract('postgres', () => fresh(), {
    dispose: destroy,
    makePair: async () => {
      const name = schema();
      const a = new PostgresStore(url, { schema: name, poolSize: 5 });
      const b = new PostgresStore(url, { schema: name, poolSize: 5 });
      await Promise.all([a.init(), b.init()]);
      return [a, b];
    },
  });

  it('the prefix filter gives the same events by the index range and by starts_with (the fallback for other collations)', async () => {
    const s = await fresh();
    try {
      await s.appendEvents([
        { id: 'a', at: T0, type: 'send', to: '+6281234567890', prefix: '+62812' },
        { id: 'b', at: T0 + 1, type: 'send', to: '+6281334567890', prefix: '+62813' },
        { id: 'c', at: T0 + 2, type: 'quarantine.start', to: null, prefix: '+62812' },
        { id: 'd', at: T0 + 3, type: 'send', to: '+62812@mail.example', prefix: null },
        { id: 'e', at: T0 + 4, type: 'send', to: '+4915112345678', prefix: '+49151' },
      ]);
      const ids = async (prefix: string) => (await s.queryEvents({ limit: 10, prefix, order: 'asc' })).map((e) => e.id);
      const probe = s as unknown as { byteOrderedText: boolean };
      assert.equal(probe.byteOrderedText, true, 'the test database compares bytes (C.UTF-8)');
      const byRange = [await ids('+62812'), await ids('+6281'), await ids('+628123'), await ids('+1')];
      probe.byteOrderedText = false;
      const byStartsWith = [await ids('+62812'), await ids('+6281'), await ids('+628123'), await ids('+1')];
      assert.deepEqual(byRange, [['a', 'c'], ['a', 'b', 'c'], ['a'], []]);
      assert.deepEqual(byStartsWith, byRange);
    } finally {
      await destroy(s);
    }
  });

  it('consumeLimits is one round trip for all specs', async () => {
    const s = await fresh();
    try {
      const specs = [1, 2, 3].map((i) => ({ reason: `r${i}`, key: `k${i}`, limit: 5, windowMs: 60_000 * i }));
      const before = s.roundTrips;
      await s.consumeLimits(specs, T0);
      assert.equal(s.roundTrips - before, 1);
      await s.reserveAttempt('nope', T0); // refusals need a second query to say why
      await s.transition('nope', 'approved', T0);
      assert.equal(s.roundTrips - before, 4);
    } finally {
      await destroy(s);
    }
  });

  it('init is idempotent and safe to run concurrently; refuses a newer schema', async () => {
    const name = schema();
    const stores = [0, 1, 2].map(() => new PostgresStore(url, { schema: name, poolSize: 2 }));
    try {
      await Promise.all(stores.map((s) => s.init()));
      await stores[0]!.init();
      const v = makeVerification();
      await stores[1]!.createVerification(v);
      assert.deepEqual(await stores[2]!.getVerification(v.id), v);
      await stores[0]!.pool.query(`UPDATE "${name}".meta SET value = 99 WHERE key = 'schema_version'`);
      await assert.rejects(stores[1]!.init(), /newer/);
    } finally {
      await destroy(stores[0]!);
      await stores[1]!.close();
      await stores[2]!.close();
    }
  });

  it('a read-only server (a standby, a demoted primary) fails readiness, and its refused writes are unavailable (503), not internal errors', async () => {
    const name = schema();
    const rw = new PostgresStore(url, { schema: name, poolSize: 2 });
    await rw.init();
    // Every transaction of this connection is read-only, as on a hot standby (SQLSTATE 25006 on a write).
    const sep = url.includes('?') ? '&' : '?';
    const ro = new PostgresStore(`${url}${sep}options=${encodeURIComponent('-c default_transaction_read_only=on')}`, { schema: name, poolSize: 2 });
    try {
      await rw.ping();
      await assert.rejects(ro.ping(), (err: Error) => isStoreUnavailable(err) && /read-only/.test(err.message));
      await assert.rejects(ro.putSetting('pause:all', { since: T0 }, undefined, T0), (err: Error & { code?: string }) => err.code === '25006' && isStoreUnavailable(err));
      assert.equal(await ro.getSetting('pause:all', T0), null, 'reads still work, and nothing was written');
    } finally {
      await ro.close();
      await destroy(rw);
    }
  });

  it('rejects unsafe schema names', () => {
    assert.throws(() => new PostgresStore(url, { schema: 'x"; DROP TABLE y; --' }), /invalid/);
  });

  it('sweep(now) purges expired rows', async () => {
    const s = await fresh({ sweepEveryWrites: 0 });
    try {
      for (let i = 0; i < 50; i++) await s.consumeLimits([{ reason: 'r', key: `k${i}`, limit: 3, windowMs: 60_000 }], T0);
      await s.consumeLimits([{ reason: 'r', key: 'long', limit: 3, windowMs: 3_600_000 }], T0);
      await s.useOnce('t', 1000, T0);
      await s.putSetting('tmp', 1, 1000, T0);
      await s.putSetting('perm', 1, undefined, T0);
      await s.createVerification(makeVerification({ expiresAt: T0 + 1000 }));
      assert.equal(await s.sweep(T0), 0);
      assert.equal(await s.sweep(T0 + 120_000), 52);
      const n = async (t: string) => Number((await s.pool.query(`SELECT count(*) AS n FROM "${s.schema}".${t}`)).rows[0].n);
      assert.equal(await n('counters'), 1);
      assert.equal(await n('settings'), 1);
      assert.equal(await n('verifications'), 1);
      assert.equal(await s.sweep(T0 + 1000 + 24 * 3_600_000), 2);
    } finally {
      await destroy(s);
    }
  });

  it('filtering by reason can use the GIN index', async () => {
    const s = await fresh();
    try {
      const c = await s.pool.connect();
      try {
        await c.query('SET enable_seqscan = off');
        const plan = await c.query(`EXPLAIN SELECT seq FROM "${s.schema}".events WHERE reasons @> ARRAY['x'::text]`);
        assert.match(plan.rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n'), /events_reasons/);
      } finally {
        await c.query('RESET enable_seqscan');
        c.release();
      }
    } finally {
      await destroy(s);
    }
  });
  it('a reset of counters is not undone by a consume that read the row before the reset deleted it', async () => {
    // The interleaving, made deterministic with a row lock held by a third connection: the reset's DELETE
    // queues on the row first, then a consume reads the row (plain reads do not wait) and queues its write
    // behind it. When the lock goes, the reset deletes the row and the consume inserts what it had read + 1:
    // the reset is lost (an approval's failure-counter reset undone by a failed check counted at the same
    // moment). Serially the result is 0 (consume, then reset) or 1 (reset, then consume), never 6.
    const s = await fresh();
    const holder = await s.pool.connect();
    const spec = { reason: 'observe', key: 'fn:+15550001111:1h', limit: 1000, windowMs: 3_600_000 };
    try {
      await s.consumeLimits([{ ...spec, cost: 5 }], T0);
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${s.schema}".counters WHERE key = $1 FOR UPDATE`, [spec.key]);
      const waiting = async (n: number) => {
        for (let i = 0; i < 400; i++) {
          // Inside a transaction the statistics views keep their first snapshot unless it is cleared.
          await holder.query('SELECT pg_stat_clear_snapshot()');
          const r = await holder.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`);
          if (r.rows[0]!.n >= n) return;
          await new Promise((res) => setTimeout(res, 10));
        }
        const a = await holder.query(`SELECT state, wait_event_type, wait_event, left(query, 80) AS q FROM pg_stat_activity WHERE datname = current_database()`);
        throw new Error(`fewer than ${n} sessions waiting on a lock: ${JSON.stringify(a.rows)}`);
      };
      const reset = s.resetLimits([spec.key]);
      await waiting(1);
      const consume = s.consumeLimits([spec], T0 + 1000);
      await waiting(2);
      await holder.query('COMMIT');
      await Promise.all([reset, consume]);
      const [count] = await s.peekLimits([spec], T0 + 2000);
      assert.ok(count === 0 || count === 1, `count ${count}: the reset was undone`);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
      await destroy(s);
    }
  });
  it('a PostgreSQL that stops answering fails calls as unavailable after the timeout, instead of holding them', async () => {
    // A TCP proxy that, once frozen, forwards nothing more either way (a partition without a reset). Before the
    // timeouts, calls, the readiness probe and shutdown waited until the OS gave up on the socket.
    const name = `otps_test_${randomTag()}`;
    const setup = new PostgresStore(url, { schema: name, poolSize: 1 });
    await setup.init();
    await setup.close();
    let frozen = false;
    const sockets = new Set<net.Socket>();
    const target = new URL(url);
    const proxy = net.createServer((c) => {
      const up = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(c).add(up);
      c.on('data', (d) => { if (!frozen) up.write(d); });
      up.on('data', (d) => { if (!frozen) c.write(d); });
      for (const s of [c, up]) s.on('error', () => {}).on('close', () => { c.destroy(); up.destroy(); });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const via = new URL(url);
    via.hostname = '127.0.0.1';
    via.port = String((proxy.address() as net.AddressInfo).port);
    const s = new PostgresStore(via.toString(), { schema: name, poolSize: 2, timeoutMs: 300 });
    try {
      await s.ping();
      frozen = true;
      const calls = [s.ping(), s.getVerification('vf_x'), s.consumeLimits([{ reason: 'r', key: 'k', limit: 5, windowMs: 60_000 }], T0)];
      // A third call waits for a free connection: bounded by the same timeout.
      const results = await Promise.allSettled([...calls, s.getVerification('vf_y')]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok(isStoreUnavailable((r as PromiseRejectedResult).reason), String((r as PromiseRejectedResult).reason));
      }
      frozen = false;
      // And it recovers (the timed-out connections were discarded). A new connection has 300 ms to open, which a
      // loaded machine can miss once: a few tries.
      let recovered: unknown = null;
      for (let i = 0; i < 5; i++) {
        recovered = await s.ping().then(() => true, (err: unknown) => err);
        if (recovered === true) break;
      }
      assert.equal(recovered, true, String(recovered));
    } finally {
      await s.close().catch(() => {});
      for (const k of sockets) k.destroy();
      await new Promise((r) => proxy.close(r));
      const c = new PostgresStore(url, { schema: name });
      await destroy(c);
    }
  });
  it('a statement stuck behind a lock is cancelled by the server at the timeout: the caller gets unavailable and nothing is counted', async () => {
    // A review found the client-only timeout leaving the statement to run on: 40 callers saw errors and all
    // 40 were counted once the lock went, so retrying users were rate-limited by calls they were told failed.
    const s = await fresh({ timeoutMs: 300 });
    // Open the connections the callers will use first: the 300 ms also bounds opening one (connectionTimeoutMillis),
    // and a connect timeout has no SQLSTATE (a loaded machine could miss it, failing the 57014 check below).
    for (let i = 0; i < 5; i++) {
      const warm = await Promise.allSettled(Array.from({ length: 4 }, () => s.ping()));
      if (warm.every((w) => w.status === 'fulfilled')) break;
    }
    const holder = await s.pool.connect();
    const spec = { reason: 'r', key: 'stuck:1', limit: 1000, windowMs: 60_000 };
    try {
      await holder.query('BEGIN');
      await holder.query('SET LOCAL statement_timeout = 0');
      await holder.query('SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))', [`${s.schema}:`, spec.key]);
      // As many as the pool has connections left beside the holder (more would time out waiting for one).
      const results = await Promise.allSettled(Array.from({ length: 3 }, () => s.consumeLimits([spec], T0)));
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as { code?: string };
        assert.equal(err.code, '57014', String(err));
        assert.ok(isStoreUnavailable(err));
      }
      await holder.query('ROLLBACK');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await s.peekLimits([spec], T0), [0], 'the cancelled statements rolled back');
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
      await destroy(s);
    }
  });

  it('retention purges a backlog larger than one statement should take, in batches', async () => {
    const s = await fresh();
    try {
      const old = Array.from({ length: 12_345 }, (_, i) => ({ id: `ev_old_${i}`, at: T0 - 86_400_000 + i, type: 'send', to: '+15550001' }));
      for (let i = 0; i < old.length; i += 2000) await s.appendEvents(old.slice(i, i + 2000));
      await s.appendEvents([{ id: 'ev_new', at: T0, type: 'send', to: '+15550001' }]);
      // Three batches of 5,000 (the last short): each its own statement (one DELETE of a day's events ran past
      // the statement timeout and rolled back, every minute).
      const statements = s.roundTrips;
      assert.equal(await s.purgeEvents(T0 - 1000), 12_345);
      assert.equal(s.roundTrips - statements, 3);
      const left = await s.queryEvents({ limit: 10 });
      assert.deepEqual(left.map((e) => e.id), ['ev_new']);
      assert.equal(await s.purgeEvents(T0 - 1000), 0);
    } finally {
      await destroy(s);
    }
  });

  it('slow queries hold at most their share of the pool: a send is served while event searches wait on a lock', async () => {
    // Pool of 4: one connection at most for the slow queries (a quarter), three for everything else.
    const s = await fresh({ timeoutMs: 8000 });
    const locker = await s.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${s.schema}".events IN ACCESS EXCLUSIVE MODE`);
      // Six searches: before the share, they took all four connections and the send waited for the lock too.
      const searches = Array.from({ length: 6 }, () => s.queryEvents({ limit: 10 }));
      await new Promise((r) => setTimeout(r, 200));
      let lockHeld = true;
      const spec = { reason: 'r', key: 'hot:1', limit: 10, windowMs: 60_000 };
      const served = await s.consumeLimits([spec], T0).then((o) => ({ allowed: o.allowed, whileLocked: lockHeld }));
      assert.deepEqual(served, { allowed: true, whileLocked: true });
      lockHeld = false;
      await locker.query('ROLLBACK');
      const results = await Promise.all(searches);
      assert.equal(results.length, 6, 'the searches ran once the lock was gone');
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
      await destroy(s);
    }
  });

  it('a sweep of a backlog takes the slow-query slot a batch at a time: an event search runs before it is done', async () => {
    // Pool of 4: one slot for slow queries. 200,000 expired counters: 40 batches.
    const s = await fresh({ timeoutMs: 5000 });
    try {
      await s.pool.query(`INSERT INTO "${s.schema}".counters (key, slots, counts, expires_at) SELECT 'old:' || i, '{}', '{}', 1 FROM generate_series(1, 200000) AS i`);
      let sweepDone = false;
      const sweeping = s.sweep(T0).then((n) => ((sweepDone = true), n));
      await new Promise((r) => setTimeout(r, 50));
      // Held for the whole sweep, the slot came free only when it was done (or the search gave up: 503).
      const search = await s.queryEvents({ limit: 10 }).then(() => ({ whileSweeping: !sweepDone }));
      assert.deepEqual(search, { whileSweeping: true });
      assert.equal(await sweeping, 200_000);
    } finally {
      await destroy(s);
    }
  });

  it("/metrics shows the pool's connections: total, idle, waiting, and those held by slow queries", async () => {
    const { startTestApp } = await import('../helpers/app.ts');
    const s = await fresh();
    const t = await startTestApp({ store: s });
    try {
      await s.queryEvents({ limit: 1 });
      const text = (await t.request('GET', '/metrics', undefined, { key: t.adminKey })).text;
      const value = (state: string) => Number(new RegExp(`^otpshield_store_pool_connections\\{state="${state}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
      assert.ok(value('total') >= 1, text.slice(0, 200));
      assert.ok(value('idle') >= 0 && value('idle') <= value('total'));
      assert.equal(value('waiting'), 0);
      assert.equal(value('slow'), 0);
      assert.deepEqual(Object.keys(s.poolStats()).sort(), ['idle', 'slow', 'total', 'waiting']);
    } finally {
      await t.detach();
      await destroy(s);
    }
  });

  it('a subject request waits for a long scan instead of giving up client-side after the request timeout', async () => {
    // timeoutMs 300: the pool's client-side timeout is 1.3 s; the events table is locked for 2 s.
    const s = await fresh({ timeoutMs: 300 });
    const locker = await s.pool.connect();
    try {
      await s.appendEvents([{ id: 'ev_subject', at: T0, type: 'send', to: '+15550009' }]);
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${s.schema}".events IN ACCESS EXCLUSIVE MODE`);
      const request = s.subjectRecords(['+15550009'], false);
      setTimeout(() => void locker.query('ROLLBACK'), 2000);
      const found = await request;
      assert.deepEqual(found.events.map((e) => e.id), ['ev_subject']);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
      await destroy(s);
    }
  });

  it("a migration behind a long reader gives up its lock wait and retries, so the table's other queries are not stuck behind it", async () => {
    const name = schema();
    const first = new PostgresStore(url, { schema: name, poolSize: 4 });
    await first.init();
    await first.createVerification(makeVerification({ id: 'v_mig' }));
    // Back to the schema before the last migration (the journal table, verifications.approved_by).
    await first.pool.query(`DROP TABLE "${name}".journal; ALTER TABLE "${name}".verifications DROP COLUMN approved_by`);
    const { rows } = await first.pool.query(`SELECT value FROM "${name}".meta WHERE key = 'schema_version'`);
    await first.pool.query(`UPDATE "${name}".meta SET value = $1 WHERE key = 'schema_version'`, [Number(rows[0].value) - 1]);
    const reader = await first.pool.connect();
    const second = new PostgresStore(url, { schema: name, poolSize: 4 });
    try {
      await reader.query('BEGIN');
      await reader.query(`SELECT count(*) FROM "${name}".verifications`);
      const migrating = second.init();
      await new Promise((r) => setTimeout(r, 300));
      let readerOpen = true;
      // A plain read of the table from another connection: before, it queued behind the waiting ALTER until the
      // reader ended; now the ALTER gives up within 2 s and the read goes through.
      const read = await first.pool.query(`SELECT id FROM "${name}".verifications WHERE id = 'v_mig'`).then((r) => ({ rows: r.rows.length, whileReaderOpen: readerOpen }));
      assert.deepEqual(read, { rows: 1, whileReaderOpen: true });
      await new Promise((r) => setTimeout(r, 2500));
      readerOpen = false;
      await reader.query('COMMIT');
      await migrating;
      assert.equal((await second.getVerification('v_mig'))?.approvedBy ?? null, null, 'migrated once the reader was done');
    } finally {
      await reader.query('ROLLBACK').catch(() => {});
      reader.release();
      await second.close().catch(() => {});
      await destroy(first);
    }
  });
});
