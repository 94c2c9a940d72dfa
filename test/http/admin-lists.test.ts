/**
 * Block/allow lists through the admin API, and their effect on sends over HTTP.
 *
 * Client IPs come from the documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32):
 * they have no country, so no country rule interferes with what a list entry does. Every send uses a
 * fresh number and IP, because refused sends count towards escalation of their number and IP.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePhone } from '../../src/signals/phone.ts';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';

const OPERATOR_PREFIXES = ['811', '812', '813', '821', '822', '852', '853', '857', '858', '877', '878', '896'];
let seq = 0;
/**
 * A fresh Indonesian mobile number per call, spread over operators and number blocks as real users' numbers
 * are: consecutive numbers in one range are what SMS pumping looks like, and that layer would quarantine them.
 */
function nextNumber(): string {
  const i = seq++;
  const rest = String((i * 7_919_993 + 1_234_567) % 100_000_000).padStart(8, '0');
  const e164 = `+62${OPERATOR_PREFIXES[i % OPERATOR_PREFIXES.length]}${rest}`;
  const p = normalizePhone(e164);
  assert.ok(p.ok && p.e164 === e164 && p.type === 'MOBILE', `${e164} is a valid mobile number`);
  return e164;
}
const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

describe('admin lists API', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
  const send = (to: string, ip: string) => t.request('POST', '/v1/verifications', { to, client: client(ip) });

  /** A send that must be refused by the lists: 403 request_blocked with reason list.block, nothing delivered. */
  async function assertBlocked(to: string, ip: string) {
    const before = t.receiver.requests.length;
    const r = await send(to, ip);
    assert.equal(r.status, 403, `${to} from ${ip}: ${r.text}`);
    assert.equal(r.body.error.code, 'request_blocked');
    assert.deepEqual(r.body.error.reasons, ['list.block']);
    assert.equal(t.receiver.requests.length, before, 'nothing delivered');
  }

  /** A send that must go through; the person then types the code, as real users do. */
  async function assertSent(to: string, ip: string) {
    const r = await send(to, ip);
    assert.equal(r.status, 201, `${to} from ${ip}: ${r.text}`);
    const code = t.lastCode(to);
    assert.match(code ?? '', /^\d{6}$/);
    const check = await t.request('POST', '/v1/verifications/check', { id: r.body.id, code });
    assert.deepEqual(outcome(check.body), { status: 'approved' });
  }

  it('adds (normalised), lists with filters and removes entries', async () => {
    const a = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+62 812-3456-7000', note: 'ring A' });
    assert.equal(a.status, 201, a.text);
    assert.match(a.body.id, /^le_/);
    assert.equal(a.body.value, '+6281234567000');
    assert.equal(a.body.note, 'ring A');
    assert.equal(a.body.expiresAt, null);
    const b = await admin('POST', '/v1/admin/lists', { list: 'allow', kind: 'cidr', value: '2001:DB8:FF::/48', ttlSeconds: 3600 });
    assert.equal(b.status, 201, b.text);
    assert.equal(b.body.value, '2001:db8:ff::/48');
    assert.equal(Date.parse(b.body.expiresAt), t.clock() + 3_600_000);

    const all = await admin('GET', '/v1/admin/lists');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.entries.map((e: any) => e.id).sort(), [a.body.id, b.body.id].sort());
    const allows = await admin('GET', '/v1/admin/lists?list=allow');
    assert.deepEqual(allows.body.entries.map((e: any) => e.id), [b.body.id]);
    const numbers = await admin('GET', '/v1/admin/lists?kind=number');
    assert.deepEqual(numbers.body.entries.map((e: any) => e.id), [a.body.id]);

    for (const id of [a.body.id, b.body.id]) {
      const del = await admin('DELETE', `/v1/admin/lists/${id}`);
      assert.equal(del.status, 200, del.text);
      assert.deepEqual(del.body, { removed: true });
    }
    const gone = await admin('DELETE', `/v1/admin/lists/${a.body.id}`);
    assert.equal(gone.status, 404);
    assert.deepEqual((await admin('GET', '/v1/admin/lists')).body.entries, []);

    const events = await t.ctx.store.queryEvents({ type: 'list.add', limit: 10 });
    assert.equal(events.length, 2);
  });

  it('a value already in force in that list is not added again: 200 with the entry in force, which one DELETE removes', async () => {
    const first = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281234567001', note: 'first', ttlSeconds: 3600 });
    assert.equal(first.status, 201, first.text);
    // The same number written differently, as a retry of a POST that timed out might be.
    const again = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+62 812-3456-7001', note: 'retry', ttlSeconds: 3600 });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, first.body, 'the entry in force, unchanged');
    // The other list is another entry.
    const allow = await admin('POST', '/v1/admin/lists', { list: 'allow', kind: 'number', value: '+6281234567001' });
    assert.equal(allow.status, 201, allow.text);
    const adds = (await t.ctx.store.queryEvents({ type: 'list.add', limit: 100 })).filter((e) => (e.data?.entry as { value?: string })?.value === '+6281234567001');
    assert.equal(adds.length, 2, 'the retry recorded no addition');
    assert.equal((await admin('DELETE', `/v1/admin/lists/${first.body.id}`)).status, 200);
    assert.equal((await admin('DELETE', `/v1/admin/lists/${allow.body.id}`)).status, 200);
    assert.deepEqual((await admin('GET', '/v1/admin/lists')).body.entries, [], 'nothing left behind');
    // A permanent block asked for over a temporary one extends it: it does not lapse with the temporary one.
    const temp = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281234567002', note: 'temp', ttlSeconds: 60 });
    assert.equal(temp.status, 201, temp.text);
    const shorter = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281234567002', ttlSeconds: 30 });
    assert.deepEqual(shorter.body, temp.body, 'a shorter request changes nothing');
    const forever = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281234567002' });
    assert.equal(forever.status, 200, forever.text);
    assert.deepEqual({ ...forever.body, expiresAt: temp.body.expiresAt }, temp.body, 'the same entry, its note kept');
    assert.equal(forever.body.expiresAt, null);
    t.clock.advance(120_000);
    assert.deepEqual((await admin('GET', '/v1/admin/lists?kind=number')).body.entries.map((x: any) => x.id), [temp.body.id], 'still blocked');
    assert.equal((await admin('DELETE', `/v1/admin/lists/${temp.body.id}`)).status, 200);
    // Once expired, the value can be listed anew.
    const later = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '198.51.100.77', ttlSeconds: 60 });
    t.clock.advance(61_000);
    const renewed = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '198.51.100.77' });
    assert.equal(renewed.status, 201, renewed.text);
    assert.notEqual(renewed.body.id, later.body.id);
    assert.equal((await admin('DELETE', `/v1/admin/lists/${renewed.body.id}`)).status, 200);
  });

  it('refuses invalid entries with 400 and a message', async () => {
    const cases: [unknown, RegExp | null][] = [
      [{ list: 'block', kind: 'number', value: 'not a number' }, /not a valid phone number/],
      [{ list: 'block', kind: 'cidr', value: '10.0.0.0/33' }, /not a CIDR/],
      [{ list: 'block', kind: 'country', value: 'IDN' }, /two-letter country code/],
      // Two letters, but nothing has them: a block that would never match.
      [{ list: 'block', kind: 'country', value: 'UK' }, /the United Kingdom is GB/],
      [{ list: 'block', kind: 'country', value: 'ZZ' }, /no phone number or IP address has this country/],
      [{ list: 'block', kind: 'ip', value: '1.2.3.4', expiresAt: '2001-01-01T00:00:00Z' }, /in the future/],
      // Passes the date-time format, but no Date holds it: a format error, not "in the past".
      [{ list: 'block', kind: 'ip', value: '1.2.3.4', expiresAt: '2030-06-30T23:59:60Z' }, /expiresAt must be an ISO 8601 date-time/],
      // Epoch milliseconds are not accepted here (the schema asks for a date-time).
      [{ list: 'block', kind: 'ip', value: '1.2.3.4', expiresAt: '9999999999999999' }, /date-time/],
      [{ list: 'maybe', kind: 'ip', value: '1.2.3.4' }, null],
      [{ list: 'block', kind: 'asn', value: 'AS1' }, null],
      // Both ways of saying when it ends: one was silently ignored (a hostile-input review).
      [{ list: 'block', kind: 'ip', value: '1.2.3.4', expiresAt: '2099-01-01T00:00:00Z', ttlSeconds: 60 }, /not both/],
    ];
    for (const [body, message] of cases) {
      const r = await admin('POST', '/v1/admin/lists', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.text}`);
      assert.equal(r.body.error.code, 'invalid_request');
      if (message) assert.match(r.body.error.message, message);
    }
    assert.deepEqual((await admin('GET', '/v1/admin/lists')).body.entries, []);
  });

  it('a verify-scope key is refused (403), no key is unauthorized (401)', async () => {
    const created = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '192.0.2.250' });
    assert.equal(created.status, 201);
    const attempts = [
      ['GET', '/v1/admin/lists', undefined],
      ['POST', '/v1/admin/lists', { list: 'allow', kind: 'ip', value: '192.0.2.251' }],
      ['DELETE', `/v1/admin/lists/${created.body.id}`, undefined],
    ] as const;
    for (const [method, path, body] of attempts) {
      const verify = await t.request(method, path, body, { key: t.verifyKey });
      assert.equal(verify.status, 403, `${method} ${path}: ${verify.text}`);
      assert.equal(verify.body.error.code, 'forbidden');
      const none = await t.request(method, path, body, { key: null });
      assert.equal(none.status, 401, `${method} ${path}: ${none.text}`);
    }
    const still = await admin('GET', '/v1/admin/lists');
    assert.deepEqual(still.body.entries.map((e: any) => e.id), [created.body.id], 'nothing was added or removed');
    assert.equal((await admin('DELETE', `/v1/admin/lists/${created.body.id}`)).status, 200);
  });

  it('a blocked number gets 403 request_blocked (list.block) and an audit event; removing the entry unblocks it', async () => {
    const to = nextNumber();
    const entry = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: to });
    await assertBlocked(to, '192.0.2.10');
    const [event] = await t.ctx.store.queryEvents({ type: 'send', number: to, limit: 1 });
    assert.equal(event?.decision, 'block');
    assert.deepEqual(event?.reasons, ['list.block']);
    assert.deepEqual((event?.data as any).lists, [{ list: 'block', kind: 'number', value: to }]);

    await admin('DELETE', `/v1/admin/lists/${entry.body.id}`);
    await assertSent(to, '192.0.2.11');
  });

  it('an allow entry overrides block entries', async () => {
    const allowed = nextNumber();
    const other = nextNumber();
    const block = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'cidr', value: '198.51.100.0/24' });
    const allow = await admin('POST', '/v1/admin/lists', { list: 'allow', kind: 'number', value: allowed });
    await assertBlocked(other, '198.51.100.20');
    await assertSent(allowed, '198.51.100.21');
    const [event] = await t.ctx.store.queryEvents({ type: 'send', number: allowed, limit: 1 });
    assert.deepEqual(event?.reasons, ['list.allow']);
    for (const e of [block, allow]) await admin('DELETE', `/v1/admin/lists/${e.body.id}`);
  });

  it('entries expire by the injected clock (ttlSeconds and expiresAt)', async () => {
    const byTtl = nextNumber();
    const byDate = nextNumber();
    await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: byTtl, ttlSeconds: 60 });
    await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: byDate, expiresAt: new Date(t.clock() + 120_000).toISOString() });
    await assertBlocked(byTtl, '192.0.2.20');
    await assertBlocked(byDate, '192.0.2.21');

    t.clock.advance(61_000);
    await assertSent(byTtl, '192.0.2.22');
    await assertBlocked(byDate, '192.0.2.23');
    assert.deepEqual((await admin('GET', '/v1/admin/lists?kind=number')).body.entries.map((e: any) => e.value), [byDate]);

    t.clock.advance(60_000);
    await assertSent(byDate, '192.0.2.24');
    assert.deepEqual((await admin('GET', '/v1/admin/lists')).body.entries, []);
  });

  it('IPv4 and IPv6 CIDRs match the addresses inside them and only those', async () => {
    const v4 = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'cidr', value: '203.0.113.128/25' });
    const v6 = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'cidr', value: '2001:db8:aa::/48' });
    const one = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '2001:DB8:0:0::7' });
    for (const e of [v4, v6, one]) assert.equal(e.status, 201, e.text);

    await assertBlocked(nextNumber(), '203.0.113.128');
    await assertBlocked(nextNumber(), '203.0.113.255');
    await assertSent(nextNumber(), '203.0.113.127');
    await assertBlocked(nextNumber(), '2001:db8:aa:1::5');
    await assertBlocked(nextNumber(), '2001:db8:aa:ffff:ffff:ffff:ffff:ffff');
    await assertSent(nextNumber(), '2001:db8:ab::5');
    // A single IPv6 address in another spelling is the same address.
    await assertBlocked(nextNumber(), '2001:db8::7');
    await assertSent(nextNumber(), '2001:db8::8');
    for (const e of [v4, v6, one]) await admin('DELETE', `/v1/admin/lists/${e.body.id}`);
  });

  it("a country entry blocks the number's region and the IP's country", async () => {
    const entry = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'country', value: 'my' });
    assert.equal(entry.body.value, 'MY');
    // A Malaysian number from an address without a country.
    await assertBlocked('+60123456789', '192.0.2.30');
    // An Indonesian number from a Malaysian address (ip-location-db: 175.139.0.0/16 is in MY).
    await assertBlocked(nextNumber(), '175.139.1.1');
    // Other countries are untouched.
    await assertSent(nextNumber(), '192.0.2.31');
    await admin('DELETE', `/v1/admin/lists/${entry.body.id}`);
    await assertSent('+60123456788', '192.0.2.32');
  });
});
