import { test } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import fc from 'fast-check';
import { cidrContains, isPublicIp, parseCidr, parseIp, networkKey, subnetKey, subnetOf, v6ToString, withoutPort } from '../../src/signals/ip.ts';

function canon(s: unknown): string | null {
  const r = parseIp(s);
  return r.ok ? r.ip : null;
}

test('IPv4 canonical parsing is strict', () => {
  assert.deepEqual(parseIp('36.72.10.5'), { ok: true, version: 4, ip: '36.72.10.5', v4: 0x24480a05 });
  assert.equal(canon(' 1.2.3.4 '), '1.2.3.4');
  assert.equal(canon('0.0.0.0'), '0.0.0.0');
  assert.equal(canon('255.255.255.255'), '255.255.255.255');
  const r = parseIp('255.255.255.255');
  assert.ok(r.ok && r.version === 4 && r.v4 === 0xffffffff);
  for (const bad of ['256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', '0x7f.0.0.1', '127.1', '2130706433', '1.2.3.4/32', '1.2.3.4:80', '1.2.3.-4', '１.２.３.４', '', ' ', 'localhost']) {
    assert.equal(parseIp(bad).ok, false, bad);
  }
});

test('IPv6 canonical form is RFC 5952', () => {
  assert.equal(canon('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canon('2001:0db8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1');
  assert.equal(canon('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // single 0 group not compressed
  assert.equal(canon('0:0:1:0:0:0:1:0'), '0:0:1::1:0'); // longest run wins
  assert.equal(canon('::'), '::');
  assert.equal(canon('::1'), '::1');
  assert.equal(canon('1::'), '1::');
  assert.equal(canon('1:2:3:4:5:6:7::'), '1:2:3:4:5:6:7:0');
  assert.equal(canon('::1.2.3.4'), '::102:304'); // IPv4-compatible stays IPv6
  assert.equal(canon('64:ff9b::1.2.3.4'), '64:ff9b::102:304');
});

test('IPv4-mapped IPv6 becomes the IPv4 address', () => {
  for (const s of ['::ffff:1.2.3.4', '::FFFF:1.2.3.4', '::ffff:102:304', '0:0:0:0:0:ffff:0102:0304', '0::ffff:1.2.3.4']) {
    const r = parseIp(s);
    assert.ok(r.ok && r.version === 4, s);
    assert.equal(r.ip, '1.2.3.4', s);
  }
});

test('rejects zone ids and garbage', () => {
  assert.deepEqual(parseIp('fe80::1%eth0'), { ok: false, reason: 'zone_id' });
  assert.deepEqual(parseIp('fe80::1%25eth0'), { ok: false, reason: 'zone_id' });
  assert.deepEqual(parseIp(42), { ok: false, reason: 'not_a_string' });
  assert.deepEqual(parseIp('1'.repeat(100)), { ok: false, reason: 'too_long' });
  for (const bad of [':::', '1:::2', ':1::', '1::2:', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '12345::1', 'g::1', '[::1]', '::ffff:1.2.3', '::ffff:01.2.3.4', '1.2.3.4::', '::1.2.3.4:1', '1:2:3:4:5:6:7:1.2.3.4', '1::2::3']) {
    assert.equal(parseIp(bad).ok, false, bad);
  }
});

test('IPv6 parser agrees with ipaddr.js (except the ::a.b.c.d quirk)', () => {
  const hex = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
  const groups = fc.array(fc.oneof(hex, fc.constant('0')), { minLength: 0, maxLength: 9 });
  fc.assert(
    fc.property(groups, fc.integer({ min: -1, max: 9 }), fc.boolean(), (g, cut, upper) => {
      let s = g.join(':');
      if (cut >= 0 && cut <= g.length) s = `${g.slice(0, cut).join(':')}::${g.slice(cut).join(':')}`;
      if (upper) s = s.toUpperCase();
      const mine = parseIp(s);
      const theirs = ipaddr.IPv6.isValid(s);
      assert.equal(mine.ok, theirs, s);
      if (mine.ok && theirs) {
        const a = ipaddr.IPv6.parse(s);
        const expected = a.isIPv4MappedAddress() ? a.toIPv4Address().toString() : a.toRFC5952String();
        assert.equal(mine.ip, expected, s);
      }
    }),
    { numRuns: 3000, seed: 42 },
  );
});

test('v6ToString round-trips through parseIp', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })), { minLength: 4, maxLength: 4 }), (w) => {
      const s = v6ToString(w);
      const r = parseIp(s);
      assert.ok(r.ok, s);
      if (r.version === 6) assert.deepEqual([...r.v6], w.map((x) => x >>> 0));
      else assert.deepEqual([w[0], w[1], w[2]], [0, 0, 0xffff]); // mapped
    }),
    { numRuns: 2000, seed: 7 },
  );
});

test('subnet keys', () => {
  assert.equal(subnetKey('36.72.10.5'), '36.72.10.0/24');
  assert.equal(subnetKey('::ffff:36.72.10.5'), '36.72.10.0/24');
  assert.equal(subnetKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(subnetKey('2001:db8:1:2::'), '2001:db8:1:2::/64');
  // One allocation: a home's /56 delegation (256 /64s), as an IPv4 /24.
  assert.equal(networkKey('2001:db8:1:2ff:3:4:5:6'), '2001:db8:1:200::/56');
  assert.equal(networkKey('2001:db8:1:2ff::'), networkKey('2001:db8:1:200::1'));
  assert.notEqual(networkKey('2001:db8:1:2ff::'), networkKey('2001:db8:1:300::'));
  assert.equal(networkKey('36.72.10.5'), '36.72.10.0/24');
  assert.equal(subnetOf('36.72.10.5', 16, 32), '36.72.0.0/16');
  assert.equal(subnetOf('2001:db8:ffff::1', 16, 0), '::/0');
  assert.equal(subnetKey('nope'), null);
  // Two spellings of one address → one key
  assert.equal(subnetKey('2001:DB8:1:2:0:0:0:1'), subnetKey('2001:db8:1:2::1'));
  // Accepts a pre-parsed address
  const p = parseIp('10.9.8.7');
  assert.ok(p.ok);
  assert.equal(subnetKey(p), '10.9.8.0/24');
});

test('parseCidr canonicalises and clears host bits', () => {
  const c = parseCidr('10.1.2.3/8');
  assert.ok(c.ok && c.version === 4);
  assert.equal(c.cidr, '10.0.0.0/8');
  assert.equal(c.start, 0x0a000000);
  assert.equal(c.end, 0x0affffff);
  const one = parseCidr('1.2.3.4');
  assert.ok(one.ok && one.version === 4 && one.start === one.end && one.cidr === '1.2.3.4/32');
  const v6 = parseCidr('2001:DB8::1/32');
  assert.ok(v6.ok && v6.version === 6);
  assert.equal(v6.cidr, '2001:db8::/32');
  assert.equal(v6ToString(v6.end), '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff');
  const mapped = parseCidr('::ffff:1.2.3.0/120');
  assert.ok(mapped.ok && mapped.version === 4 && mapped.cidr === '1.2.3.0/24');
  const all = parseCidr('0.0.0.0/0');
  assert.ok(all.ok && all.version === 4 && all.start === 0 && all.end === 0xffffffff);
  for (const bad of ['1.2.3.4/33', '::/129', '1.2.3.4/', '1.2.3.4/-1', '1.2.3.4/ 8', '1.2.3/24', '::ffff:1.2.3.4/64', 'x/8', '1.2.3.4/08x']) {
    assert.equal(parseCidr(bad).ok, false, bad);
  }
});

test('cidrContains', () => {
  assert.equal(cidrContains('36.72.0.0/16', '36.72.10.5'), true);
  assert.equal(cidrContains('36.72.0.0/16', '36.73.0.0'), false);
  assert.equal(cidrContains('36.72.0.0/16', '36.71.255.255'), false);
  assert.equal(cidrContains('36.72.0.0/16', '36.72.255.255'), true);
  assert.equal(cidrContains('0.0.0.0/0', '255.255.255.255'), true);
  assert.equal(cidrContains('2001:db8::/32', '2001:db8:ffff::1'), true);
  assert.equal(cidrContains('2001:db8::/32', '2001:db9::'), false);
  assert.equal(cidrContains('2001:db8::/32', '1.2.3.4'), false); // version mismatch
  assert.equal(cidrContains('1.2.3.0/24', '::ffff:1.2.3.9'), true); // mapped
  assert.equal(cidrContains('garbage', '1.2.3.4'), false);
  assert.equal(cidrContains('1.2.3.0/24', 'garbage'), false);
  const c = parseCidr('::/0');
  assert.ok(c.ok);
  assert.equal(cidrContains(c, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), true);
});

test('isPublicIp', () => {
  for (const ip of ['8.8.8.8', '1.1.1.1', '36.72.10.5', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '11.0.0.0', '223.255.255.255', '2001:4860:4860::8888', '2a01:4f8::1', '::ffff:8.8.8.8']) {
    assert.equal(isPublicIp(ip), true, ip);
  }
  for (const ip of ['0.0.0.0', '10.0.0.1', '100.64.0.1', '100.127.255.255', '127.0.0.1', '169.254.169.254', '172.16.0.1', '172.31.255.255', '192.0.0.8', '192.0.2.1', '192.168.0.1', '198.18.0.1', '198.19.255.255', '198.51.100.1', '203.0.113.1', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255', '::', '::1', '::ffff:10.0.0.1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '2001:db8::1', '3fff::1', '4000::1', 'garbage']) {
    assert.equal(isPublicIp(ip), false, ip);
  }
});

test('withoutPort takes off the port and brackets proxies add, and nothing else', () => {
  const cases: [string, string][] = [
    ['203.0.113.5:51234', '203.0.113.5'],
    [' 203.0.113.5:8080 ', '203.0.113.5'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['[::ffff:1.2.3.4]:80', '::ffff:1.2.3.4'],
    // A bare IPv6 address ends in a group, not a port: left alone.
    ['2001:db8::1:443', '2001:db8::1:443'],
    ['1.2.3.4', '1.2.3.4'],
    ['1.2.3.4:', '1.2.3.4:'],
    ['1.2.3.4:123456', '1.2.3.4:123456'],
    ['[1.2.3.4.5]:80', '1.2.3.4.5'], // unwrapped, then refused by parseIp
    ['host.example:80', 'host.example:80'],
  ];
  for (const [input, out] of cases) assert.equal(withoutPort(input), out, input);
  // Whatever it returns, parseIp still decides: no decoration turns garbage into an address.
  assert.equal(canon(withoutPort('[zzz]:80')), null);
  assert.equal(canon(withoutPort('[2001:db8::1]:443')), '2001:db8::1');
});
