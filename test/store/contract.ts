/**
 * The shared contract every Store implementation must pass. Each backend's test file calls
 * `storeContract(name, make)`; `make` must return a fresh, empty store (random Redis prefix, throwaway
 * PostgreSQL schema, new SQLite file...). Times are injected: T0 is a realistic epoch so large numbers
 * are exercised (the Redis Lua works in doubles).
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditEvent, LimitSpec, ListEntry, Store, StoredCode, TallySpec, Verification } from '../../src/store/interface.ts';
import { add, evaluate, prune, slotMsFor, type WindowState } from '../../src/engine/window.ts';
import { seededUniform } from '../../src/sim/random.ts';

export interface ContractOptions {
  /** Two stores on two separate connections sharing one backend namespace (Redis, PostgreSQL, SQLite file). */
  makePair?: () => Promise<[Store, Store]>;
  /** Tear a store down (drop schema/keys). Default: close(). */
  dispose?: (s: Store) => Promise<void>;
}

export const T0 = 1_700_000_000_000;
const MIN = 60_000;

let idCounter = 0;
export function newId(p = 'v'): string {
  idCounter++;
  return `${p}_${process.pid}_${idCounter}_${Math.random().toString(36).slice(2, 8)}`;
}

export function makeVerification(over: Partial<Verification> = {}): Verification {
  const createdAt = over.createdAt ?? T0;
  return {
    id: newId(),
    to: '+6281234567890',
    channel: 'sms',
    locale: null,
    status: 'pending',
    createdAt,
    updatedAt: createdAt,
    expiresAt: createdAt + 10 * MIN,
    attempts: 0,
    maxAttempts: 5,
    sends: 1,
    lastSentAt: createdAt,
    resendAfter: createdAt + 30_000,
    codes: [{ kid: 'k1', hash: 'aGFzaDE', expiresAt: createdAt + 10 * MIN }],
    client: {},
    tarpit: false,
    sender: null,
    failureReason: null,
    ...over,
  };
}

/** Small deterministic PRNG so failures reproduce. */
const prng = seededUniform;

const lim = (key: string, limit: number, windowMs = 10 * MIN, reason = `rl.${key}`, cost?: number): LimitSpec =>
  cost === undefined ? { reason, key, limit, windowMs } : { reason, key, limit, windowMs, cost };

export function storeContract(name: string, make: () => Promise<Store>, opts: ContractOptions = {}): void {
  describe(`Store contract: ${name}`, () => {
    const open: Store[] = [];
    const fresh = async (): Promise<Store> => {
      const s = await make();
      open.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of open.splice(0)) await (opts.dispose ? opts.dispose(s) : s.close());
    });

    describe('basics', () => {
      it('ping answers', async () => {
        const s = await fresh();
        await s.ping();
        assert.ok(['memory', 'sqlite', 'redis', 'postgres'].includes(s.kind));
      });
    });

    describe('one data subject\'s records (access and erasure requests)', () => {
      it('finds every record that names a destination, none of a longer number it prefixes, and erases them', async () => {
        const s = await fresh();
        const A = '+4915112345678';
        const B = '+41915112345678'; // contains A's digits after another calling code: not A
        const C = '+491511234567890'; // A followed by more digits: not A
        const va = makeVerification({ to: A });
        const vb = makeVerification({ to: B });
        await s.createVerification(va);
        await s.createVerification(makeVerification({ to: A, channel: 'whatsapp', status: 'approved' }));
        await s.createVerification(vb);
        const win = { limit: 5, windowMs: 10 * MIN };
        await s.consumeLimits([{ reason: 'r', key: `n:${A}:10m`, ...win }, { reason: 'r', key: `tr:${A}:h4sh`, ...win }, { reason: 'r', key: `n:${C}:10m`, ...win }, { reason: 'r', key: `n:${B}:10m`, ...win }], T0);
        assert.equal(await s.useOnce(`pp:n:${A}`, 60 * MIN, T0), true);
        await s.putSetting(`pause:prefix:${A}`, { since: T0 }, undefined, T0);
        await s.putSetting('pause:prefix:+49151', { since: T0 }, undefined, T0);
        const entry = { id: 'le_a', list: 'block' as const, kind: 'number' as const, value: A, note: null, createdAt: T0, expiresAt: null };
        await s.putListEntry(entry);
        await s.putListEntry({ ...entry, id: 'le_note', kind: 'ip', value: '198.51.100.7', note: `harassment of ${A}, see ticket` });
        await s.putListEntry({ ...entry, id: 'le_c', value: C });
        await s.appendEvents([
          { id: 'ev_1', at: T0, type: 'send', to: A, data: { verificationId: va.id } },
          { id: 'ev_2', at: T0 + 1, type: 'list.add', data: { entry: { value: A } } },
          { id: 'ev_3', at: T0 + 2, type: 'send', to: C },
          { id: 'ev_4', at: T0 + 3, type: 'send', to: B },
        ]);
        await s.putJournal('send:ev_9', T0, { kind: 'send', event: { id: 'ev_9', at: T0, type: 'send', to: A } });
        await s.putJournal('send:ev_8', T0, { kind: 'send', event: { id: 'ev_8', at: T0, type: 'send', to: C } });

        const found = await s.subjectRecords([A], false);
        assert.equal(found.verifications.length, 2);
        assert.ok(found.verifications.every((v) => v.to === A));
        assert.deepEqual(found.events.map((e) => e.id), ['ev_1', 'ev_2']);
        assert.deepEqual(found.listEntries.map((e) => e.id).sort(), ['le_a', 'le_note']);
        assert.deepEqual(found.keys, [`n:${A}:10m`, `pause:prefix:${A}`, `pp:n:${A}`, `tr:${A}:h4sh`]);
        assert.deepEqual(found.journal, ['send:ev_9']);
        // An access request changes nothing.
        assert.deepEqual((await s.subjectRecords([A], false)).events.length, 2);

        const erased = await s.subjectRecords([A], true);
        assert.deepEqual(erased.events.map((e) => e.id), ['ev_1', 'ev_2']);
        const left = await s.subjectRecords([A], false);
        assert.deepEqual(left, { verifications: [], events: [], listEntries: [], keys: [], journal: [] });
        // The others are untouched, and the limits of A start over.
        assert.equal(await s.getVerification(va.id), null);
        assert.ok(await s.getVerification(vb.id));
        assert.equal(await s.findPending(A, 'sms', T0), null);
        assert.deepEqual((await s.queryEvents({ limit: 10, order: 'asc' })).map((e) => e.id), ['ev_3', 'ev_4']);
        // An entry that only mentions it keeps its value (an IP block stays), its note redacted.
        assert.deepEqual((await s.listEntries(T0)).map((e) => [e.id, e.note]).sort(), [['le_c', null], ['le_note', 'harassment of [erased], see ticket']]);
        assert.deepEqual(await s.peekLimits([{ reason: 'r', key: `n:${A}:10m`, ...win }, { reason: 'r', key: `n:${C}:10m`, ...win }], T0), [0, 1]);
        assert.equal(await s.useOnce(`pp:n:${A}`, 60 * MIN, T0), true, 'the marker is gone');
        assert.equal(await s.getSetting(`pause:prefix:${A}`, T0), null);
        assert.ok(await s.getSetting('pause:prefix:+49151', T0));
        assert.deepEqual((await s.listJournal(Number.MAX_SAFE_INTEGER, 10)).map((j) => j.key), ['send:ev_8']);
      });

      it('an email address (with its limit key) is found by its exact parts only', async () => {
        const s = await fresh();
        const addr = 'bob.smith+1@company.example';
        const base = 'bob.smith@company.example';
        await s.createVerification(makeVerification({ to: addr, channel: 'email' }));
        await s.createVerification(makeVerification({ to: `x${base}`, channel: 'email' }));
        await s.consumeLimits([{ reason: 'r', key: `cd:${base}:email`, limit: 1, windowMs: MIN }, { reason: 'r', key: `n:x${base}:10m`, limit: 5, windowMs: MIN }], T0);
        await s.appendEvents([{ id: 'ev_e', at: T0, type: 'send', to: addr }, { id: 'ev_x', at: T0, type: 'send', to: `x${base}` }, { id: 'ev_m', at: T0, type: 'send', to: `${base}.evil` }]);
        // The base address's own records are another destination's: only the shared counters go.
        await s.createVerification(makeVerification({ to: base, channel: 'email' }));
        await s.appendEvents([{ id: 'ev_b', at: T0, type: 'send', to: base }]);
        // A note that writes the address in another case names it too.
        await s.putListEntry({ id: 'le_n', list: 'block', kind: 'ip', value: '198.51.100.8', note: 'spam from Bob.Smith+1@Company.example, ticket 7', createdAt: T0, expiresAt: null });
        await s.appendEvents([{ id: 'ev_n', at: T0, type: 'list.add', data: { entry: { note: 'spam from Bob.Smith+1@Company.example' } } }]);
        const found = await s.subjectRecords([addr], true, [addr, base]);
        assert.deepEqual(found.verifications.map((v) => v.to), [addr]);
        assert.deepEqual(found.events.map((e) => e.id), ['ev_e', 'ev_n']);
        assert.deepEqual((await s.listEntries(T0)).map((e) => e.note), ['spam from [erased], ticket 7']);
        assert.deepEqual(found.keys, [`cd:${base}:email`]);
        assert.deepEqual((await s.queryEvents({ limit: 10, order: 'asc' })).map((e) => e.id), ['ev_x', 'ev_m', 'ev_b']);
      });
    });

    describe('verifications', () => {
      it('create then get returns the same verification; unknown id is null', async () => {
        const s = await fresh();
        const v = makeVerification({
          locale: 'id-ID',
          channel: 'whatsapp',
          client: { ip: '203.0.113.7', nested: { a: [1, 2, { b: 'ü' }] }, empty: [], n: 1.5 },
          tarpit: true,
          sender: 'twilio',
          codes: [
            { kid: 'k1', hash: 'h1', expiresAt: T0 + 1000 },
            { kid: 'k2', hash: 'h2/+=', expiresAt: T0 + 2000 },
          ],
        });
        await s.createVerification(v);
        assert.deepEqual(await s.getVerification(v.id), v);
        const plain = makeVerification();
        await s.createVerification(plain);
        assert.deepEqual(await s.getVerification(plain.id), plain);
        assert.equal(await s.getVerification('nope'), null);
      });

      it('findPending prefers a real verification to a newer tarpit; a tarpit alone is found', async () => {
        const s = await fresh();
        const to = '+15550000011';
        const real = makeVerification({ to, createdAt: T0 });
        const tarpit = makeVerification({ to, createdAt: T0 + 1000, tarpit: true, codes: [] });
        await s.createVerification(real);
        await s.createVerification(tarpit);
        assert.equal((await s.findPending(to, 'sms', T0 + 2000))?.id, real.id);
        // Among real ones the newest wins, a tarpit in between or not.
        const newer = makeVerification({ to, createdAt: T0 + 3000 });
        await s.createVerification(newer);
        assert.equal((await s.findPending(to, 'sms', T0 + 4000))?.id, newer.id);
        const alone = '+15550000012';
        const only = makeVerification({ to: alone, createdAt: T0, tarpit: true, codes: [] });
        await s.createVerification(only);
        assert.equal((await s.findPending(alone, 'sms', T0 + 1))?.id, only.id);
        // The real one gone (approved): the tarpit is what remains pending.
        assert.equal(await s.transition(real.id, 'approved', T0 + 5000), true);
        assert.equal(await s.transition(newer.id, 'canceled', T0 + 5000), true);
        assert.equal((await s.findPending(to, 'sms', T0 + 6000))?.id, tarpit.id);
      });

      it('returned objects are copies', async () => {
        const s = await fresh();
        const v = makeVerification();
        await s.createVerification(v);
        v.attempts = 99;
        const got = await s.getVerification(v.id);
        assert.equal(got!.attempts, 0);
        got!.codes.push({ kid: 'x', hash: 'x', expiresAt: 0 });
        assert.equal((await s.getVerification(v.id))!.codes.length, 1);
      });

      it('findPending picks the newest pending unexpired one for that number and channel', async () => {
        const s = await fresh();
        const to = '+15550000001';
        const older = makeVerification({ to, createdAt: T0, expiresAt: T0 + 20 * MIN });
        const newer = makeVerification({ to, createdAt: T0 + 1000, expiresAt: T0 + 10 * MIN });
        const otherChannel = makeVerification({ to, channel: 'voice', createdAt: T0 + 2000 });
        const otherNumber = makeVerification({ to: '+15550000002', createdAt: T0 + 3000 });
        for (const v of [older, newer, otherChannel, otherNumber]) await s.createVerification(v);

        assert.equal((await s.findPending(to, 'sms', T0 + 5000))?.id, newer.id);
        assert.equal((await s.findPending(to, 'voice', T0 + 5000))?.id, otherChannel.id);
        assert.equal(await s.findPending(to, 'email', T0 + 5000), null);
        assert.equal(await s.findPending('+15550000003', 'sms', T0 + 5000), null);
        // The newer one expired (at exactly its expiresAt): the older, still valid, is found.
        assert.equal((await s.findPending(to, 'sms', T0 + 10 * MIN))?.id, older.id);
        // Not pending any more: skipped.
        assert.equal(await s.transition(newer.id, 'canceled', T0 + 6000), true);
        assert.equal((await s.findPending(to, 'sms', T0 + 6000))?.id, older.id);
        assert.equal(await s.transition(older.id, 'approved', T0 + 7000), true);
        assert.equal(await s.findPending(to, 'sms', T0 + 7000), null);
        // A verification created non-pending is never found.
        await s.createVerification(makeVerification({ to, status: 'failed', createdAt: T0 + 9000 }));
        assert.equal(await s.findPending(to, 'sms', T0 + 9000), null);
        const full = await s.findPending('+15550000002', 'sms', T0);
        assert.deepEqual(full, otherNumber);
      });

      it('addCode appends, keeps the newest `keep`, bumps sends and times', async () => {
        const s = await fresh();
        const v = makeVerification();
        await s.createVerification(v);
        const codes: StoredCode[] = [1, 2, 3, 4].map((i) => ({ kid: 'k1', hash: `h${i}`, expiresAt: T0 + 10 * MIN + i * MIN }));
        let last: Verification | null = null;
        for (const [i, c] of codes.entries()) {
          last = await s.addCode(v.id, c, { now: T0 + (i + 1) * MIN, resendAfter: T0 + (i + 1) * MIN + 30_000, keep: 3 });
          assert.ok(last);
        }
        assert.deepEqual(last!.codes.map((c) => c.hash), ['h2', 'h3', 'h4']);
        assert.equal(last!.sends, 5);
        assert.equal(last!.lastSentAt, T0 + 4 * MIN);
        assert.equal(last!.updatedAt, T0 + 4 * MIN);
        assert.equal(last!.resendAfter, T0 + 4 * MIN + 30_000);
        assert.equal(last!.expiresAt, T0 + 14 * MIN);
        assert.deepEqual(await s.getVerification(v.id), last);
        // keep 1 leaves only the new code.
        const one = await s.addCode(v.id, { kid: 'k2', hash: 'h5', expiresAt: T0 + 20 * MIN }, { now: T0 + 5 * MIN, resendAfter: 0, keep: 1 });
        assert.deepEqual(one!.codes, [{ kid: 'k2', hash: 'h5', expiresAt: T0 + 20 * MIN }]);
      });

      it('withdrawCode removes one code of a pending verification and changes nothing else', async () => {
        const s = await fresh();
        const v = makeVerification();
        await s.createVerification(v);
        const a = { kid: 'k1', hash: 'hA-_', expiresAt: T0 + 11 * MIN };
        const b = { kid: 'k1', hash: 'hB', expiresAt: T0 + 12 * MIN };
        await s.addCode(v.id, a, { now: T0 + MIN, resendAfter: T0 + 2 * MIN, keep: 3 });
        const before = await s.addCode(v.id, b, { now: T0 + 2 * MIN, resendAfter: T0 + 3 * MIN, keep: 3 });
        assert.equal(await s.withdrawCode(v.id, 'hB', T0 + 3 * MIN), true);
        const after = (await s.getVerification(v.id))!;
        assert.deepEqual(after.codes.map((c) => c.hash), [...v.codes.map((c) => c.hash), 'hA-_']);
        assert.equal(before!.expiresAt, T0 + 12 * MIN);
        assert.equal(after.expiresAt, T0 + 11 * MIN, 'the verification now expires with the latest code left');
        assert.deepEqual({ ...after, codes: [], updatedAt: 0, expiresAt: 0 }, { ...before!, codes: [], updatedAt: 0, expiresAt: 0 }, 'sends, times and status unchanged');
        // Past the last code left, the verification is expired: a check is answered so, not "denied".
        assert.deepEqual(await s.reserveAttempt(v.id, T0 + 11 * MIN).then((r) => r.ok || r.reason), 'expired');
        assert.equal(await s.withdrawCode(v.id, 'hB', T0 + 3 * MIN), false, 'already gone');
        assert.equal(await s.withdrawCode(v.id, 'h', T0 + 3 * MIN), false, 'a prefix of a hash is not that hash');
        assert.equal(await s.withdrawCode('nope', 'hA-_', T0 + 3 * MIN), false);
        await s.transition(v.id, 'approved', T0 + 4 * MIN);
        assert.equal(await s.withdrawCode(v.id, 'hA-_', T0 + 4 * MIN), false, 'not pending');
        assert.equal((await s.getVerification(v.id))!.codes.length, after.codes.length);
      });

      it('addCode refuses unknown, expired and non-pending verifications', async () => {
        const s = await fresh();
        const code = { kid: 'k', hash: 'h', expiresAt: T0 + 60 * MIN };
        const o = { now: T0 + MIN, resendAfter: T0 + 2 * MIN, keep: 3 };
        assert.equal(await s.addCode('nope', code, o), null);
        const v = makeVerification();
        await s.createVerification(v);
        assert.equal(await s.addCode(v.id, code, { ...o, now: v.expiresAt }), null);
        assert.equal((await s.getVerification(v.id))!.sends, 1);
        await s.transition(v.id, 'canceled', T0 + 1);
        assert.equal(await s.addCode(v.id, code, o), null);
        assert.deepEqual((await s.getVerification(v.id))!.codes, v.codes);
      });

      it('reserveAttempt: counts, expires, locks, and reports not_found / not_pending', async () => {
        const s = await fresh();
        assert.deepEqual(await s.reserveAttempt('nope', T0), { ok: false, reason: 'not_found', verification: null });

        const v = makeVerification({ maxAttempts: 3 });
        await s.createVerification(v);
        for (let i = 1; i <= 3; i++) {
          const r = await s.reserveAttempt(v.id, T0 + i);
          assert.equal(r.ok, true);
          assert.equal(r.verification!.attempts, i);
          assert.equal(r.verification!.updatedAt, T0 + i);
        }
        const locked = await s.reserveAttempt(v.id, T0 + 10);
        assert.equal(locked.ok, false);
        assert.equal(!locked.ok && locked.reason, 'locked');
        // Refused, but not flipped to locked: the attempts in flight decide (a right code among them must
        // still be approved); the service locks it when the last one fails.
        assert.equal(locked.verification!.status, 'pending');
        assert.equal(locked.verification!.attempts, 3);
        assert.equal((await s.getVerification(v.id))!.status, 'pending');
        assert.equal(await s.transition(v.id, 'locked', T0 + 10), true);
        assert.equal((await s.getVerification(v.id))!.status, 'locked');
        const again = await s.reserveAttempt(v.id, T0 + 11);
        assert.equal(!again.ok && again.reason, 'locked');
        // locked is terminal for findPending too
        assert.equal(await s.findPending(v.to, v.channel, T0 + 12), null);

        const e = makeVerification();
        await s.createVerification(e);
        const ex = await s.reserveAttempt(e.id, e.expiresAt);
        assert.equal(!ex.ok && ex.reason, 'expired');
        assert.equal(ex.verification!.attempts, 0);
        assert.equal((await s.reserveAttempt(e.id, e.expiresAt - 1)).ok, true);

        const a = makeVerification();
        await s.createVerification(a);
        await s.transition(a.id, 'approved', T0 + 1);
        const np = await s.reserveAttempt(a.id, T0 + 2);
        assert.equal(!np.ok && np.reason, 'not_pending');
        assert.equal(np.verification!.status, 'approved');
      });

      it('50 parallel reserveAttempt with maxAttempts 5 -> exactly 5 ok', async () => {
        const s = await fresh();
        const v = makeVerification({ maxAttempts: 5 });
        await s.createVerification(v);
        const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => s.reserveAttempt(v.id, T0 + i)));
        assert.equal(rs.filter((r) => r.ok).length, 5);
        assert.equal(rs.filter((r) => !r.ok && r.reason === 'locked').length, 45);
        const after = await s.getVerification(v.id);
        assert.equal(after!.attempts, 5);
        assert.equal(after!.status, 'pending', 'the five reserved attempts decide, not the refused ones');
        // A right code among the five reserved ones can still be approved.
        assert.equal(await s.transition(v.id, 'approved', T0 + 60), true);
        assert.deepEqual(rs.filter((r) => r.ok).map((r) => r.verification!.attempts).sort(), [1, 2, 3, 4, 5]);
      });

      it('transition: exactly one of 20 parallel approvals wins; extras are stored', async () => {
        const s = await fresh();
        const v = makeVerification();
        await s.createVerification(v);
        const rs = await Promise.all(Array.from({ length: 20 }, () => s.transition(v.id, 'approved', T0 + 5)));
        assert.equal(rs.filter(Boolean).length, 1);
        const got = await s.getVerification(v.id);
        assert.equal(got!.status, 'approved');
        assert.equal(got!.updatedAt, T0 + 5);
        assert.equal(await s.transition(v.id, 'canceled', T0 + 6), false);
        assert.equal(await s.transition('nope', 'canceled', T0 + 6), false);

        const f = makeVerification();
        await s.createVerification(f);
        assert.equal(await s.transition(f.id, 'failed', T0 + 7, { failureReason: 'provider_error', sender: 'vonage' }), true);
        const gf = await s.getVerification(f.id);
        assert.equal(gf!.status, 'failed');
        assert.equal(gf!.failureReason, 'provider_error');
        assert.equal(gf!.sender, 'vonage');
      });
    });

    describe('rate limits', () => {
      it('100 parallel consumeLimits with limit 3 -> exactly 3 allowed', async () => {
        const s = await fresh();
        const spec = [lim('n:+1:10m', 3)];
        const rs = await Promise.all(Array.from({ length: 100 }, () => s.consumeLimits(spec, T0)));
        assert.equal(rs.filter((r) => r.allowed).length, 3);
        assert.deepEqual(rs.filter((r) => r.allowed).map((r) => r.counts[0]).sort(), [1, 2, 3]);
        for (const r of rs.filter((x) => !x.allowed)) {
          assert.deepEqual(r.counts, [3]);
          assert.equal(r.denied.length, 1);
          assert.equal(r.denied[0]!.reason, 'rl.n:+1:10m');
          assert.equal(r.denied[0]!.key, 'n:+1:10m');
          assert.ok(r.denied[0]!.retryAfterMs > 0);
        }
        assert.deepEqual(await s.peekLimits(spec, T0), [3]);
      });

      it('consumeLimitsAndCreate creates the verification only when every limit allows, in one step', async () => {
        const s = await fresh();
        const specs = [lim('cc:n', 2), lim('cc:cd', 5, MIN, 'cooldown'), lim('cc:read', 10, MIN, 'rl.read', 0)];
        const v1 = makeVerification({ to: '+15550001001', client: { ip: '203.0.113.9', nested: { a: [1] } } });
        assert.deepEqual(await s.consumeLimitsAndCreate(specs, v1, T0), { allowed: true, denied: [], counts: [1, 1, 0] });
        assert.deepEqual(await s.getVerification(v1.id), v1);
        assert.equal((await s.findPending(v1.to, 'sms', T0 + 1))?.id, v1.id);
        const v2 = makeVerification({ to: '+15550001001', createdAt: T0 + 1 });
        assert.equal((await s.consumeLimitsAndCreate(specs, v2, T0 + 1)).allowed, true);
        // The third is refused by `cc:n`: nothing counted, nothing created, the pending index untouched.
        const v3 = makeVerification({ to: '+15550001001', createdAt: T0 + 2 });
        const denied = await s.consumeLimitsAndCreate(specs, v3, T0 + 2);
        assert.equal(denied.allowed, false);
        assert.deepEqual(denied.denied.map((d) => d.key), ['cc:n']);
        assert.deepEqual(denied.counts, [2, 2, 0]);
        assert.equal(await s.getVerification(v3.id), null);
        assert.equal((await s.findPending(v3.to, 'sms', T0 + 3))?.id, v2.id);
        assert.deepEqual(await s.peekLimits(specs, T0 + 3), [2, 2, 0]);
        // A verification created not pending is stored but not found as pending.
        const failed = makeVerification({ to: '+15550001002', status: 'failed' });
        assert.equal((await s.consumeLimitsAndCreate([lim('cc:other', 1)], failed, T0)).allowed, true);
        assert.deepEqual(await s.getVerification(failed.id), failed);
        assert.equal(await s.findPending(failed.to, 'sms', T0 + 1), null);
      });

      it('consumeLimitsAndCreate: 50 parallel first sends under a limit of 3 create exactly 3 verifications', async () => {
        const s = await fresh();
        const to = '+15550001003';
        const vs = Array.from({ length: 50 }, (_, i) => makeVerification({ to, createdAt: T0 + i }));
        const rs = await Promise.all(vs.map((v, i) => s.consumeLimitsAndCreate([lim('cc:par', 3), lim(`cc:own:${i}`, 1)], v, T0 + i)));
        const created = (await Promise.all(vs.map((v) => s.getVerification(v.id)))).filter((x) => x !== null);
        assert.equal(rs.filter((r) => r.allowed).length, 3);
        assert.deepEqual(created.map((v) => v.id).sort(), vs.filter((_, i) => rs[i]!.allowed).map((v) => v.id).sort());
        assert.deepEqual(await s.peekLimits([lim('cc:par', 3)], T0 + 50), [3]);
      });

      it('all-or-nothing: a denied multi-spec request counts nothing', async () => {
        const s = await fresh();
        const a = lim('a', 5);
        const b = lim('b', 1, 60 * MIN);
        const c = lim('c', 10, MIN, 'rl.c', 2);
        const first = await s.consumeLimits([a, b, c], T0);
        assert.deepEqual(first, { allowed: true, denied: [], counts: [1, 1, 2] });
        const second = await s.consumeLimits([a, b, c], T0 + 1000);
        assert.equal(second.allowed, false);
        assert.deepEqual(second.counts, [1, 1, 2]);
        assert.deepEqual(second.denied.map((d) => d.reason), ['rl.b']);
        assert.deepEqual(await s.peekLimits([a, b, c], T0 + 1000), [1, 1, 2]);
        // Denied by two at once: both reported.
        const third = await s.consumeLimits([lim('a', 1), b], T0 + 2000);
        assert.deepEqual(third.denied.map((d) => d.key).sort(), ['a', 'b']);
        assert.deepEqual(await s.peekLimits([a, b, c], T0 + 2000), [1, 1, 2]);
        // Parallel mixed load: `b`-free requests still count on `a`.
        const rs = await Promise.all(Array.from({ length: 10 }, () => s.consumeLimits([a, c], T0 + 3000)));
        assert.equal(rs.filter((r) => r.allowed).length, 4);
        assert.deepEqual(await s.peekLimits([a, c], T0 + 3000), [5, 10]);
      });

      it('empty spec list is allowed; limit 0 denies everything; cost above limit is denied', async () => {
        const s = await fresh();
        assert.deepEqual(await s.consumeLimits([], T0), { allowed: true, denied: [], counts: [] });
        const z = await s.consumeLimits([lim('z', 0)], T0);
        assert.equal(z.allowed, false);
        assert.equal(z.denied[0]!.retryAfterMs, 10 * MIN);
        const big = await s.consumeLimits([lim('big', 3, MIN, 'rl.big', 4)], T0);
        assert.equal(big.allowed, false);
        assert.deepEqual(await s.peekLimits([lim('z', 0), lim('big', 3)], T0), [0, 0]);
      });

      it('matches the reference rule of engine/window.ts step by step', async () => {
        const s = await fresh();
        const rnd = prng(42);
        const specs = [lim('w1', 3, 10 * MIN), lim('w2', 5, MIN), lim('w3', 4, 7_777, 'rl.w3', 2)];
        const ref = new Map<string, WindowState>();
        let now = T0 + 123;
        let allowedCount = 0;
        for (let step = 0; step < 250; step++) {
          now += Math.floor(rnd() * rnd() * 4 * MIN);
          const pick = specs.filter(() => rnd() < 0.7);
          const req = pick.length ? pick : [specs[0]!];
          // Reference evaluation (independent of the stores' shared code).
          const evals = req.map((sp) => evaluate(ref.get(sp.key) ?? [], { limit: sp.limit, windowMs: sp.windowMs, cost: sp.cost ?? 1 }, now));
          const allowed = evals.every((e) => e.result.allowed);
          const got = await s.consumeLimits(req, now);
          assert.equal(got.allowed, allowed, `step ${step}`);
          if (allowed) {
            allowedCount++;
            req.forEach((sp, i) => ref.set(sp.key, add(evals[i]!.pruned.map(([a, b]) => [a, b]), sp.windowMs, sp.cost ?? 1, now)));
            assert.deepEqual(got.counts, evals.map((e, i) => e.result.count + (req[i]!.cost ?? 1)));
          } else {
            assert.deepEqual(got.counts, evals.map((e) => e.result.count));
            const want = req.flatMap((sp, i) => (evals[i]!.result.allowed ? [] : [{ reason: sp.reason, key: sp.key, retryAfterMs: evals[i]!.result.retryAfterMs }]));
            assert.deepEqual(got.denied, want, `step ${step}`);
          }
          const peek = await s.peekLimits(specs, now);
          assert.deepEqual(peek, specs.map((sp) => (ref.get(sp.key) ? prune(ref.get(sp.key)!, sp.windowMs, now) : []).reduce((n, [, c]) => n + c, 0)));
        }
        assert.ok(allowedCount > 20 && allowedCount < 240, `sequence exercises both outcomes (${allowedCount})`);
      });

      it('never more than `limit` in any window; allowed again exactly at retryAfterMs', async () => {
        const s = await fresh();
        const windowMs = 10 * MIN;
        const spec = [lim('edge', 3, windowMs)];
        const rnd = prng(7);
        const allowedAt: number[] = [];
        let now = T0;
        for (let i = 0; i < 60; i++) {
          now += Math.floor(rnd() * 5 * MIN);
          const r = await s.consumeLimits(spec, now);
          if (r.allowed) {
            allowedAt.push(now);
            continue;
          }
          const wait = r.denied[0]!.retryAfterMs;
          assert.ok(wait > 0 && wait <= windowMs + slotMsFor(windowMs), `retryAfter ${wait}`);
          if (wait > 1) assert.equal((await s.consumeLimits(spec, now + wait - 1)).allowed, false, 'one ms early is refused');
          const ok = await s.consumeLimits(spec, now + wait);
          assert.equal(ok.allowed, true, 'allowed exactly at retryAfter');
          now += wait;
          allowedAt.push(now);
        }
        for (const t of allowedAt) {
          const inWindow = allowedAt.filter((u) => u > t - windowMs && u <= t).length;
          assert.ok(inWindow <= 3, `${inWindow} events in the window ending at ${t}`);
        }
        assert.ok(allowedAt.length > 10);
      });

      it('cost 0 reads counts inside consumeLimits without counting or creating state', async () => {
        const s = await fresh();
        const counted = lim('obs', 1_000_000_000);
        const read = { ...lim('vn', 1_000_000_000), cost: 0 };
        const first = await s.consumeLimits([counted, read], T0);
        assert.deepEqual(first.counts, [1, 0]);
        assert.deepEqual(await s.peekLimits([counted, read], T0), [1, 0]);
        await s.consumeLimits([{ ...read, cost: 3 }], T0 + 1);
        for (let i = 0; i < 5; i++) assert.deepEqual((await s.consumeLimits([counted, read], T0 + 2 + i * MIN)).counts, [2 + i, 3]);
        // At the limit a cost-0 read is allowed: the rule is count + cost <= limit.
        const tight = lim('tight', 1);
        await s.consumeLimits([tight], T0);
        assert.equal((await s.consumeLimits([{ ...tight, cost: 0 }], T0)).allowed, true);
        // The same key named twice gets both costs, and the reported counts include each spec's own cost.
        const twice = await s.consumeLimits([lim('dup', 5), lim('dup', 5)], T0);
        assert.equal(twice.allowed, true);
        assert.deepEqual(await s.peekLimits([lim('dup', 5)], T0), [2]);
      });

      it('rejects malformed specs instead of guessing', async () => {
        const s = await fresh();
        await assert.rejects(s.consumeLimits([{ reason: 'r', key: 'k', limit: 1.5, windowMs: MIN }], T0), TypeError);
        await assert.rejects(s.consumeLimits([{ reason: 'r', key: 'k', limit: 1, windowMs: 0 }], T0), TypeError);
        await assert.rejects(s.consumeLimits([{ reason: 'r', key: 'k', limit: 1, windowMs: MIN, cost: -1 }], T0), TypeError);
        assert.deepEqual(await s.peekLimits([lim('k', 1)], T0), [0]);
      });

      it('tally: every window follows the reference rule of engine/window.ts; a denying gate counts nothing', async () => {
        const s = await fresh();
        const rnd = prng(11);
        const fast: TallySpec = { key: 'tally:fast', windowsMs: [15_000, MIN, 10 * MIN, 60 * MIN], cost: 1 };
        const slow: TallySpec = { key: 'tally:slow', windowsMs: [7_777, 24 * 60 * MIN], cost: 2 };
        const read: TallySpec = { key: 'tally:read', windowsMs: [MIN, 60 * MIN], cost: 0 };
        // Reference: one window.ts state per (key, window), as the separate counters of one key per window.
        const ref = new Map<string, WindowState>();
        const refGate = new Map<string, WindowState>();
        let now = T0 + 321;
        let counted = 0;
        for (let step = 0; step < 200; step++) {
          now += Math.floor(rnd() * rnd() * 3 * MIN);
          // The gate: once per number per 20 minutes, over four numbers (or no gate at all).
          const number = Math.floor(rnd() * 5);
          const gate = number === 4 ? null : lim(`tally-gate:${number}`, 1, 20 * MIN);
          const tallies = rnd() < 0.5 ? [fast, slow, read] : [slow, fast];
          const gateEval = gate ? evaluate(refGate.get(gate.key) ?? [], { limit: 1, windowMs: gate.windowMs, cost: 1 }, now) : null;
          const allowed = gateEval === null || gateEval.result.allowed;
          if (gate && allowed) refGate.set(gate.key, add(gateEval!.pruned.map(([a, b]) => [a, b]), gate.windowMs, 1, now));
          const want = tallies.map((t) =>
            t.windowsMs.map((w) => {
              const k = `${t.key}#${w}`;
              const e = evaluate(ref.get(k) ?? [], { limit: 1e9, windowMs: w, cost: t.cost }, now);
              if (!allowed || t.cost === 0) return e.result.count;
              ref.set(k, add(e.pruned.map(([a, b]) => [a, b]), w, t.cost, now));
              return e.result.count + t.cost;
            }),
          );
          const got = await s.tally(gate, tallies, now);
          assert.equal(got.counted, allowed, `step ${step}`);
          assert.deepEqual(got.counts, want, `step ${step}`);
          if (allowed) counted++;
        }
        assert.ok(counted > 40 && counted < 190, `sequence exercises both outcomes (${counted})`);
        // Reads (cost 0, no gate) neither count nor create state.
        assert.deepEqual((await s.tally(null, [read], now)).counts, [[0, 0]]);
        assert.deepEqual((await s.tally(null, [{ ...read, cost: 1 }], now + 1)).counts, [[1, 1]]);
      });

      it('tally: parallel calls are atomic; malformed specs and repeated keys are rejected', async () => {
        const s = await fresh();
        const t: TallySpec = { key: 'tally:dup', windowsMs: [MIN, 10 * MIN], cost: 1 };
        await assert.rejects(s.tally(null, [t, { ...t, cost: 2 }], T0), TypeError);
        assert.deepEqual((await s.tally(null, [{ ...t, cost: 3 }], T0)).counts, [[3, 3]]);
        // 40 parallel calls, 20 of them for one number behind a limit-1 gate: exactly 21 count.
        const rs = await Promise.all(
          Array.from({ length: 40 }, (_, i) => s.tally(lim(i % 2 ? 'tally-once' : `tally-n${i}`, 1, 60 * MIN), [t], T0 + 1)),
        );
        assert.equal(rs.filter((r) => r.counted).length, 21);
        assert.deepEqual((await s.tally(null, [{ ...t, cost: 0 }], T0 + 2)).counts, [[24, 24]]);
        // The one-minute window empties; the ten-minute one keeps counting.
        assert.deepEqual((await s.tally(null, [{ ...t, cost: 0 }], T0 + 2 * MIN)).counts, [[0, 24]]);
        await assert.rejects(s.tally(null, [{ key: 'k', windowsMs: [0], cost: 1 }], T0), TypeError);
        await assert.rejects(s.tally(null, [{ key: 'k', windowsMs: [MIN], cost: 1.5 }], T0), TypeError);
        await assert.rejects(s.tally(null, [{ key: 'k', windowsMs: [], cost: 1 }], T0), TypeError);
        await assert.rejects(s.tally(null, [{ key: 'k', windowsMs: [MIN, MIN], cost: 1 }], T0), TypeError);
      });

      it('peekLimits does not consume; resetLimits forgets', async () => {
        const s = await fresh();
        const a = lim('pa', 2);
        const b = lim('pb', 2);
        for (let i = 0; i < 5; i++) assert.deepEqual(await s.peekLimits([a, b], T0), [0, 0]);
        await s.consumeLimits([a, b], T0);
        await s.consumeLimits([a], T0);
        assert.deepEqual(await s.peekLimits([a, b], T0 + 1), [2, 1]);
        assert.equal((await s.consumeLimits([a], T0 + 2)).allowed, false);
        await s.resetLimits(['pa', 'unknown']);
        assert.deepEqual(await s.peekLimits([a, b], T0 + 3), [0, 1]);
        assert.equal((await s.consumeLimits([a], T0 + 4)).allowed, true);
        await s.resetLimits([]);
        assert.deepEqual(await s.peekLimits([a, b], T0 + 5), [1, 1]);
        // Counts fall out of the window: a whole window plus a slot later nothing is counted.
        assert.deepEqual(await s.peekLimits([a, b], T0 + 10 * MIN + slotMsFor(10 * MIN) - 1), [1, 1]);
        assert.deepEqual(await s.peekLimits([a, b], T0 + 10 * MIN + slotMsFor(10 * MIN)), [0, 0]);
      });
    });

    describe('one-time tokens', () => {
      it('useOnce: first true, then false, true again after ttl', async () => {
        const s = await fresh();
        assert.equal(await s.useOnce('tok:a', MIN, T0), true);
        assert.equal(await s.useOnce('tok:a', MIN, T0 + 1), false);
        assert.equal(await s.useOnce('tok:a', MIN, T0 + MIN - 1), false);
        assert.equal(await s.useOnce('tok:b', MIN, T0 + 1), true);
        assert.equal(await s.useOnce('tok:a', MIN, T0 + MIN), true);
        assert.equal(await s.useOnce('tok:a', MIN, T0 + MIN + 1), false);
      });

      it('20 parallel useOnce on one key -> exactly one true', async () => {
        const s = await fresh();
        const rs = await Promise.all(Array.from({ length: 20 }, () => s.useOnce('tok:race', MIN, T0)));
        assert.equal(rs.filter(Boolean).length, 1);
      });
    });

    describe('API keys', () => {
      it('put, get, list, revoke, touch', async () => {
        const s = await fresh();
        const k1 = { id: 'key1', name: 'ci', secretHash: 'ab'.repeat(32), scopes: ['verify' as const], createdAt: T0, expiresAt: null, revokedAt: null, lastUsedAt: null };
        const k2 = { id: 'key2', name: null, secretHash: 'cd'.repeat(32), scopes: ['verify' as const, 'admin' as const], createdAt: T0 + 1, expiresAt: T0 + 1000, revokedAt: null, lastUsedAt: null };
        const k3 = { ...k1, id: 'key3', scopes: [], createdAt: T0 + 2 };
        await s.putApiKey(k2);
        await s.putApiKey(k1);
        await s.putApiKey(k3);
        assert.deepEqual(await s.getApiKey('key1'), k1);
        assert.deepEqual(await s.getApiKey('key2'), k2);
        assert.deepEqual(await s.getApiKey('key3'), k3);
        assert.equal(await s.getApiKey('nope'), null);
        assert.deepEqual(await s.listApiKeys(), [k1, k2, k3]);

        await s.touchApiKey('key1', T0 + 50);
        await s.touchApiKey('nope', T0 + 50);
        assert.equal((await s.getApiKey('key1'))!.lastUsedAt, T0 + 50);

        assert.equal(await s.revokeApiKey('key1', T0 + 100), true);
        assert.equal(await s.revokeApiKey('key1', T0 + 200), false);
        assert.equal(await s.revokeApiKey('nope', T0 + 200), false);
        assert.equal((await s.getApiKey('key1'))!.revokedAt, T0 + 100);

        // put overwrites
        await s.putApiKey({ ...k2, name: 'renamed' });
        assert.equal((await s.getApiKey('key2'))!.name, 'renamed');
        assert.equal((await s.listApiKeys()).length, 3);
      });
    });

    describe('lists', () => {
      it('CRUD, filters, expiry and a version that increases on every change', async () => {
        const s = await fresh();
        const v0 = await s.listsVersion();
        const e = (id: string, over: Partial<ListEntry>): ListEntry => ({ id, list: 'block', kind: 'number', value: '+15550001', note: null, createdAt: T0, expiresAt: null, ...over });
        const entries = [
          e('l1', {}),
          e('l2', { kind: 'prefix', value: '+6281', note: 'pumping', createdAt: T0 + 1 }),
          e('l3', { list: 'allow', kind: 'ip', value: '198.51.100.1', createdAt: T0 + 2, expiresAt: T0 + MIN }),
          e('l4', { list: 'allow', kind: 'cidr', value: '10.0.0.0/8', createdAt: T0 + 3 }),
        ];
        let prev = v0;
        for (const x of entries) {
          await s.putListEntry(x);
          const v = await s.listsVersion();
          assert.ok(v > prev);
          prev = v;
        }
        assert.deepEqual(await s.listEntries(T0), entries);
        assert.deepEqual(await s.listEntries(T0, { list: 'allow' }), [entries[2], entries[3]]);
        assert.deepEqual(await s.listEntries(T0, { kind: 'prefix' }), [entries[1]]);
        assert.deepEqual(await s.listEntries(T0, { list: 'block', kind: 'ip' }), []);
        assert.deepEqual(await s.listEntries(T0 + MIN, { list: 'allow' }), [entries[3]]);

        assert.equal(await s.removeListEntry('l1'), true);
        const afterRemove = await s.listsVersion();
        assert.ok(afterRemove > prev);
        assert.equal(await s.removeListEntry('l1'), false);
        assert.equal(await s.listsVersion(), afterRemove);
        // Update in place.
        await s.putListEntry({ ...entries[1]!, note: 'changed' });
        assert.ok((await s.listsVersion()) > afterRemove);
        assert.equal((await s.listEntries(T0, { kind: 'prefix' }))[0]!.note, 'changed');
        assert.equal((await s.listEntries(T0)).length, 3);
      });
    });

    describe('settings', () => {
      it('put, get, overwrite, delete, ttl and prefix listing', async () => {
        const s = await fresh();
        assert.equal(await s.getSetting('missing', T0), null);
        const policy = { version: 3, rules: [{ a: 1 }, { b: [true, null, 'x'] }], s: 'ü' };
        await s.putSetting('policy.current', policy, undefined, T0);
        assert.deepEqual(await s.getSetting('policy.current', T0), policy);
        await s.putSetting('policy.current', { version: 4 }, undefined, T0);
        assert.deepEqual(await s.getSetting('policy.current', T0), { version: 4 });
        await s.putSetting('pause.sms', true, undefined, T0);
        await s.putSetting('quarantine:+6281', { until: 1 }, MIN, T0);
        await s.putSetting('quarantine:+6282', 'x', 2 * MIN, T0);
        await s.putSetting('quarantine:+6283', 0, undefined, T0);
        assert.equal(await s.getSetting('pause.sms', T0 + 10 * MIN), true);
        assert.equal(await s.getSetting('quarantine:+6283', T0), 0);

        const sorted = (xs: { key: string; value: unknown }[]) => [...xs].sort((a, b) => (a.key < b.key ? -1 : 1));
        assert.deepEqual(sorted(await s.listSettings('quarantine:', T0)), [
          { key: 'quarantine:+6281', value: { until: 1 } },
          { key: 'quarantine:+6282', value: 'x' },
          { key: 'quarantine:+6283', value: 0 },
        ]);
        assert.deepEqual(await s.listSettings('nothing', T0), []);
        assert.equal((await s.listSettings('', T0)).length, 5);
        // Time only moves forward from here (stores may drop expired rows when they see them).
        assert.deepEqual(await s.getSetting('quarantine:+6281', T0 + MIN - 1), { until: 1 });
        assert.deepEqual(sorted(await s.listSettings('quarantine:', T0 + MIN)), [
          { key: 'quarantine:+6282', value: 'x' },
          { key: 'quarantine:+6283', value: 0 },
        ]);
        assert.equal(await s.getSetting('quarantine:+6281', T0 + MIN), null);
        // A ttl'd setting rewritten without ttl becomes permanent.
        await s.putSetting('quarantine:+6282', 'y', undefined, T0);
        assert.equal(await s.getSetting('quarantine:+6282', T0 + 99 * MIN), 'y');
        await s.deleteSetting('pause.sms');
        await s.deleteSetting('never-existed');
        assert.equal(await s.getSetting('pause.sms', T0), null);
        // Keys with pattern characters are literal.
        await s.putSetting('a*b?[c]%_', 1, undefined, T0);
        await s.putSetting('a-other', 2, undefined, T0);
        assert.deepEqual(await s.listSettings('a*b', T0), [{ key: 'a*b?[c]%_', value: 1 }]);
        assert.deepEqual(await s.listSettings('a%', T0), []);
      });
    });

    describe('journal', () => {
      it('put, overwrite, delete, list by time (oldest first, bounded), and the event that forgets its entry', async () => {
        const s = await fresh();
        assert.deepEqual(await s.listJournal(T0, 10), []);
        await s.putJournal('send:b', T0 + 2000, { kind: 'send', n: 2, s: 'ü' });
        await s.putJournal('send:a', T0 + 1000, { kind: 'send', n: 1 });
        await s.putJournal('approval:c', T0 + 1000, { kind: 'approval' });
        await s.putJournal('send:d', T0 + 9000, { kind: 'send', n: 4 });
        // Equal times in key order; only entries at or before `before`; `limit` from the oldest.
        assert.deepEqual(await s.listJournal(T0 + 2000, 10), [
          { key: 'approval:c', at: T0 + 1000, value: { kind: 'approval' } },
          { key: 'send:a', at: T0 + 1000, value: { kind: 'send', n: 1 } },
          { key: 'send:b', at: T0 + 2000, value: { kind: 'send', n: 2, s: 'ü' } },
        ]);
        assert.deepEqual((await s.listJournal(T0 + 9000, 2)).map((x) => x.key), ['approval:c', 'send:a']);
        assert.deepEqual(await s.listJournal(T0 + 9000, 0), []);
        // A key written again replaces its entry, time included.
        await s.putJournal('send:a', T0 + 5000, { kind: 'send', n: 11 });
        assert.deepEqual((await s.listJournal(T0 + 9000, 10)).map((x) => [x.key, x.at]), [
          ['approval:c', T0 + 1000], ['send:b', T0 + 2000], ['send:a', T0 + 5000], ['send:d', T0 + 9000],
        ]);
        await s.deleteJournal('approval:c');
        await s.deleteJournal('never-existed');
        // An event append deletes the entry it names, and only that one; without events it still deletes.
        await s.appendEvents([{ id: 'ej1', at: T0 + 3000, type: 'send', to: '+15550001', decision: 'allow', reasons: [] }], 'send:b');
        assert.deepEqual((await s.listJournal(T0 + 9000, 10)).map((x) => x.key), ['send:a', 'send:d']);
        assert.deepEqual((await s.queryEvents({ limit: 10 })).map((e) => e.id), ['ej1']);
        await s.appendEvents([], 'send:a');
        assert.deepEqual((await s.listJournal(T0 + 9000, 10)).map((x) => x.key), ['send:d']);
        assert.equal((await s.queryEvents({ limit: 10 })).length, 1);
        // The journal is not a setting.
        assert.deepEqual(await s.listSettings('', T0), []);
      });

      it('a step that stores a code writes its journal entry only when it happens, in the same step', async () => {
        const s = await fresh();
        const entry = (key: string, n: number) => ({ key, at: T0 + n, value: { kind: 'send', n, s: 'ü' } });
        // consumeLimitsAndCreate: written with the verification; a refused step writes neither.
        const v1 = makeVerification();
        assert.equal((await s.consumeLimitsAndCreate([lim('jw:a', 1)], v1, T0, entry('send:1', 1))).allowed, true);
        const v2 = makeVerification();
        assert.equal((await s.consumeLimitsAndCreate([lim('jw:a', 1), lim('jw:b', 5)], v2, T0 + 1, entry('send:2', 2))).allowed, false);
        assert.equal(await s.getVerification(v2.id), null);
        // Without specs it still creates and writes (PostgreSQL takes another path for it).
        const v3 = makeVerification();
        assert.equal((await s.consumeLimitsAndCreate([], v3, T0 + 3, entry('send:3', 3))).allowed, true);
        // addCode: written with the code; a verification that is not pending (or gone) takes neither.
        const code = { kid: 'k1', hash: 'h2', expiresAt: T0 + 20 * MIN };
        const added = await s.addCode(v1.id, code, { now: T0 + 4, resendAfter: T0 + 60_000, keep: 3, journal: entry('send:4', 4) });
        assert.equal(added?.sends, 2);
        assert.equal(await s.transition(v3.id, 'canceled', T0 + 5), true);
        assert.equal(await s.addCode(v3.id, code, { now: T0 + 6, resendAfter: T0 + 60_000, keep: 3, journal: entry('send:6', 6) }), null);
        assert.equal(await s.addCode('vf_missing', code, { now: T0 + 7, resendAfter: T0 + 60_000, keep: 3, journal: entry('send:7', 7) }), null);
        assert.deepEqual(await s.listJournal(T0 + 9000, 10), [entry('send:1', 1), entry('send:3', 3), entry('send:4', 4)]);
        // Without an entry nothing is written (the memory store and replay pass none).
        const v5 = makeVerification();
        await s.consumeLimitsAndCreate([lim('jw:c', 1)], v5, T0 + 8);
        await s.addCode(v5.id, code, { now: T0 + 9, resendAfter: T0 + 60_000, keep: 3 });
        assert.equal((await s.listJournal(T0 + 9000, 10)).length, 3);
      });

      it('the transition to approved records the approving check (approvedBy), once', async () => {
        const s = await fresh();
        const v = makeVerification();
        await s.createVerification(v);
        assert.equal((await s.getVerification(v.id))?.approvedBy ?? null, null);
        assert.equal(await s.transition(v.id, 'approved', T0 + 1000, { approvedBy: 'ev_winner' }), true);
        assert.equal(await s.transition(v.id, 'approved', T0 + 1000, { approvedBy: 'ev_loser' }), false);
        const got = await s.getVerification(v.id);
        assert.equal(got?.status, 'approved');
        assert.equal(got?.approvedBy, 'ev_winner');
      });
    });

    describe('events', () => {
      const ev = (i: number, over: Partial<AuditEvent> = {}): AuditEvent => ({
        id: `e${i}`,
        at: T0 + i * 1000,
        type: i % 2 ? 'verification.created' : 'check.failed',
        to: `+1555000${i % 3}`,
        prefix: `+1555`,
        country: 'US',
        ip: `192.0.2.${i % 4}`,
        deviceId: i % 5 === 0 ? 'dev-A' : null,
        decision: i % 3 === 0 ? 'block' : 'allow',
        reasons: i % 3 === 0 ? ['rate_limited.number', `r${i % 2}`] : [],
        data: { i, nested: { ok: true } },
        ...over,
      });

      it('append assigns increasing seq; query supports every filter', async () => {
        const s = await fresh();
        const all = Array.from({ length: 30 }, (_, i) => ev(i));
        await s.appendEvents(all.slice(0, 10));
        await s.appendEvents([]);
        await s.appendEvents(all.slice(10));
        const desc = await s.queryEvents({ limit: 100 });
        assert.equal(desc.length, 30);
        assert.deepEqual(desc.map((e) => e.id), all.map((e) => e.id).reverse());
        const seqs = desc.map((e) => e.seq!).reverse();
        for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!);
        const { seq: _s, ...first } = desc[29]!;
        assert.deepEqual(first, all[0]);

        const ids = async (q: Parameters<Store['queryEvents']>[0]) => (await s.queryEvents(q)).map((e) => e.id);
        const expect = (f: (e: AuditEvent) => boolean) => all.filter(f).map((e) => e.id).reverse();
        assert.deepEqual(await ids({ limit: 100, type: 'check.failed' }), expect((e) => e.type === 'check.failed'));
        assert.deepEqual(await ids({ limit: 100, number: '+15550001' }), expect((e) => e.to === '+15550001'));
        assert.deepEqual(await ids({ limit: 100, prefix: '+1555' }), expect(() => true));
        assert.deepEqual(await ids({ limit: 100, prefix: '+1556' }), []);
        // A prefix of any length, down to a block inside the range; never the number's own longer neighbours.
        assert.deepEqual(await ids({ limit: 100, prefix: '+1' }), expect(() => true));
        assert.deepEqual(await ids({ limit: 100, prefix: '+1555000' }), expect(() => true));
        assert.deepEqual(await ids({ limit: 100, prefix: '+15550002' }), expect((e) => e.to === '+15550002'));
        assert.deepEqual(await ids({ limit: 100, prefix: '+155500021' }), []);
        assert.deepEqual(await ids({ limit: 100, ip: '192.0.2.3' }), expect((e) => e.ip === '192.0.2.3'));
        assert.deepEqual(await ids({ limit: 100, deviceId: 'dev-A' }), expect((e) => e.deviceId === 'dev-A'));
        assert.deepEqual(await ids({ limit: 100, decision: 'block' }), expect((e) => e.decision === 'block'));
        assert.deepEqual(await ids({ limit: 100, reason: 'rate_limited.number' }), expect((e) => e.reasons!.includes('rate_limited.number')));
        assert.deepEqual(await ids({ limit: 100, reason: 'r1' }), expect((e) => e.reasons!.includes('r1')));
        assert.deepEqual(await ids({ limit: 100, reason: 'rate_limited' }), []);
        assert.deepEqual(await ids({ limit: 100, from: T0 + 5000, to: T0 + 9000 }), expect((e) => e.at >= T0 + 5000 && e.at < T0 + 9000));
        assert.deepEqual(
          await ids({ limit: 100, decision: 'block', reason: 'r0', from: T0 + 3000 }),
          expect((e) => e.decision === 'block' && e.reasons!.includes('r0') && e.at >= T0 + 3000),
        );
        assert.deepEqual(await ids({ limit: 3, type: 'check.failed', order: 'asc' }), ['e0', 'e2', 'e4']);
        assert.deepEqual(await ids({ limit: 0 }), []);
        // A range's own event (a quarantine) has a prefix and no destination: a prefix query finds it too.
        await s.appendEvents([{ id: 'q1', at: T0 + 31_000, type: 'quarantine.start', to: null, prefix: '+1999', reasons: ['conversion_drop'] }]);
        assert.deepEqual(await ids({ limit: 100, prefix: '+199' }), ['q1']);
        assert.deepEqual(await ids({ limit: 100, prefix: '+1999' }), ['q1']);
        assert.deepEqual(await ids({ limit: 100, prefix: '+19990' }), []);
        // An email address may start with + and digits: never a prefix's destination.
        await s.appendEvents([{ id: 'm1', at: T0 + 32_000, type: 'send', to: '+1555000@mail.example', prefix: null, reasons: [] }]);
        assert.deepEqual(await ids({ limit: 100, prefix: '+1555' }), expect(() => true));
        assert.deepEqual(await ids({ limit: 100, prefix: '+155' }), expect(() => true));
      });

      it('events without optional fields round-trip and match only absence-free filters', async () => {
        const s = await fresh();
        const bare: AuditEvent = { id: 'bare', at: T0, type: 'x' };
        await s.appendEvents([bare]);
        const [got] = await s.queryEvents({ limit: 10 });
        assert.equal(got!.id, 'bare');
        assert.equal(got!.type, 'x');
        assert.equal(got!.at, T0);
        assert.ok(typeof got!.seq === 'number');
        assert.deepEqual(await s.queryEvents({ limit: 10, ip: '1.2.3.4' }), []);
        assert.deepEqual(await s.queryEvents({ limit: 10, reason: 'x' }), []);
      });

      it('cursor paging desc (before) and asc (after) visits every event once', async () => {
        const s = await fresh();
        const all = Array.from({ length: 23 }, (_, i) => ev(i));
        await s.appendEvents(all);
        const desc: string[] = [];
        let before: number | undefined;
        for (;;) {
          const page = await s.queryEvents(before === undefined ? { limit: 5 } : { limit: 5, before });
          if (page.length === 0) break;
          desc.push(...page.map((e) => e.id));
          before = page[page.length - 1]!.seq;
        }
        assert.deepEqual(desc, all.map((e) => e.id).reverse());

        const asc: string[] = [];
        let after: number | undefined;
        for (;;) {
          const page = await s.queryEvents(after === undefined ? { limit: 4, order: 'asc' } : { limit: 4, order: 'asc', after });
          if (page.length === 0) break;
          asc.push(...page.map((e) => e.id));
          after = page[page.length - 1]!.seq;
        }
        assert.deepEqual(asc, all.map((e) => e.id));

        // Filtered paging.
        const blocks: string[] = [];
        before = undefined;
        for (;;) {
          const page = await s.queryEvents({ limit: 2, decision: 'block', ...(before === undefined ? {} : { before }) });
          if (page.length === 0) break;
          blocks.push(...page.map((e) => e.id));
          before = page[page.length - 1]!.seq;
        }
        assert.deepEqual(blocks, all.filter((e) => e.decision === 'block').map((e) => e.id).reverse());
        // Both cursors together bound a range.
        const mid = (await s.queryEvents({ limit: 100, order: 'asc' })).map((e) => e.seq!);
        const range = await s.queryEvents({ limit: 100, order: 'asc', after: mid[4]!, before: mid[9]! });
        assert.deepEqual(range.map((e) => e.id), ['e5', 'e6', 'e7', 'e8']);
      });

      it('purgeEvents removes events older than `before` and returns the count', async () => {
        const s = await fresh();
        await s.appendEvents(Array.from({ length: 12 }, (_, i) => ev(i)));
        assert.equal(await s.purgeEvents(T0), 0);
        assert.equal(await s.purgeEvents(T0 + 5000), 5);
        const left = await s.queryEvents({ limit: 100, order: 'asc' });
        assert.deepEqual(left.map((e) => e.id), ['e5', 'e6', 'e7', 'e8', 'e9', 'e10', 'e11']);
        assert.equal(await s.purgeEvents(T0 + 5000), 0);
        // Appending after a purge keeps seq increasing.
        await s.appendEvents([ev(50, { at: T0 + 50_000 })]);
        const newest = await s.queryEvents({ limit: 1 });
        assert.equal(newest[0]!.id, 'e50');
        assert.ok(newest[0]!.seq! > left[left.length - 1]!.seq!);
        assert.deepEqual(await s.queryEvents({ limit: 100, reason: 'r1', before: newest[0]!.seq! }), (await s.queryEvents({ limit: 100, reason: 'r1' })).filter((e) => e.id !== 'e50'));
      });
    });

    if (opts.makePair) {
      const makePair = opts.makePair;
      describe('two instances on two connections', () => {
        it('100 consumeLimits split across two clients with limit 3 -> exactly 3', async () => {
          const [a, b] = await makePair();
          open.push(a, b);
          const spec = [lim('shared', 3), lim('other', 50)];
          const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).consumeLimits(spec, T0 + i)));
          assert.equal(rs.filter((r) => r.allowed).length, 3);
          assert.deepEqual(await a.peekLimits(spec, T0 + 100), [3, 3]);
          assert.deepEqual(await b.peekLimits(spec, T0 + 100), [3, 3]);
        });

        it('consumeLimitsAndCreate is exact across clients', async () => {
          const [a, b] = await makePair();
          open.push(a, b);
          const to = '+15550001004';
          const vs = Array.from({ length: 40 }, (_, i) => makeVerification({ to, createdAt: T0 + i }));
          const rs = await Promise.all(vs.map((v, i) => (i % 2 ? a : b).consumeLimitsAndCreate([lim('pair-create', 2)], v, T0 + i)));
          assert.equal(rs.filter((r) => r.allowed).length, 2);
          const found = await Promise.all(vs.map((v) => a.getVerification(v.id)));
          assert.equal(found.filter((x) => x !== null).length, 2);
        });

        it('tally counts are exact across clients', async () => {
          const [a, b] = await makePair();
          open.push(a, b);
          const t: TallySpec = { key: 'tally:pair', windowsMs: [MIN, 60 * MIN], cost: 1 };
          const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).tally(lim(`tally-pair-gate:${i % 10}`, 1, 60 * MIN), [t], T0 + i)));
          assert.equal(rs.filter((r) => r.counted).length, 10);
          for (const s of [a, b]) assert.deepEqual((await s.tally(null, [{ ...t, cost: 0 }], T0 + 100)).counts, [[10, 10]]);
          await a.tally(null, [t], T0 + 200);
          assert.deepEqual((await b.tally(null, [{ ...t, cost: 0 }], T0 + 300)).counts, [[11, 11]]);
        });

        it('reserveAttempt, transition and useOnce are exact across clients', async () => {
          const [a, b] = await makePair();
          open.push(a, b);
          const v = makeVerification({ maxAttempts: 4 });
          await a.createVerification(v);
          assert.deepEqual(await b.getVerification(v.id), v);
          const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).reserveAttempt(v.id, T0 + i)));
          assert.equal(rs.filter((r) => r.ok).length, 4);
          const w = makeVerification();
          await b.createVerification(w);
          const ts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).transition(w.id, 'approved', T0 + i)));
          assert.equal(ts.filter(Boolean).length, 1);
          const us = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).useOnce('pair-tok', MIN, T0)));
          assert.equal(us.filter(Boolean).length, 1);
        });
      });
    }
  });
}
