import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Intel, type IntelReport } from '../../src/signals/intel.ts';

const now = (): number => 1_750_000_000_000;

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'otp-intel-'));
}

test('list files: hits name their source; reload picks up edits without restart', async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, 'tor.txt'), '# tor exits\n198.51.100.7\n2001:db8:7::/48\n');
    await writeFile(join(dir, 'proxy.txt'), '203.0.113.0/24\n');
    const intel = await Intel.load({ dir, now, ipData: false, starter: false });

    const a = intel.ipFacts('198.51.100.7');
    assert.equal(a.tor, true);
    assert.equal(a.proxy, false);
    assert.deepEqual(a.sources, ['file:tor.txt']);
    assert.equal(intel.ipFacts('2001:db8:7:1::5').tor, true);
    assert.equal(intel.ipFacts('::ffff:198.51.100.7').tor, true);
    assert.deepEqual(intel.ipFacts('203.0.113.99').sources, ['file:proxy.txt']);
    assert.equal(intel.ipFacts('198.51.100.8').tor, false);

    // Edit the file: old entry gone, new entry present.
    await writeFile(join(dir, 'tor.txt'), '198.51.100.8\n198.51.100.9\n');
    const before = intel.ipFacts('198.51.100.8');
    assert.equal(before.tor, false, 'no change until reload');
    const report = await intel.reload();
    assert.equal(report.at, now());
    assert.equal(intel.ipFacts('198.51.100.7').tor, false);
    assert.equal(intel.ipFacts('198.51.100.8').tor, true);
    assert.equal(report.files.find((f) => f.name === 'tor.txt')?.entries, 2);

    // Deleting a file empties its list.
    await unlink(join(dir, 'proxy.txt'));
    await intel.reload();
    assert.equal(intel.ipFacts('203.0.113.99').proxy, false);
    assert.equal(intel.status()?.files.find((f) => f.name === 'proxy.txt')?.present, false);
    intel.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('checkForChanges reloads only when a file changed, appeared or vanished', async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, 'vpn.txt'), '192.0.2.1\n');
    const intel = await Intel.load({ dir, now, ipData: false, starter: false });
    assert.equal(await intel.checkForChanges(), null);
    assert.equal(intel.ipFacts('192.0.2.2').vpn, false);

    await writeFile(join(dir, 'vpn.txt'), '192.0.2.1\n192.0.2.2\n'); // size differs
    const r = await intel.checkForChanges();
    assert.ok(r, 'change detected');
    assert.equal(intel.ipFacts('192.0.2.2').vpn, true);
    assert.equal(await intel.checkForChanges(), null);

    await writeFile(join(dir, 'datacenter.txt'), '192.0.2.0/24\n'); // new file
    assert.ok(await intel.checkForChanges());
    const f = intel.ipFacts('192.0.2.2');
    assert.equal(f.hosting, true);
    assert.deepEqual(f.sources, ['file:datacenter.txt', 'file:vpn.txt']);
    intel.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('per-line errors are reported and do not drop the rest of the file', async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, 'tor.txt'), '192.0.2.1\nnot-an-ip\n+447400123456\n192.0.2.3\n');
    await writeFile(join(dir, 'disposable-numbers.txt'), '+447400123456\n192.0.2.1\n+4470*\n');
    const intel = await Intel.load({ dir, now, ipData: false, starter: false });
    const st = intel.status();
    assert.ok(st);
    const tor = st.files.find((f) => f.name === 'tor.txt');
    assert.deepEqual(tor?.errors.map((e) => [e.line, e.reason]), [
      [2, 'unrecognized'],
      [3, 'wrong_kind'],
    ]);
    assert.equal(tor?.entries, 2);
    assert.equal(intel.ipFacts('192.0.2.3').tor, true);
    const nums = st.files.find((f) => f.name === 'disposable-numbers.txt');
    assert.deepEqual(nums?.errors.map((e) => [e.line, e.reason]), [[2, 'wrong_kind']]);
    assert.deepEqual(intel.numberFacts('+447400123456'), { disposable: true, sources: ['file:disposable-numbers.txt'] });
    assert.equal(intel.numberFacts('+447012345678').disposable, true); // prefix
    assert.equal(intel.numberFacts('+447400123457').disposable, false);
    intel.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('starter data: disposable-number package and shipped hosting ASNs', async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, 'hosting-asns.txt'), 'AS13335 # treat Cloudflare as hosting here\n');
    // v4 tables load lazily on first lookup (no IPv6 table load in this test).
    const intel = await Intel.load({ dir, now, preloadIpData: false });
    const st = intel.status();
    const pkg = st?.builtin.find((b) => b.label === '@ip1sms/disposable-phone-numbers');
    assert.ok(pkg && pkg.entries > 90_000, `package entries: ${pkg?.entries}`);

    // First key of the package's number-list.json.
    assert.deepEqual(intel.numberFacts('+46200231'), { disposable: true, sources: ['pkg:@ip1sms/disposable-phone-numbers'] });
    assert.equal(intel.numberFacts('+447400123456').disposable, false);

    const aws = intel.ipFacts('3.5.140.2');
    assert.equal(aws.asn, 16509);
    assert.equal(aws.asOrg, 'Amazon.com, Inc.');
    assert.equal(aws.hosting, true);
    assert.deepEqual(aws.sources, ['asn:intel/hosting-asns.txt']);

    const google = intel.ipFacts('8.8.8.8');
    assert.equal(google.country, 'US');
    assert.equal(google.asn, 15169);
    assert.equal(google.hosting, false, 'AS15169 is deliberately not in the shipped list');

    const cf = intel.ipFacts('1.1.1.1');
    assert.equal(cf.hosting, true);
    assert.deepEqual(cf.sources, ['asn:hosting-asns.txt']);

    const telkom = intel.ipFacts('36.72.10.5');
    assert.equal(telkom.country, 'ID');
    assert.equal(telkom.hosting, false);
    assert.deepEqual(telkom.sources, []);

    const bad = intel.ipFacts('not an ip');
    assert.deepEqual(bad, { country: null, asn: null, asOrg: null, hosting: false, tor: false, proxy: false, vpn: false, sources: [] });
    intel.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a missing list directory just means empty lists', async () => {
  const intel = await Intel.load({ dir: join(tmpdir(), 'otp-intel-does-not-exist-4b1c'), now, ipData: false, starter: false });
  assert.deepEqual(intel.ipFacts('192.0.2.1').sources, []);
  assert.equal(intel.status()?.files.every((f) => !f.present && f.entries === 0), true);
  assert.equal(await intel.checkForChanges(), null);
  intel.close();
});

test('watch() timer does not keep the process alive and can be stopped', async () => {
  const intel = await Intel.load({ now, ipData: false, starter: false });
  intel.watch(60_000);
  intel.unwatch();
  intel.watch(60_000);
  intel.close();
  assert.equal(await intel.checkForChanges(), null); // no dir: nothing to watch
});

test('an unreadable list keeps its previous contents and reports the error', async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, 'tor.txt'), '192.0.2.1\n');
    const intel = await Intel.load({ dir, now, ipData: false, starter: false });
    await unlink(join(dir, 'tor.txt'));
    await mkdir(join(dir, 'tor.txt')); // reading a directory fails with EISDIR
    const r = await intel.reload();
    const st = r.files.find((f) => f.name === 'tor.txt');
    assert.match(st?.readError ?? '', /EISDIR/);
    assert.equal(intel.ipFacts('192.0.2.1').tor, true, 'previous list kept');
    intel.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('watch() polling reloads after a file change', { timeout: 20_000 }, async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, 'proxy.txt'), '192.0.2.1\n');
    const intel = await Intel.load({ dir, now, ipData: false, starter: false });
    const reloaded = new Promise<IntelReport>((resolve, reject) => intel.watch(100, resolve, reject));
    await writeFile(join(dir, 'proxy.txt'), '192.0.2.1\n192.0.2.50\n');
    // The watch timer is unref'd (it must not keep a server alive on its
    // own), so hold the event loop open ourselves while waiting.
    const keepAlive = setInterval(() => {}, 1000);
    const r = await reloaded.finally(() => clearInterval(keepAlive)); // no assertion on how long it took
    assert.equal(r.files.find((f) => f.name === 'proxy.txt')?.entries, 2);
    assert.equal(intel.ipFacts('192.0.2.50').proxy, true);
    intel.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
