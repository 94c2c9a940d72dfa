/**
 * Attack: SQL-injection-shaped, NoSQL-shaped, header-splitting, template and very long strings in every
 * string field of every endpoint (bodies, path parameters, query strings, headers). Each request gets a
 * 2xx or 4xx in the error shape, never a 500; no injected header appears; and afterwards the store is
 * intact: the canary verification, the API keys and the list entries are exactly what they were.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';
import { client, freshNumber, ipFor } from './support.ts';

const PAYLOADS = [
  "' OR '1'='1",
  "'; DROP TABLE verifications; --",
  '" OR ""="',
  "1; SELECT pg_sleep(5)--",
  "') UNION SELECT secret_hash FROM api_keys --",
  "\\'; DELETE FROM events WHERE 1=1; --",
  '{"$gt":""}',
  '$where: 1 == 1',
  '*)(uid=*))(|(uid=*',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  '${7*7}{{7*7}}#{7*7}',
  'a\r\nX-Injected: yes',
  '\u001b[31mred\u001b[0m',
  '\u0000',
  '%00%0d%0aX-Injected:%20yes',
  'EVAL "return 1" 0',
  '\ud800',
  '🦄'.repeat(40),
];
const LONG = ['x'.repeat(65), 'x'.repeat(513), 'x'.repeat(4097), '9'.repeat(2000)];

/** Percent-encodes for a URL; a lone surrogate (which encodeURIComponent refuses) goes in as its raw UTF-8 bytes. */
const enc = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
};
/** Header values must be bytes a client can send; keep what a real client could put in User-Agent. */
const headerSafe = (s: string) => s.replace(/[^\x20-\x7e]/g, '') || 'x';

describe('injection-shaped and oversized strings in every field', () => {
  let t: TestApp;
  let canary: { id: string; to: string; code: string };
  let entriesBefore: number;
  before(async () => {
    // Each probe comes from its own address (127.0.0.1 plays a trusted proxy), so the failed-sign-in limit
    // that the login probes trip does not lock out the rest of the test.
    t = await startTestApp({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } });
    const to = freshNumber();
    const s = await t.request('POST', '/v1/verifications', { to, client: client(ipFor(1)) });
    assert.equal(s.status, 201, s.text);
    canary = { id: s.body.id, to, code: t.lastCode(to)! };
    await t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281111111111', note: 'canary' }, { key: t.adminKey });
    entriesBefore = (await t.ctx.store.listEntries(t.clock())).length;
  });
  after(async () => t.close());

  let count = 0;
  async function probe(method: string, path: string, body: unknown, key: string | null, headers: Record<string, string> = {}) {
    count++;
    const r = await t.request(method, path, body, { key, headers: { 'x-forwarded-for': ipFor(count), ...headers } });
    assert.ok(r.status < 500, `${method} ${path} ${JSON.stringify(body)?.slice(0, 120)} → ${r.status} ${r.text.slice(0, 200)}`);
    if (r.status >= 400) assert.equal(typeof r.body?.error?.code, 'string', `${method} ${path}: error shape`);
    assert.equal(r.headers.get('x-injected'), null, 'no header splitting');
    return r;
  }

  it('verification endpoints: every string field', async () => {
    const base = { to: freshNumber(), client: client(ipFor(2)) };
    for (const p of [...PAYLOADS, ...LONG]) {
      await probe('POST', '/v1/verifications', { ...base, to: p }, t.verifyKey);
      await probe('POST', '/v1/verifications', { ...base, locale: p }, t.verifyKey);
      await probe('POST', '/v1/verifications', { ...base, defaultRegion: p }, t.verifyKey);
      await probe('POST', '/v1/verifications', { ...base, channel: p }, t.verifyKey);
      for (const f of ['ip', 'userAgent', 'deviceId', 'formToken', 'pow', 'captchaToken', 'honeypot', 'acceptLanguage']) {
        await probe('POST', '/v1/verifications', { ...base, to: freshNumber(), client: { ...base.client, [f]: p } }, t.verifyKey);
      }
      await probe('POST', '/v1/verifications', { ...base, client: { ...base.client, automation: { flags: [p] } } }, t.verifyKey);
      await probe('POST', '/v1/verifications/check', { id: p, code: '123456' }, t.verifyKey);
      await probe('POST', '/v1/verifications/check', { to: p, code: '123456' }, t.verifyKey);
      await probe('POST', '/v1/verifications/check', { id: 'vf_nope', code: p }, t.verifyKey);
      await probe('POST', '/v1/verifications/check', { id: 'vf_nope', code: '123456', client: { ip: p, deviceId: p } }, t.verifyKey);
      await probe('GET', `/v1/verifications/${enc(p)}`, undefined, t.verifyKey);
      await probe('POST', `/v1/verifications/${enc(p)}/cancel`, undefined, t.verifyKey);
      await probe('POST', '/demo/api/send', { to: p }, null, { 'user-agent': headerSafe(p), 'accept-language': 'id' });
      await probe('POST', '/demo/api/check', { to: p, code: p }, null);
    }
  });

  it('admin endpoints: bodies, path parameters and query strings', async () => {
    for (const p of [...PAYLOADS, ...LONG]) {
      for (const kind of ['number', 'prefix', 'ip', 'cidr', 'device', 'country']) {
        await probe('POST', '/v1/admin/lists', { list: 'block', kind, value: p, note: 'probe', ttlSeconds: 60 }, t.adminKey);
      }
      await probe('POST', '/v1/admin/lists', { list: 'allow', kind: 'device', value: 'probe-device', note: p, ttlSeconds: 60 }, t.adminKey);
      await probe('POST', '/v1/admin/lists', { list: p, kind: 'number', value: '+6281234567890' }, t.adminKey);
      await probe('DELETE', `/v1/admin/lists/${enc(p)}`, undefined, t.adminKey);
      await probe('GET', `/v1/admin/lists?list=${enc(p)}&kind=${enc(p)}`, undefined, t.adminKey);
      await probe('GET', `/v1/admin/events?number=${enc(p)}&ip=${enc(p)}&type=${enc(p)}`, undefined, t.adminKey);
      await probe('PUT', '/v1/admin/policy', { name: p, note: p }, t.adminKey);
      await probe('POST', '/v1/admin/policy/validate', { risk: { rules: { [p]: { action: 'block' } } } }, t.adminKey);
      await probe('DELETE', `/v1/admin/quarantines/${enc(p)}`, undefined, t.adminKey);
      await probe('POST', '/dashboard/api/login', { key: p }, null);
    }
  });

  it('afterwards the store is intact and nothing was granted', async () => {
    const v = await t.ctx.store.getVerification(canary.id);
    assert.equal(v?.status, 'pending');
    assert.equal(v?.to, canary.to);
    const keys = await t.ctx.store.listApiKeys();
    assert.equal(keys.length, 2, 'no key created or removed');
    assert.ok(keys.every((k) => k.revokedAt === null));
    // Entries the probes legitimately added are device/note probes with a TTL; nothing else changed.
    const entries = await t.ctx.store.listEntries(t.clock());
    assert.ok(entries.some((e) => e.note === 'canary'));
    assert.ok(entries.every((e) => e.note === 'canary' || e.note === 'probe' || e.value === 'probe-device'), JSON.stringify(entries.slice(0, 3)));
    assert.ok(entries.length >= entriesBefore);
    assert.deepEqual(outcome((await t.request('POST', '/v1/verifications/check', { id: canary.id, code: canary.code })).body), { status: 'approved' });
    assert.equal((await t.request('GET', '/healthz', undefined, { key: null })).status, 200);
  });
});
