/**
 * The SMS-pumping defense on the real HTTP server (SQLite store, webhook sender to a fake receiver):
 * a campaign is contained (deliveries counted at the receiver), quarantines are visible, liftable and
 * audited, and a number that verified before keeps getting codes throughout.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const UA = 'Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36';
let ipSeq = 0;
/** Every request from another carrier-NAT address, like real users (and residential proxies). */
const client = () => ({ ip: `36.72.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`, userAgent: UA, acceptLanguage: 'id-ID', elapsedMs: 6000 });
const PRE = '+62812';
const num = (i: number) => `${PRE}${String(10_000_000 + i * 7919).padStart(8, '0')}`;

describe('SMS-pumping defense over HTTP', () => {
  let t: TestApp;
  const verified: string[] = [];
  const delivered = (numbers: Set<string>) => t.receiver.requests.filter((r) => numbers.has(String((r.json as { to?: string })?.to))).length;
  const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });

  before(async () => {
    t = await startTestApp();
    // These requests carry no proof-of-work, so dynamic throttling (which challenges a prefix whose volume
    // jumps) would answer the campaign before the pumping layer could be observed: switch it off here.
    const p = await t.request('PUT', '/v1/admin/policy', { throttle: { enabled: false } }, { key: t.adminKey });
    assert.equal(p.status, 200, p.text);
    // Two hours of real users on the prefix: ~1 a minute, 80 % type their code about 40 s later.
    for (let i = 0; i < 120; i++) {
      const to = num(i);
      const s = await t.request('POST', '/v1/verifications', { to, client: client() });
      assert.equal(s.status, 201, s.text);
      t.clock.advance(40_000);
      if (i % 5 !== 0) {
        const c = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: t.lastCode(to) });
        assert.equal(c.body.status, 'approved');
        verified.push(to);
      }
      t.clock.advance(20_000);
    }
  });
  after(async () => t.close());

  it('contains a campaign within 50 messages while a number that verified before still gets its code', async (tc) => {
    const campaign = new Set<string>();
    let quarantinedAt = -1;
    for (let i = 0; i < 150; i++) {
      const to = `${PRE}${String(50_000_000 + i * 104_729).padStart(8, '0')}`;
      campaign.add(to);
      const res = await t.request('POST', '/v1/verifications', { to, client: client() });
      if (res.status === 403 && quarantinedAt < 0) {
        assert.equal(res.body.error.code, 'request_blocked');
        assert.ok(res.body.error.reasons.includes('quarantine.block'), res.text);
        quarantinedAt = i;
      }
      t.clock.advance(6_000); // 10 a minute, never typing a code
    }
    const sent = delivered(campaign);
    tc.diagnostic(`campaign messages delivered: ${sent} of ${campaign.size}; first refused at request ${quarantinedAt + 1}`);
    assert.ok(quarantinedAt >= 0, 'the campaign was quarantined');
    assert.ok(sent <= 50, `${sent} campaign messages reached the sender`);

    const before = t.receiver.requests.length;
    const back = await t.request('POST', '/v1/verifications', { to: verified[3], client: client() });
    assert.equal(back.status, 201, back.text);
    assert.equal(t.receiver.requests.length, before + 1, 'the returning user got a message');
    const ok = await t.request('POST', '/v1/verifications/check', { id: back.body.id, code: t.lastCode(verified[3]!) });
    assert.equal(ok.body.status, 'approved');

    const list = await admin('GET', '/v1/admin/quarantines');
    assert.equal(list.status, 200);
    const q = list.body.quarantines.find((x: any) => x.scope === `prefix:${PRE}`);
    assert.ok(q, list.text);
    assert.equal(q.mode, 'block');
    assert.ok(['conversion_drop', 'dense_numbers', 'sequential_numbers'].includes(q.reason), q.reason);

    const ev = await admin('GET', `/v1/admin/events?type=quarantine.start&prefix=${encodeURIComponent(PRE)}`);
    assert.equal(ev.body.events.length, 1);
    const data = ev.body.events[0].data;
    assert.equal(data.scope, `prefix:${PRE}`);
    assert.ok(data.figures && typeof data.figures === 'object', 'the event carries the figures');
  });

  it('an admin lifts the quarantine: new numbers are served again, and the lift is audited', async () => {
    const denied = await admin('DELETE', `/v1/admin/quarantines/${encodeURIComponent('prefix:+62899')}`);
    assert.equal(denied.status, 404);
    const needsAdmin = await t.request('DELETE', `/v1/admin/quarantines/${encodeURIComponent(`prefix:${PRE}`)}`);
    assert.equal(needsAdmin.status, 403);

    // A country no number has would quarantine nothing: refused, as pauses and lists refuse it.
    for (const scope of ['country:UK', 'country:ZZ']) {
      const r = await admin('POST', '/v1/admin/quarantines', { scope, minutes: 5 });
      assert.equal(r.status, 400, `${scope}: ${r.text}`);
      assert.match(r.body.error.message, /no phone number has this region/);
    }
    // A range of another length than a send's own prefix would be listed and never applied: refused, naming the form.
    for (const scope of ['prefix:+6285', 'prefix:+628571', 'prefix:+99']) {
      const r = await admin('POST', '/v1/admin/quarantines', { scope, minutes: 5 });
      assert.equal(r.status, 400, `${scope}: ${r.text}`);
      assert.match(r.body.error.message, /a calling code and 3 more digits .*e\.g\. \+62812.*pause it/);
    }

    const lifted = await admin('DELETE', `/v1/admin/quarantines/${encodeURIComponent(`prefix:${PRE}`)}`);
    assert.equal(lifted.status, 200, lifted.text);
    // Says how long the detector leaves the scope alone (pumping.liftGraceMinutes, 60).
    assert.deepEqual(lifted.body, { lifted: true, graceUntil: new Date(t.clock() + 60 * 60_000).toISOString() });
    t.clock.advance(2_000); // past the shared-state refresh
    const fresh = await t.request('POST', '/v1/verifications', { to: `${PRE}77777777`, client: client() });
    assert.equal(fresh.status, 201, fresh.text);
    const end = await admin('GET', '/v1/admin/events?type=quarantine.end');
    assert.equal(end.body.events.length, 1);
    assert.deepEqual(end.body.events[0].reasons, ['lifted']);
    assert.equal((await admin('GET', '/v1/admin/quarantines')).body.quarantines.length, 0);
  });

  it('a manual quarantine of a country challenges its unverified numbers and ends by itself', async () => {
    const bad = await admin('POST', '/v1/admin/quarantines', { scope: 'country:Indonesia', minutes: 5 });
    assert.equal(bad.status, 400);
    const res = await admin('POST', '/v1/admin/quarantines', { scope: 'country:ID', mode: 'challenge', minutes: 5, reason: 'drill' });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.mode, 'challenge');
    t.clock.advance(2_000);
    const ch = await t.request('POST', '/v1/verifications', { to: `${PRE}66666666`, client: client() });
    assert.equal(ch.status, 403, ch.text);
    assert.equal(ch.body.error.code, 'challenge_required');
    assert.ok(ch.body.error.reasons.includes('quarantine.challenge'));
    const known = await t.request('POST', '/v1/verifications', { to: verified[4], client: client() });
    assert.equal(known.status, 201, 'verified numbers are exempt');

    t.clock.advance(6 * 60_000);
    const after = await t.request('POST', '/v1/verifications', { to: `${PRE}55555555`, client: client() });
    assert.equal(after.status, 201, after.text);
    const end = await admin('GET', '/v1/admin/events?type=quarantine.end&reason=expired');
    assert.equal(end.body.events.length, 1, end.text);
    assert.equal(end.body.events[0].data.scope, 'country:ID');
  });

  it('extending a quarantine in force keeps its mode and reason unless given (a block stayed no block)', async () => {
    const first = await admin('POST', '/v1/admin/quarantines', { scope: 'country:NG', mode: 'block', minutes: 5, reason: 'drill' });
    assert.equal(first.status, 201, first.text);
    const longer = await admin('POST', '/v1/admin/quarantines', { scope: 'country:NG', minutes: 60 });
    assert.equal(longer.status, 201, longer.text);
    assert.deepEqual([longer.body.mode, longer.body.reason, longer.body.remainingSeconds], ['block', 'drill', 3600]);
    const other = await admin('POST', '/v1/admin/quarantines', { scope: 'country:NG', mode: 'challenge', minutes: 60, reason: 'softer' });
    assert.deepEqual([other.body.mode, other.body.reason], ['challenge', 'softer']);
    assert.equal((await admin('DELETE', `/v1/admin/quarantines/${encodeURIComponent('country:NG')}`)).status, 200);
  });
});

describe('a quarantine of a prefix of another length, stored before such quarantines were refused', () => {
  it('is listed as not in effect, and start-up warns about it', async () => {
    const { MemoryStore } = await import('../../src/store/memory.ts');
    const { pino } = await import('pino');
    const store = new MemoryStore();
    const now = Date.parse('2026-11-23T08:00:00.000Z');
    const q = (scope: string) => ({ scope, mode: 'block' as const, reason: 'manual', since: now - 60_000, until: now + 3_600_000 });
    await store.putSetting('quarantine:prefix:+6285', q('prefix:+6285'), 3_600_000, now);
    await store.putSetting('quarantine:prefix:+62812', q('prefix:+62812'), 3_600_000, now);
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
    const t = await startTestApp({ store, log });
    try {
      const listed = (await t.request('GET', '/v1/admin/quarantines', undefined, { key: t.adminKey })).body.quarantines as { scope: string; inEffect: boolean }[];
      assert.deepEqual(listed.map((x) => [x.scope, x.inEffect]).sort(), [['prefix:+62812', true], ['prefix:+6285', false]]);
      // The dashboard's view of the state says so too.
      const state = (await t.request('GET', '/v1/admin/monitoring/state', undefined, { key: t.adminKey })).body.quarantines as { scope: string; inEffect: boolean }[];
      assert.deepEqual(state.map((x) => [x.scope, x.inEffect]).sort(), [['prefix:+62812', true], ['prefix:+6285', false]]);
      const warned = lines.map((l) => JSON.parse(l) as { msg: string; scopes?: string[] }).find((l) => l.msg.startsWith('quarantines not in effect'));
      assert.deepEqual(warned?.scopes, ['prefix:+6285'], lines.join(''));
    } finally {
      await t.close();
    }
  });
});
