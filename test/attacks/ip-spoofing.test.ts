/**
 * Attack: dodge per-IP limits by writing the client address into headers.
 * Browser-facing endpoints take the address from the socket, or from X-Forwarded-For only when the socket
 * is a configured proxy (and then the hop the proxy appended, not what the client wrote); the
 * server-to-server API takes it from the body. Every spoofing header is tried; the limit must hold.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { client, deliveries, freshNumber } from './support.ts';

const CHALLENGE_LIMIT = 30; // per address per 10 minutes (src/http/routes/challenges.ts)
const IP_SEND_LIMIT = 10; // DEFAULT_POLICY.limits.ip, 10 per 10 minutes

/** Every header a naive implementation might believe, with a fresh fake address each time. */
function spoofHeaders(i: number): Record<string, string> {
  const fake = `198.51.${Math.floor(i / 200)}.${(i % 200) + 1}`;
  return {
    'x-forwarded-for': fake,
    'x-real-ip': fake,
    'true-client-ip': fake,
    'cf-connecting-ip': fake,
    'x-client-ip': fake,
    'x-cluster-client-ip': fake,
    forwarded: `for=${fake};proto=https`,
  };
}

describe('spoofed client-address headers, no trusted proxy', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('/v1/challenges: a new fake address per request does not buy a new budget', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < CHALLENGE_LIMIT + 10; i++) {
      statuses.push((await t.request('POST', '/v1/challenges', {}, { key: null, headers: spoofHeaders(i) })).status);
    }
    assert.equal(statuses.filter((s) => s === 201).length, CHALLENGE_LIMIT, statuses.join(','));
    assert.ok(statuses.slice(CHALLENGE_LIMIT).every((s) => s === 429));
  });

  it('/v1/verifications: the end user address is the body\'s client.ip, whatever the headers say', async () => {
    const ip = '36.72.40.9';
    const sent: string[] = [];
    for (let i = 0; i < IP_SEND_LIMIT + 6; i++) {
      const to = freshNumber();
      sent.push(to);
      const r = await t.request('POST', '/v1/verifications', { to, client: client(ip) }, { headers: spoofHeaders(1000 + i) });
      assert.ok([201, 403, 429].includes(r.status), r.text);
    }
    const n = sent.reduce((acc, to) => acc + deliveries(t, to).length, 0);
    assert.ok(n <= IP_SEND_LIMIT, `${n} messages from one address (limit ${IP_SEND_LIMIT})`);
    assert.ok(n > 0, 'the first sends went through, so the limit and not something else stopped the rest');
  });
});

describe('spoofed X-Forwarded-For behind a trusted proxy', () => {
  let t: TestApp;
  before(async () => {
    // The test client connects from 127.0.0.1, which plays the proxy: it appends the real client address.
    t = await startTestApp({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } });
  });
  after(async () => t.close());

  const realClient = '36.72.50.7';
  /** What the proxy forwards: whatever the client wrote, then the address it saw. */
  const viaProxy = (i: number) => ({ 'x-forwarded-for': `198.51.100.${(i % 250) + 1}, 10.${i % 250}.0.1, ${realClient}`, 'x-real-ip': `203.0.113.${(i % 250) + 1}` });

  it('/v1/challenges counts the hop the proxy appended, not the ones the client prepended', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < CHALLENGE_LIMIT + 5; i++) statuses.push((await t.request('POST', '/v1/challenges', {}, { key: null, headers: viaProxy(i) })).status);
    assert.equal(statuses.filter((s) => s === 201).length, CHALLENGE_LIMIT, statuses.join(','));
    // Another real client behind the same proxy is unaffected: the limit is per client, not per proxy.
    const other = await t.request('POST', '/v1/challenges', {}, { key: null, headers: { 'x-forwarded-for': `${realClient}, 36.72.50.8` } });
    assert.equal(other.status, 201);
  });

  it('IPv6: a client rotating addresses inside its /64 shares one budget (challenges, failed API keys)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < CHALLENGE_LIMIT + 5; i++) {
      statuses.push((await t.request('POST', '/v1/challenges', {}, { key: null, headers: { 'x-forwarded-for': `2001:db8:77:1:${(i + 1).toString(16)}::1` } })).status);
    }
    assert.equal(statuses.filter((s) => s === 201).length, CHALLENGE_LIMIT, statuses.join(','));
    const keys: number[] = [];
    for (let i = 0; i < 25; i++) {
      keys.push((await t.request('GET', '/v1/admin/policy', undefined, { key: `osk_nope${i}_guess`, headers: { 'x-forwarded-for': `2001:db8:77:2::${(i + 1).toString(16)}` } })).status);
    }
    assert.ok(keys.filter((s) => s === 401).length <= 20, keys.join(','));
    assert.equal(keys.at(-1), 429, keys.join(','));
  });

  it('/demo/api/send (a browser-facing backend) limits by the proxied address, not the spoofed ones', async () => {
    const sent: string[] = [];
    for (let i = 0; i < IP_SEND_LIMIT + 6; i++) {
      const to = freshNumber();
      sent.push(to);
      const r = await t.request('POST', '/demo/api/send', { to }, { key: null, headers: { ...viaProxy(500 + i), 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133', 'accept-language': 'id-ID' } });
      assert.ok([201, 403, 429].includes(r.status), r.text);
    }
    const n = sent.reduce((acc, to) => acc + deliveries(t, to).length, 0);
    assert.ok(n > 0 && n <= IP_SEND_LIMIT, `${n} messages from one real client address`);
  });
});
