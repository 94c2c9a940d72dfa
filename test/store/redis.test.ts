import { it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis.ts';
import type { Store } from '../../src/store/interface.ts';
import { slotMsFor } from '../../src/engine/window.ts';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { storeContract, T0, makeVerification } from './contract.ts';

/** Delete every key of a store's prefix, then close it. */
async function destroy(s: Store): Promise<void> {
  const r = s as RedisStore;
  let cursor = '0';
  do {
    const [next, keys] = await r.redis.scan(cursor, 'MATCH', `${r.prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await r.redis.del(...keys);
  } while (cursor !== '0');
  await r.close();
}

async function keysOf(r: RedisStore): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await r.redis.scan(cursor, 'MATCH', `${r.prefix}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}

await describeWithService('redis', 'RedisStore', (url) => {
  storeContract('redis', async () => new RedisStore(url, { prefix: `otps-test:${randomTag()}:` }), {
    dispose: destroy,
    makePair: async () => {
      const prefix = `otps-test:${randomTag()}:`;
      return [new RedisStore(url, { prefix }), new RedisStore(url, { prefix })];
    },
  });

  const fresh = (opts: { maxEvents?: number } = {}) => new RedisStore(url, { prefix: `otps-test:${randomTag()}:`, ...opts });

  it('consumeLimits is one round trip for all specs; peek is one too', async () => {
    const s = fresh();
    try {
      const specs = [1, 2, 3, 4].map((i) => ({ reason: `r${i}`, key: `k${i}`, limit: 5, windowMs: 60_000 * i }));
      const before = s.roundTrips;
      await s.consumeLimits(specs, T0);
      assert.equal(s.roundTrips - before, 1);
      await s.peekLimits(specs, T0);
      assert.equal(s.roundTrips - before, 2);
      await s.consumeLimits(specs, T0);
      await s.reserveAttempt('nope', T0);
      assert.equal(s.roundTrips - before, 4);
    } finally {
      await destroy(s);
    }
  });

  it('counters carry a TTL of at most window + slot, so rotating keys cannot pile up', async () => {
    const s = fresh();
    try {
      const windowMs = 600_000;
      const n = 2000;
      // Batches in parallel; each request is one script call.
      for (let b = 0; b < n; b += 200) {
        await Promise.all(Array.from({ length: 200 }, (_, i) => s.consumeLimits([{ reason: 'r', key: `rot:${b + i}`, limit: 3, windowMs }], T0 + b + i)));
      }
      const keys = (await keysOf(s)).filter((k) => k.startsWith(`${s.prefix}c:`));
      assert.equal(keys.length, n);
      const pipe = s.redis.pipeline();
      for (const k of keys) pipe.pttl(k);
      const ttls = (await pipe.exec())!.map(([, v]) => Number(v));
      for (const t of ttls) assert.ok(t > 0 && t <= windowMs + slotMsFor(windowMs), `pttl ${t}`);
    } finally {
      await destroy(s);
    }
  });

  it('cost-0 reads create no key', async () => {
    const s = fresh();
    try {
      await s.consumeLimits([{ reason: 'r', key: 'ro', limit: 5, windowMs: 60_000, cost: 0 }], T0);
      assert.equal(await s.redis.exists(`${s.prefix}c:ro`), 0);
    } finally {
      await destroy(s);
    }
  });

  it('a journal time whose entry was evicted is dropped, so it cannot hold a place in later pages', async () => {
    const s = fresh();
    try {
      await s.putJournal('send:orphan', T0, { kind: 'send' });
      await s.putJournal('send:real', T0 + 1, { kind: 'send' });
      await s.redis.hdel(`${s.prefix}journal`, 'send:orphan'); // as if the hash had been evicted (eviction takes whole keys) and rewritten since
      assert.deepEqual(await s.listJournal(T0 + 10, 1), []);
      assert.deepEqual((await s.listJournal(T0 + 10, 1)).map((x) => x.key), ['send:real']);
      assert.equal(await s.redis.zscore(`${s.prefix}journal:at`, 'send:orphan'), null);
    } finally {
      await destroy(s);
    }
  });

  it('every temporary key has a TTL: verifications, pending index, tokens', async () => {
    const s = fresh();
    try {
      const v = makeVerification({ createdAt: T0, expiresAt: T0 + 600_000 });
      await s.createVerification(v);
      await s.addCode(v.id, { kid: 'k', hash: 'h', expiresAt: T0 + 1_200_000 }, { now: T0 + 1000, resendAfter: T0 + 31_000, keep: 3 });
      await s.useOnce('tok', 300_000, T0);
      const day = 24 * 3_600_000;
      const vt = await s.redis.pttl(`${s.prefix}v:${v.id}`);
      assert.ok(vt > day && vt <= 1_200_000 - 1000 + day, `verification pttl ${vt}`);
      const pt = await s.redis.pttl(`${s.prefix}p:${v.to}:${v.channel}`);
      assert.ok(pt > day && pt <= 1_200_000 - 1000 + day, `pending index pttl ${pt}`);
      const ot = await s.redis.pttl(`${s.prefix}o:tok`);
      assert.ok(ot > 0 && ot <= 300_000);
      // Permanent structures are few and known.
      const permanent = new Set(['settings', 'settings:exp', 'lists', 'lists:v', 'keys', 'events', 'events:last']);
      for (const k of await keysOf(s)) {
        const rel = k.slice(s.prefix.length);
        if (permanent.has(rel) || rel.startsWith('k:')) continue;
        assert.ok((await s.redis.pttl(k)) > 0, `${rel} has no TTL`);
      }
    } finally {
      await destroy(s);
    }
  });

  it('the event stream is capped (approximate MAXLEN)', async () => {
    const s = fresh({ maxEvents: 100 });
    try {
      for (let b = 0; b < 20; b++) {
        await s.appendEvents(Array.from({ length: 100 }, (_, i) => ({ id: `e${b}-${i}`, at: T0 + b * 100 + i, type: 't' })));
      }
      const len = await s.redis.xlen(`${s.prefix}events`);
      assert.ok(len >= 100 && len < 400, `xlen ${len}`);
      const newest = await s.queryEvents({ limit: 1 });
      assert.equal(newest[0]!.id, 'e19-99');
    } finally {
      await destroy(s);
    }
  });

  it('events with the same `at` (more than 1000 per ms) and out of order keep increasing seq', async () => {
    const s = fresh();
    try {
      await s.appendEvents(Array.from({ length: 2500 }, (_, i) => ({ id: `s${i}`, at: T0, type: 't' })));
      await s.appendEvents([{ id: 'late', at: T0 - 5000, type: 't' }]);
      const asc = await s.queryEvents({ limit: 5000, order: 'asc' });
      assert.equal(asc.length, 2501);
      for (let i = 1; i < asc.length; i++) assert.ok(asc[i]!.seq! > asc[i - 1]!.seq!);
      assert.equal(asc[2500]!.id, 'late');
      assert.equal(asc[2500]!.at, T0 - 5000);
      // `from` filters on `at`, also for the out-of-order one.
      assert.equal((await s.queryEvents({ limit: 10, from: T0 + 1 })).length, 0);
      assert.deepEqual((await s.queryEvents({ limit: 10, to: T0 })).map((e) => e.id), ['late']);
    } finally {
      await destroy(s);
    }
  });

  it('durabilityWarnings says when Redis keeps nothing on disk or may evict keys', async () => {
    const s = new RedisStore(url, { prefix: `otps-test:${randomTag()}:` });
    try {
      const [, appendonly] = (await s.redis.config('GET', 'appendonly')) as string[];
      const [, save] = (await s.redis.config('GET', 'save')) as string[];
      const [, policy] = (await s.redis.config('GET', 'maxmemory-policy')) as string[];
      const volatile = appendonly === 'no' && save === '';
      const w = await s.durabilityWarnings();
      assert.equal(w.some((x) => /keeps nothing on disk/.test(x)), volatile, w.join(' | '));
      assert.equal(w.some((x) => /maxmemory-policy/.test(x)), policy !== 'noeviction');
      // An evicting policy is named (maxmemory stays as it is, so nothing is evicted meanwhile).
      await s.redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
      try {
        assert.ok((await s.durabilityWarnings()).some((x) => /maxmemory-policy is allkeys-lru/.test(x)));
      } finally {
        await s.redis.config('SET', 'maxmemory-policy', policy!);
      }
    } finally {
      await s.close();
    }
  });

  it('a script whose reply was lost with the connection is not run again: the call fails, the effect happened once', async () => {
    // A TCP proxy in front of Redis that, when armed, forwards a command and then cuts both connections before
    // the reply gets back (a network blip, a load balancer's idle cut, a failover).
    const target = new URL(url);
    let armed = false;
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((c) => {
      const up = net.connect(Number(target.port || 6379), target.hostname);
      sockets.add(c).add(up);
      let cut = false;
      c.on('data', (d) => {
        up.write(d);
        if (armed && /evalsha|eval/i.test(d.toString('latin1'))) {
          armed = false;
          cut = true;
          setTimeout(() => {
            c.destroy();
            up.destroy();
          }, 100);
        }
      });
      up.on('data', (d) => {
        if (!cut) c.write(d);
      });
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const prefix = `otps-test:${randomTag()}:`;
    // ioredis drops such a command without rejecting it: it fails by the command timeout (5 s by default).
    const viaProxy = new RedisStore(`redis://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, { prefix, commandTimeoutMs: 500 });
    const direct = new RedisStore(url, { prefix });
    const spec = [{ reason: 'r', key: 'once', limit: 10, windowMs: 600_000 }];
    try {
      await viaProxy.consumeLimits([{ reason: 'r', key: 'warm', limit: 10, windowMs: 600_000 }], T0);
      armed = true;
      await assert.rejects(viaProxy.consumeLimits(spec, T0));
      assert.deepEqual(await direct.peekLimits(spec, T0), [1], 'counted once, not again on the new connection');
      const v = makeVerification();
      await direct.createVerification(v);
      armed = true;
      await assert.rejects(viaProxy.reserveAttempt(v.id, T0 + 1));
      assert.equal((await direct.getVerification(v.id))!.attempts, 1);
      // The store reconnects and works.
      assert.deepEqual((await viaProxy.consumeLimits(spec, T0 + 2)).counts, [2]);
      assert.deepEqual(await viaProxy.durabilityWarnings().then((w) => w.filter((x) => /resends unanswered/.test(x))), []);
    } finally {
      await viaProxy.close();
      await destroy(direct);
      // Open sockets would keep the test process alive.
      for (const sk of sockets) sk.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('durabilityWarnings names a client passed in that resends unanswered commands', async () => {
    const resending = new Redis(url);
    const safe = new Redis(url, { autoResendUnfulfilledCommands: false });
    try {
      assert.ok((await new RedisStore(resending, { prefix: 'otps-test:x:' }).durabilityWarnings()).some((x) => /autoResendUnfulfilledCommands/.test(x)));
      assert.ok(!(await new RedisStore(safe, { prefix: 'otps-test:x:' }).durabilityWarnings()).some((x) => /autoResendUnfulfilledCommands/.test(x)));
    } finally {
      resending.disconnect();
      safe.disconnect();
    }
  });

  it('scripts are reloaded after SCRIPT FLUSH', async () => {
    const s = fresh();
    const admin = new Redis(url);
    try {
      await s.consumeLimits([{ reason: 'r', key: 'f', limit: 3, windowMs: 60_000 }], T0);
      await admin.script('FLUSH');
      const r = await s.consumeLimits([{ reason: 'r', key: 'f', limit: 3, windowMs: 60_000 }], T0);
      assert.deepEqual(r.counts, [2]);
    } finally {
      admin.disconnect();
      await destroy(s);
    }
  });

  it('prefixes isolate stores; a shared client can be passed in and is not closed', async () => {
    const client = new Redis(url);
    const a = new RedisStore(client, { prefix: `otps-test:${randomTag()}:` });
    const b = new RedisStore(client, { prefix: `otps-test:${randomTag()}:` });
    try {
      const spec = [{ reason: 'r', key: 'same', limit: 1, windowMs: 60_000 }];
      assert.equal((await a.consumeLimits(spec, T0)).allowed, true);
      assert.equal((await b.consumeLimits(spec, T0)).allowed, true);
      assert.equal((await a.consumeLimits(spec, T0)).allowed, false);
      await a.close();
      assert.equal(await client.ping(), 'PONG');
    } finally {
      await destroy(a);
      await destroy(b);
      client.disconnect();
    }
  });

  it('sweep(now) removes expired settings and list entries', async () => {
    const s = fresh();
    try {
      await s.putSetting('q:1', 1, 1000, T0);
      await s.putSetting('keep', 1, undefined, T0);
      await s.putListEntry({ id: 'l1', list: 'block', kind: 'ip', value: '1.1.1.1', note: null, createdAt: T0, expiresAt: T0 + 1000 });
      await s.putListEntry({ id: 'l2', list: 'block', kind: 'ip', value: '1.1.1.2', note: null, createdAt: T0, expiresAt: null });
      assert.equal(await s.sweep(T0), 0);
      assert.equal(await s.sweep(T0 + 1000), 2);
      assert.deepEqual(await s.redis.hkeys(`${s.prefix}settings`), ['keep']);
      assert.deepEqual(await s.redis.zrange(`${s.prefix}settings:lex`, 0, -1), ['keep'], 'the key index too');
      assert.deepEqual(await s.redis.hkeys(`${s.prefix}lists`), ['l2']);
    } finally {
      await destroy(s);
    }
  });

  it('listSettings reads only the keys under its prefix, also after settings written or deleted without the key index', async () => {
    const s = fresh();
    const list = async (p: string) => (await s.listSettings(p, T0)).map((x) => [x.key, x.value]);
    try {
      await s.putSetting('pause:all', 1, undefined, T0);
      await s.putSetting('pause:country:ID', 2, undefined, T0);
      await s.putSetting('paused', 3, undefined, T0); // shares "pause" but not "pause:"
      await s.putSetting('pause:prefix:+62\u00ff', 4, undefined, T0); // a byte past ASCII in the key
      await s.putSetting('mon:h:2026112308:a', { big: 'x'.repeat(10_000) }, undefined, T0);
      assert.deepEqual(await list('pause:'), [['pause:all', 1], ['pause:country:ID', 2], ['pause:prefix:+62\u00ff', 4]]);
      assert.deepEqual(await list('pause:country:'), [['pause:country:ID', 2]]);
      assert.deepEqual(await list('nothing:'), []);
      // A version without the index (a rolling upgrade) writes and deletes in the hash only: the listing sees it.
      await s.redis.hset(`${s.prefix}settings`, 'pause:country:NG', JSON.stringify(5));
      assert.deepEqual(await list('pause:country:'), [['pause:country:ID', 2], ['pause:country:NG', 5]]);
      await s.redis.hdel(`${s.prefix}settings`, 'pause:all');
      assert.deepEqual(await list('pause:'), [['pause:country:ID', 2], ['pause:country:NG', 5], ['pause:prefix:+62\u00ff', 4]]);
      assert.equal(await s.redis.zcard(`${s.prefix}settings:lex`), await s.redis.hlen(`${s.prefix}settings`));
      await s.deleteSetting('pause:country:ID');
      assert.deepEqual(await list('pause:country:'), [['pause:country:NG', 5]]);
      // An older version's put that also swept an expired key leaves the sizes equal: the listing cannot tell,
      // and the maintenance sweep (every minute) rebuilds the index.
      await s.redis.hset(`${s.prefix}settings`, 'pause:country:PH', JSON.stringify(6));
      await s.redis.hdel(`${s.prefix}settings`, 'mon:h:2026112308:a');
      assert.deepEqual(await list('pause:country:'), [['pause:country:NG', 5]], 'missed until the sweep');
      await s.sweep(T0);
      assert.deepEqual(await list('pause:country:'), [['pause:country:NG', 5], ['pause:country:PH', 6]]);
      assert.deepEqual((await s.redis.zrange(`${s.prefix}settings:lex`, 0, -1)).sort(), (await s.redis.hkeys(`${s.prefix}settings`)).sort());
      // That rebuild is not repeated on every sweep (each instance sweeps every minute; ~100 ms of Redis per
      // 50,000 settings): at most every 10 minutes fleet-wide, by a mark with that TTL.
      await s.redis.hset(`${s.prefix}settings`, 'pause:country:MY', JSON.stringify(7));
      await s.redis.hdel(`${s.prefix}settings`, 'paused');
      await s.sweep(T0);
      assert.deepEqual(await list('pause:country:'), [['pause:country:NG', 5], ['pause:country:PH', 6]], 'not within the 10 minutes');
      await s.redis.del(`${s.prefix}settings:lex:checked`); // ten minutes later
      await s.sweep(T0);
      assert.deepEqual(await list('pause:country:'), [['pause:country:MY', 7], ['pause:country:NG', 5], ['pause:country:PH', 6]]);
    } finally {
      await destroy(s);
    }
  });
});
