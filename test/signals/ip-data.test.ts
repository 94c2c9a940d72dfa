import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isPublicIp, parseIp, v4ToString, v6ToString } from '../../src/signals/ip.ts';
import { asOrgName, ipDataStats, loadIpData, lookupAsn, lookupCountry, setIpDataChunkBytes, setIpDataPaths } from '../../src/signals/ip-data.ts';
import { parseListText } from '../../src/signals/lists-file.ts';

const req = createRequire(import.meta.url);
const COUNTRY_DIR = dirname(req.resolve('@ip-location-db/geo-whois-asn-country/package.json'));
const ASN_DIR = dirname(req.resolve('@ip-location-db/asn/package.json'));

test('loads all four tables into typed arrays', async () => {
  const stats = await loadIpData();
  assert.deepEqual(stats.map((s) => s.table).sort(), ['asn4', 'asn6', 'country4', 'country6']);
  for (const s of stats) {
    assert.ok(s.rows > 50_000, `${s.table}: ${s.rows} rows`);
    assert.ok(s.ranges > 0 && s.ranges <= s.rows + 1000, `${s.table}: ${s.ranges} ranges`);
    assert.ok(s.bytes > 0);
  }
  assert.equal(ipDataStats().length, 4);
  // A second call does not reload.
  const again = await loadIpData();
  assert.deepEqual(again.map((s) => s.loadMs), stats.map((s) => s.loadMs));
});

test('well-known addresses (values checked against the package data)', () => {
  assert.equal(lookupCountry('8.8.8.8'), 'US');
  assert.deepEqual(lookupAsn('8.8.8.8'), { asn: 15169, org: 'Google LLC' });
  assert.equal(lookupAsn('1.1.1.1')?.asn, 13335);
  assert.equal(lookupAsn('1.1.1.1')?.org, 'Cloudflare, Inc.'); // quoted CSV field with a comma
  // 1.1.1.0/24 is registered to APNIC research in Australia: whois says AU.
  assert.equal(lookupCountry('1.1.1.1'), 'AU');
  assert.equal(lookupCountry('36.72.10.5'), 'ID'); // Telkom Indonesia
  assert.equal(lookupAsn('36.72.10.5')?.asn, 7713);
  assert.equal(lookupCountry('2001:4860:4860::8888'), 'US');
  assert.equal(lookupAsn('2001:4860:4860::8888')?.asn, 15169);
  assert.equal(lookupAsn('2606:4700:4700::1111')?.asn, 13335);
  assert.equal(lookupAsn('2a01:4f8::1')?.asn, 24940); // Hetzner
  assert.equal(lookupAsn('::ffff:8.8.8.8')?.asn, 15169); // mapped → v4 table
  assert.equal(asOrgName(24940), 'Hetzner Online GmbH');
});

test('private, reserved and invalid addresses have no facts', () => {
  // The upstream country file maps 192.168.0.0/16 to AU; we must not.
  for (const ip of ['10.0.0.1', '192.168.1.1', '127.0.0.1', '100.64.0.1', '169.254.1.1', '192.0.2.1', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', 'ff02::1', '2001:db8::1']) {
    assert.equal(lookupAsn(ip), null, ip);
    assert.equal(lookupCountry(ip), null, ip);
  }
  assert.equal(lookupCountry('not-an-ip'), null);
  assert.equal(lookupAsn(''), null);
});

// Reference data parsed independently of ip-data.ts's byte scanner: IPv4
// from the numeric CSV via split + Number, IPv6 from the *textual* CSV via
// parseIp (ip-data.ts reads the numeric one with its own decimal→128-bit
// conversion). Keys are 1 (v4) or 4 (v6) words.
interface Rows {
  w: 1 | 4;
  s: Uint32Array;
  e: Uint32Array;
  val: string[];
}

function rows(file: string, w: 1 | 4): Rows {
  const lines = readFileSync(file, 'utf8').split('\n');
  const s = new Uint32Array(lines.length * w);
  const e = new Uint32Array(lines.length * w);
  const val: string[] = [];
  const put = (arr: Uint32Array, i: number, ip: string): void => {
    if (w === 1) {
      arr[i] = Number(ip);
      return;
    }
    const p = parseIp(ip);
    if (!p.ok) throw new Error(`bad ip in ${file}: ${ip}`);
    if (p.version === 4) arr[i] = p.v4;
    else arr.set(p.v6, 4 * i);
  };
  for (const line of lines) {
    const [a, b, v] = line.split(',');
    if (!a || !b || v === undefined) continue;
    put(s, val.length, a);
    put(e, val.length, b);
    val.push(v);
  }
  return { w, s, e, val };
}

function cmp(w: 1 | 4, arr: Uint32Array, i: number, x: Uint32Array): number {
  for (let k = 0; k < w; k++) {
    const a = arr[i * w + k] as number;
    const b = x[k] as number;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** Reference lookup: the last row (file order) containing x. */
function naive(r: Rows, x: Uint32Array): string | null {
  let v: string | null = null;
  for (let i = 0; i < r.val.length; i++) if (cmp(r.w, r.s, i, x) <= 0 && cmp(r.w, r.e, i, x) >= 0) v = r.val[i] as string;
  return v;
}

function key(ip: string): Uint32Array {
  const p = parseIp(ip);
  assert.ok(p.ok, ip);
  return p.version === 4 ? Uint32Array.of(p.v4) : p.v6;
}

test('binary search agrees with a linear scan of the CSVs', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const c4 = rows(join(COUNTRY_DIR, 'geo-whois-asn-country-ipv4-num.csv'), 1);
  const a4 = rows(join(ASN_DIR, 'asn-ipv4-num.csv'), 1);
  // Row boundaries (start, end, end+1) of random rows, plus random addresses.
  const probes: string[] = [];
  for (let i = 0; i < 20; i++) {
    const t = i % 2 ? c4 : a4;
    const k = rnd(t.val.length);
    const end = t.e[k] as number;
    probes.push(v4ToString(t.s[k] as number), v4ToString(end), v4ToString((end + 1) >>> 0), v4ToString(rnd(0x7fffffff) * 2));
  }
  let checked = 0;
  for (const ip of probes) {
    if (!isPublicIp(ip)) continue;
    assert.equal(lookupCountry(ip), naive(c4, key(ip)), `country ${ip}`);
    const a = naive(a4, key(ip));
    assert.equal(lookupAsn(ip)?.asn ?? null, a === null || a === '0' ? null : Number(a), `asn ${ip}`);
    checked++;
  }
  assert.ok(checked > 50, `checked ${checked}`);

  const c6 = rows(join(COUNTRY_DIR, 'geo-whois-asn-country-ipv6.csv'), 4);
  checked = 0;
  for (let i = 0; i < 12; i++) {
    const k = rnd(c6.val.length);
    const start = c6.s.subarray(4 * k, 4 * k + 4);
    const end = c6.e.subarray(4 * k, 4 * k + 4);
    for (const ip of [v6ToString(start), v6ToString(end)]) {
      if (!isPublicIp(ip)) continue;
      assert.equal(lookupCountry(ip), naive(c6, key(ip)), `country ${ip}`);
      checked++;
    }
  }
  assert.ok(checked > 12, `checked ${checked}`);
});

test('every shipped hosting ASN exists in the ASN data', () => {
  const text = readFileSync(new URL('../../intel/hosting-asns.txt', import.meta.url), 'utf8');
  const { entries, errors } = parseListText(text, { accept: ['asn'] });
  assert.deepEqual(errors, []);
  assert.ok(entries.length >= 40);
  const seen = new Set<number>();
  for (const e of entries) {
    assert.equal(e.kind, 'asn');
    if (e.kind !== 'asn') continue;
    assert.ok(!seen.has(e.value), `AS${e.value} listed twice`);
    seen.add(e.value);
    assert.notEqual(asOrgName(e.value), null, `AS${e.value} not in ip-location-db ASN data`);
  }
  // Consumer-heavy networks are deliberately absent.
  for (const asn of [15169, 13335, 20940, 36183, 54113]) assert.ok(!seen.has(asn), `AS${asn}`);
});

test('files are read in pieces: a line cut at any chunk edge parses as if read whole', async () => {
  const defaults = {
    country4: join(COUNTRY_DIR, 'geo-whois-asn-country-ipv4-num.csv'),
    country6: join(COUNTRY_DIR, 'geo-whois-asn-country-ipv6-num.csv'),
    asn4: join(ASN_DIR, 'asn-ipv4-num.csv'),
    asn6: join(ASN_DIR, 'asn-ipv6-num.csv'),
  };
  const dir = mkdtempSync(join(tmpdir(), 'otps-ipdata-'));
  try {
    // CRLF and LF endings, a quoted organisation with a comma and a doubled quote, one with a line break, a
    // blank line, a line longer than the small buffers below, and no line break at the end of the file.
    const long = 'X'.repeat(300);
    const csv = [
      '16777216,16777471,13335,"Cloudflare, Inc."\r',
      '16778240,16779263,38803,Gtelecom Pty Ltd',
      '',
      `134744064,134744319,15169,"Google ""Public"" ${long}"`,
      '134744320,134744575,64501,"Two-line\nname, Inc."',
      '3758096384,3758096639,64500,Last Line Without Break',
    ].join('\n');
    const fixture = join(dir, 'asn4.csv');
    writeFileSync(fixture, csv);
    const expect = [
      ['1.0.0.1', 13335, 'Cloudflare, Inc.'],
      ['1.0.4.5', 38803, 'Gtelecom Pty Ltd'],
      ['8.8.8.8', 15169, `Google "Public" ${long}`],
      ['224.0.0.9', null, null], // multicast: never looked up, whatever the file says
    ] as const;
    for (const bytes of [1, 2, 3, 7, 64, 1 << 20]) {
      setIpDataChunkBytes(bytes);
      setIpDataPaths({ ...defaults, asn4: fixture });
      const [st] = await loadIpData({ tables: ['asn4'] });
      assert.equal(st!.rows, 5, `chunk ${bytes}: rows`);
      assert.equal(asOrgName(64501), 'Two-line\nname, Inc.', `chunk ${bytes}`);
      for (const [ip, asn, org] of expect) {
        const got = lookupAsn(ip);
        assert.deepEqual(got === null ? [null, null] : [got.asn, got.org], [asn, org], `chunk ${bytes}: ${ip}`);
      }
      assert.equal(asOrgName(64500), 'Last Line Without Break', `chunk ${bytes}`);
    }
    // The shipped IPv4 country file at an odd size (thousands of edges inside lines) against one piece.
    const sample = Array.from({ length: 3000 }, (_, i) => v4ToString((Math.imul(i + 1, 2654435761) >>> 0) % 0xe0000000));
    setIpDataChunkBytes(1 << 30);
    setIpDataPaths(defaults);
    const [whole] = await loadIpData({ tables: ['country4'] });
    const byWhole = sample.map((ip) => lookupCountry(ip));
    setIpDataChunkBytes(4093);
    setIpDataPaths(defaults);
    const [pieces] = await loadIpData({ tables: ['country4'] });
    assert.deepEqual([pieces!.rows, pieces!.ranges], [whole!.rows, whole!.ranges]);
    assert.deepEqual(sample.map((ip) => lookupCountry(ip)), byWhole);
    assert.ok(byWhole.filter((c) => c !== null).length > 1000);
  } finally {
    setIpDataChunkBytes(1 << 20);
    setIpDataPaths(defaults);
    rmSync(dir, { recursive: true, force: true });
  }
});
