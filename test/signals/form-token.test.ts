import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type OnceStore,
  bindingIp,
  formTokenOutcome,
  issueFormToken,
  secretList,
  verifyFormToken,
} from '../../src/signals/form-token.ts';

/** Minimal stand-in for Store.useOnce: remembers keys until their ttl passes. */
function onceStore(): OnceStore & { keys: Map<string, number> } {
  const keys = new Map<string, number>();
  return {
    keys,
    async useOnce(key, ttlMs, now) {
      const until = keys.get(key);
      if (until !== undefined && until > now) return false;
      keys.set(key, now + ttlMs);
      return true;
    },
  };
}

const SECRET = 'form-token-test-secret-0123456789';
const T0 = 1_750_000_000_000;
const IP = '203.0.113.7';
const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36';

function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

test('issued token verifies once, then reports reused', async () => {
  const store = onceStore();
  const issued = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  assert.match(issued.token, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.equal(issued.expiresAt, T0 + 600_000);

  const first = await verifyFormToken(SECRET, issued.token, { ip: IP, userAgent: UA, now: T0 + 5_000, store, consume: true });
  assert.deepEqual(first, { outcome: 'valid', issuedAt: T0, jti: issued.jti });
  assert.equal(store.keys.get(`ft:${issued.jti}`), T0 + 600_000, 'remembered exactly until the token expires');

  const again = await verifyFormToken(SECRET, issued.token, { ip: IP, userAgent: UA, now: T0 + 6_000, store, consume: true });
  assert.equal(again.outcome, 'reused');
});

test('consume: false checks without burning the token', async () => {
  const store = onceStore();
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  for (let i = 0; i < 2; i++) {
    const r = await verifyFormToken(SECRET, token, { ip: IP, userAgent: UA, now: T0 + 1, consume: false });
    assert.equal(r.outcome, 'valid');
  }
  assert.equal(store.keys.size, 0);
  assert.equal((await verifyFormToken(SECRET, token, { ip: IP, userAgent: UA, now: T0 + 1, store, consume: true })).outcome, 'valid');
  assert.equal((await verifyFormToken(SECRET, token, { ip: IP, userAgent: UA, now: T0 + 1, store, consume: true })).outcome, 'reused');
});

test('expiry is exclusive at exp and honours a custom ttl', async () => {
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0, ttlMs: 60_000 });
  const before = await verifyFormToken(SECRET, token, { ip: IP, userAgent: UA, now: T0 + 59_999, consume: false });
  assert.equal(before.outcome, 'valid');
  const at = await verifyFormToken(SECRET, token, { ip: IP, userAgent: UA, now: T0 + 60_000, store: onceStore(), consume: true });
  assert.deepEqual(at, { outcome: 'expired', issuedAt: T0, jti: at.jti });
});

test('binding: other IP or other User-Agent is rejected with the detail kept', async () => {
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  const ip = await verifyFormToken(SECRET, token, { ip: '198.51.100.1', userAgent: UA, now: T0 + 10, consume: false });
  assert.equal(ip.outcome, 'wrong_ip');
  assert.equal(formTokenOutcome(ip.outcome), 'invalid');
  const ua = await verifyFormToken(SECRET, token, { ip: IP, userAgent: 'curl/8.5.0', now: T0 + 10, consume: false });
  assert.equal(ua.outcome, 'wrong_ua');
  assert.equal(formTokenOutcome(ua.outcome), 'invalid');
  const none = await verifyFormToken(SECRET, token, { now: T0 + 10, consume: false });
  assert.equal(none.outcome, 'wrong_ip');
});

test('a failed binding check does not burn the genuine holder\'s token', async () => {
  const store = onceStore();
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  assert.equal((await verifyFormToken(SECRET, token, { ip: '198.51.100.1', userAgent: UA, now: T0 + 10, store, consume: true })).outcome, 'wrong_ip');
  assert.equal((await verifyFormToken(SECRET, token, { ip: IP, userAgent: UA, now: T0 + 20, store, consume: true })).outcome, 'valid');
});

test('IP normalisation: v4-mapped v6 equals v4; IPv6 binds to its /64', async () => {
  assert.equal(bindingIp('::ffff:203.0.113.7'), bindingIp('203.0.113.7'));
  assert.equal(bindingIp('2001:db8:1:2::aaaa'), bindingIp('2001:DB8:1:2:ffff:1:2:3'));
  assert.notEqual(bindingIp('2001:db8:1:2::1'), bindingIp('2001:db8:1:3::1'));

  const { token } = issueFormToken(SECRET, { ip: '2001:db8:1:2::10', userAgent: UA, now: T0 });
  const sameNet = await verifyFormToken(SECRET, token, { ip: '2001:db8:1:2:abcd::99', userAgent: UA, now: T0 + 1, consume: false });
  assert.equal(sameNet.outcome, 'valid');
  const otherNet = await verifyFormToken(SECRET, token, { ip: '2001:db8:1:3::10', userAgent: UA, now: T0 + 1, consume: false });
  assert.equal(otherNet.outcome, 'wrong_ip');

  const v4 = issueFormToken(SECRET, { ip: '::ffff:203.0.113.7', userAgent: UA, now: T0 });
  assert.equal((await verifyFormToken(SECRET, v4.token, { ip: IP, userAgent: UA, now: T0 + 1, consume: false })).outcome, 'valid');
});

test('the token does not reveal the IP or User-Agent', () => {
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  const payload = decodePayload(token);
  const text = JSON.stringify(payload);
  assert.ok(!text.includes(IP) && !text.includes('203.0.113'), text);
  assert.ok(!text.includes('Chrome'), text);
  assert.equal(typeof payload.ipHash, 'string');
  assert.equal(typeof payload.uaHash, 'string');
  assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'ipHash', 'jti', 'uaHash']);
});

test('tampering, foreign secrets and junk are invalid; empty is missing', async () => {
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  const [v, payloadB64 = '', mac = ''] = token.split('.');
  const opts = { ip: IP, userAgent: UA, now: T0 + 1, consume: false as const };

  // Extend the expiry in the payload and keep the old MAC.
  const payload = decodePayload(token);
  const extended = Buffer.from(JSON.stringify({ ...payload, exp: T0 + 86_400_000 })).toString('base64url');
  assert.equal((await verifyFormToken(SECRET, `${v}.${extended}.${mac}`, opts)).outcome, 'invalid');
  // Flip one MAC character.
  const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
  assert.equal((await verifyFormToken(SECRET, `${v}.${payloadB64}.${flipped}`, opts)).outcome, 'invalid');
  // Version swap is covered by the MAC.
  assert.equal((await verifyFormToken(SECRET, `v2.${payloadB64}.${mac}`, opts)).outcome, 'invalid');
  assert.equal((await verifyFormToken('another-secret-entirely-000000', token, opts)).outcome, 'invalid');
  for (const junk of ['x', 'v1..', 'v1.a.b.c', '.'.repeat(5), 'v1.' + 'A'.repeat(5000) + '.x']) {
    assert.equal((await verifyFormToken(SECRET, junk, opts)).outcome, 'invalid', junk.slice(0, 20));
  }
  assert.deepEqual(await verifyFormToken(SECRET, '', opts), { outcome: 'missing' });
  assert.deepEqual(await verifyFormToken(SECRET, undefined, opts), { outcome: 'missing' });
  assert.equal(formTokenOutcome('missing'), 'missing');
});

test('key rotation: tokens signed by a previous secret verify until dropped', async () => {
  const old = issueFormToken('old-secret-aaaaaaaaaaaaaaaa', { ip: IP, userAgent: UA, now: T0 });
  const opts = { ip: IP, userAgent: UA, now: T0 + 1, consume: false as const };
  const rotated = { current: 'new-secret-bbbbbbbbbbbbbbbb', previous: ['old-secret-aaaaaaaaaaaaaaaa'] };
  assert.equal((await verifyFormToken(rotated, old.token, opts)).outcome, 'valid');
  // Binding hashes were made with the old secret too, so binding still has teeth after rotation.
  assert.equal((await verifyFormToken(rotated, old.token, { ...opts, ip: '198.51.100.1' })).outcome, 'wrong_ip');
  assert.equal((await verifyFormToken({ current: 'new-secret-bbbbbbbbbbbbbbbb' }, old.token, opts)).outcome, 'invalid');
  // New tokens are signed with the current secret.
  const fresh = issueFormToken(rotated, { ip: IP, userAgent: UA, now: T0 });
  assert.equal((await verifyFormToken('new-secret-bbbbbbbbbbbbbbbb', fresh.token, opts)).outcome, 'valid');
  assert.equal((await verifyFormToken('old-secret-aaaaaaaaaaaaaaaa', fresh.token, opts)).outcome, 'invalid');
});

test('origin: recorded when given, enforced when the verifier names one', async () => {
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0, origin: 'https://shop.example' });
  assert.equal(decodePayload(token).origin, 'https://shop.example');
  const base = { ip: IP, userAgent: UA, now: T0 + 1, consume: false as const };
  assert.equal((await verifyFormToken(SECRET, token, { ...base, origin: 'https://shop.example' })).outcome, 'valid');
  const wrong = await verifyFormToken(SECRET, token, { ...base, origin: 'https://evil.example' });
  assert.equal(wrong.outcome, 'wrong_origin');
  assert.equal(formTokenOutcome(wrong.outcome), 'invalid');
  assert.equal((await verifyFormToken(SECRET, token, base)).outcome, 'valid');
});

test('a token issued beyond clock skew in the future is invalid', async () => {
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 + 120_000 });
  assert.equal((await verifyFormToken(SECRET, token, { ip: IP, userAgent: UA, now: T0, consume: false })).outcome, 'invalid');
  const slight = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 + 30_000 });
  assert.equal((await verifyFormToken(SECRET, slight.token, { ip: IP, userAgent: UA, now: T0, consume: false })).outcome, 'valid');
});

test('empty secrets are a configuration error', () => {
  assert.throws(() => secretList(''), TypeError);
  assert.throws(() => secretList({ current: 'x', previous: [''] }), TypeError);
  assert.throws(() => issueFormToken('', { now: T0 }), TypeError);
  assert.deepEqual(secretList({ current: 'a', previous: ['b', 'c'] }), ['a', 'b', 'c']);
});

test('consume without a store is refused rather than silently skipping single use', async () => {
  const { token } = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  const opts = { ip: IP, userAgent: UA, now: T0 + 1, consume: true } as unknown as Parameters<typeof verifyFormToken>[2];
  await assert.rejects(verifyFormToken(SECRET, token, opts), TypeError);
});

test('a token may carry when the form was started (st): verified as startedAt, never after its issue time', async () => {
  const plain = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0 });
  const plainOut = await verifyFormToken(SECRET, plain.token, { ip: IP, userAgent: UA, now: T0 + 1000, consume: false });
  assert.equal(plainOut.startedAt, undefined, 'without st, the form started when the token was issued (issuedAt)');
  const started = issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0, startedAt: T0 - 5000 });
  assert.equal(decodePayload(started.token).st, T0 - 5000);
  const out = await verifyFormToken(SECRET, started.token, { ip: IP, userAgent: UA, now: T0 + 1000, consume: false });
  assert.equal(out.outcome, 'valid');
  assert.equal(out.startedAt, T0 - 5000);
  assert.equal(out.issuedAt, T0, 'the lifetime still counts from the issue');
  // At most one token lifetime back (600 s by default): a chain of challenges cannot carry an early start forward.
  assert.equal(decodePayload(issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0, startedAt: T0 - 3_600_000 }).token).st, T0 - 600_000);
  // A start in the future is not written (it would make the form look slower than it was).
  assert.equal(decodePayload(issueFormToken(SECRET, { ip: IP, userAgent: UA, now: T0, startedAt: T0 + 1 }).token).st, undefined);
});
