import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CidrSet, PrefixSet, RangeBuilder } from '../../src/signals/cidr-set.ts';
import { cidrContains, parseCidr, v4ToString } from '../../src/signals/ip.ts';

test('CidrSet: v4 and v6 membership, most specific wins', () => {
  const s = new CidrSet<string>();
  assert.deepEqual(s.add('10.0.0.0/8', 'big'), { ok: true });
  s.add('10.1.0.0/16', 'mid');
  s.add('10.1.2.3', 'one');
  s.add('2001:db8::/32', 'v6big');
  s.add('2001:db8:1::/48', 'v6mid');
  s.add('2001:db8:1::1', 'v6one');
  assert.equal(s.lookup('10.200.0.1'), 'big');
  assert.equal(s.lookup('10.1.255.255'), 'mid');
  assert.equal(s.lookup('10.1.2.3'), 'one');
  assert.equal(s.lookup('10.1.2.2'), 'mid');
  assert.equal(s.lookup('10.1.2.4'), 'mid');
  assert.equal(s.lookup('11.0.0.0'), null);
  assert.equal(s.lookup('9.255.255.255'), null);
  assert.equal(s.lookup('::ffff:10.1.2.3'), 'one');
  assert.equal(s.lookup('2001:db8:ffff::'), 'v6big');
  assert.equal(s.lookup('2001:db8:1:ffff::'), 'v6mid');
  assert.equal(s.lookup('2001:DB8:1:0:0:0:0:1'), 'v6one');
  assert.equal(s.lookup('2001:db9::'), null);
  assert.equal(s.lookup('not an ip'), null);
  assert.equal(s.size, 6);
});

test('CidrSet: edge addresses and whole-space CIDRs', () => {
  const s = new CidrSet<string>();
  s.add('0.0.0.0/32', 'zero');
  s.add('255.255.255.255/32', 'ones');
  s.add('::/128', 'v6zero');
  s.add('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', 'v6ones');
  assert.equal(s.lookup('0.0.0.0'), 'zero');
  assert.equal(s.lookup('0.0.0.1'), null);
  assert.equal(s.lookup('255.255.255.255'), 'ones');
  assert.equal(s.lookup('255.255.255.254'), null);
  assert.equal(s.lookup('::'), 'v6zero');
  assert.equal(s.lookup('::1'), null);
  assert.equal(s.lookup('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 'v6ones');
  assert.equal(s.lookup('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'), null);
  s.add('0.0.0.0/0', 'all4');
  s.add('::/0', 'all6');
  assert.equal(s.lookup('0.0.0.0'), 'zero');
  assert.equal(s.lookup('0.0.0.1'), 'all4');
  assert.equal(s.lookup('255.255.255.254'), 'all4');
  assert.equal(s.lookup('255.255.255.255'), 'ones');
  assert.equal(s.lookup('8000::'), 'all6');
  assert.equal(s.lookup('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 'v6ones');
  // 128-bit word boundaries
  const b = new CidrSet<string>();
  b.add('0:0:0:1::/64', 'w1');
  assert.equal(b.lookup('0:0:0:0:ffff:ffff:ffff:ffff'), null);
  assert.equal(b.lookup('0:0:0:1::'), 'w1');
  assert.equal(b.lookup('0:0:0:1:ffff:ffff:ffff:ffff'), 'w1');
  assert.equal(b.lookup('0:0:0:2::'), null);
});

test('CidrSet: identical CIDR added twice → last tag wins; invalid input reported', () => {
  const s = new CidrSet<string>();
  s.add('192.0.2.0/24', 'first');
  s.add('192.0.2.0/24', 'second');
  assert.equal(s.lookup('192.0.2.77'), 'second');
  assert.deepEqual(s.add('300.0.0.0/8', 'x'), { ok: false, reason: 'invalid' });
  assert.deepEqual(s.add('1.2.3.4/40', 'x'), { ok: false, reason: 'bad_prefix' });
  // adding after a lookup rebuilds
  s.add('192.0.2.128/25', 'third');
  assert.equal(s.lookup('192.0.2.200'), 'third');
  assert.equal(s.lookup('192.0.2.1'), 'second');
});

/** Reference: the most specific containing CIDR, last added on ties. */
function naive(entries: [string, string][], ip: string): string | null {
  let best: { len: number; tag: string } | null = null;
  for (const [cidr, tag] of entries) {
    const c = parseCidr(cidr);
    if (!c.ok || !cidrContains(c, ip)) continue;
    if (!best || c.prefix >= best.len) best = { len: c.prefix, tag };
  }
  return best?.tag ?? null;
}

test('CidrSet matches a naive reference on random nested CIDRs (v4)', () => {
  // Everything inside 10.0.0.0/20 so CIDRs overlap often.
  const cidr = fc.tuple(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 20, max: 32 })).map(([off, len]) => `${v4ToString(0x0a000000 + off)}/${len}`);
  fc.assert(
    fc.property(fc.array(fc.tuple(cidr, fc.constantFrom('a', 'b', 'c', 'd')), { maxLength: 30 }), fc.array(fc.integer({ min: -16, max: 0x1010 }), { minLength: 20, maxLength: 40 }), (entries, probes) => {
      const s = new CidrSet<string>();
      for (const [c, t] of entries) s.add(c, t);
      for (const p of probes) {
        const ip = v4ToString((0x0a000000 + p) >>> 0);
        assert.equal(s.lookup(ip), naive(entries, ip), `${ip} in ${JSON.stringify(entries)}`);
      }
    }),
    { numRuns: 300, seed: 1 },
  );
});

test('CidrSet matches a naive reference on random nested CIDRs (v6)', () => {
  const hex = (n: number): string => n.toString(16);
  const cidr = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 96, max: 128 })).map(([a, b, len]) => `2001:db8::${hex(a)}:${hex(b)}/${len}`);
  fc.assert(
    fc.property(fc.array(fc.tuple(cidr, fc.constantFrom('a', 'b', 'c')), { maxLength: 20 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })), { minLength: 20, maxLength: 30 }), (entries, probes) => {
      const s = new CidrSet<string>();
      for (const [c, t] of entries) s.add(c, t);
      for (const [a, b] of probes) {
        const ip = `2001:db8::${hex(a)}:${hex(b)}`;
        assert.equal(s.lookup(ip), naive(entries, ip), ip);
      }
      // probes taken from the entries themselves hit boundaries
      for (const [c] of entries) {
        const p = parseCidr(c);
        assert.ok(p.ok);
        const ip = p.cidr.split('/')[0] as string;
        assert.equal(s.lookup(ip), naive(entries, ip), ip);
      }
    }),
    { numRuns: 200, seed: 2 },
  );
});

test('RangeBuilder: later overlapping range paints over, adjacent equal ranges merge', () => {
  const rb = new RangeBuilder(1);
  const k = (n: number): Uint32Array => Uint32Array.of(n);
  rb.paint(k(0), 0, k(100), 0, 1);
  rb.paint(k(10), 0, k(20), 0, 2); // nested
  rb.paint(k(15), 0, k(30), 0, 3); // partial overlap
  rb.paint(k(101), 0, k(110), 0, 1); // adjacent, same value → merged
  const t = rb.finish();
  const rows = [...t.vals].map((v, i) => [t.starts[i], t.ends[i], v]);
  assert.deepEqual(rows, [
    [0, 9, 1],
    [10, 14, 2],
    [15, 30, 3],
    [31, 110, 1],
  ]);
});

test('PrefixSet: exact numbers beat prefixes, longest prefix wins', () => {
  const s = new PrefixSet<string>();
  s.addPrefix('+44', 'uk');
  s.addPrefix('+4470', 'uk-personal');
  s.addPrefix('+447012', 'uk-personal-12');
  s.addNumber('+447012345678', 'exact');
  assert.deepEqual(s.lookupDetail('+447012345678'), { tag: 'exact', kind: 'exact', matched: '+447012345678' });
  assert.deepEqual(s.lookupDetail('+447012999999'), { tag: 'uk-personal-12', kind: 'prefix', matched: '+447012' });
  assert.equal(s.lookup('+447099999999'), 'uk-personal');
  assert.equal(s.lookup('+447400123456'), 'uk');
  assert.equal(s.lookup('+4'), null);
  assert.equal(s.lookup('+6281234567890'), null);
  assert.equal(s.lookup('447012345678'), 'exact'); // '+' optional
  assert.equal(s.lookup('garbage'), null);
  assert.equal(s.lookup('+0447012345678'), null);
  assert.deepEqual(s.addNumber('+1234567890123456', 'x'), { ok: false, reason: 'not_e164_digits' });
  assert.deepEqual(s.addPrefix('+44a', 'x'), { ok: false, reason: 'not_e164_digits' });
});

test('PrefixSet: many exact numbers, duplicates keep the last tag', () => {
  const s = new PrefixSet<number>();
  const nums: string[] = [];
  for (let i = 0; i < 5000; i++) nums.push(`+1${String(2_000_000_000 + i * 7919).slice(0, 10)}`);
  nums.forEach((n, i) => s.addNumber(n, i));
  s.addNumber(nums[10] as string, -1);
  for (let i = 0; i < nums.length; i += 97) assert.equal(s.lookup(nums[i] as string), i === 10 ? -1 : i);
  assert.equal(s.lookup(nums[10] as string), -1);
  assert.equal(s.lookup('+19999999999'), null);
  // 15-digit numbers stay exact (no float rounding collisions)
  s.addNumber('+999999999999998', 1);
  assert.equal(s.lookup('+999999999999998'), 1);
  assert.equal(s.lookup('+999999999999999'), null);
});
