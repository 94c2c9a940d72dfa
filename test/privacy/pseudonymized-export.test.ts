/**
 * A pseudonymised export (`events export --pseudonymize`) hides numbers, addresses and device ids, and still
 * replays to exactly the decisions of the export in full: the IP pseudonyms keep the groupings the counters
 * use (lib/ip-pseudonym.ts) and the export carries each address's facts as the decision saw them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipPseudonymizer } from '../../src/lib/ip-pseudonym.ts';
import { exportEvents, numberMasker } from '../../src/service/audit-export.ts';
import { replayLines } from '../../src/replay/driver.ts';
import { parseIp } from '../../src/signals/ip.ts';
import { startTestApp } from '../helpers/app.ts';

const KEY = 'pseudonym-key-for-tests-0123456789';
const v6 = (ip: string): Uint32Array => {
  const p = parseIp(ip);
  assert.ok(p.ok && p.version === 6);
  return p.v6;
};

describe('IP pseudonyms', () => {
  it('IPv4: the /24 is kept and its 256 addresses are permuted (none merge); stable per key, other with another key', () => {
    const p = ipPseudonymizer(KEY);
    const all = Array.from({ length: 256 }, (_, i) => `36.72.10.${i}`);
    const out = all.map(p);
    assert.ok(out.every((x) => x.startsWith('36.72.10.')), 'same /24');
    assert.equal(new Set(out).size, 256, 'a permutation: no two addresses share a pseudonym');
    assert.ok(out.filter((x, i) => x !== all[i]).length > 200, 'most addresses move');
    assert.deepEqual(all.map(ipPseudonymizer(KEY)), out, 'stable');
    assert.notDeepEqual(all.map(ipPseudonymizer(`${KEY}-other`)), out, 'keyed');
    assert.equal(p('not an ip'), 'not an ip');
  });

  it('networks: wide ones are kept, an IPv6 /56 or /64 and a single address become their pseudonyms\' network', async () => {
    const { cidrPseudonym } = await import('../../src/lib/ip-pseudonym.ts');
    const p = ipPseudonymizer(KEY);
    assert.equal(cidrPseudonym(p, '36.72.50.0/24'), '36.72.50.0/24');
    assert.equal(cidrPseudonym(p, '2001:4860::/32'), '2001:4860::/32');
    assert.equal(cidrPseudonym(p, '36.72.50.9/32'), `${p('36.72.50.9')}/32`);
    const n56 = cidrPseudonym(p, '2001:4860:1f00:1200::/56');
    const member = v6(p('2001:4860:1f00:12ab::7'));
    assert.match(n56, /^2001:4860:1f00:[0-9a-f]{1,2}00::\/56$/, 'the /48 kept, a /56 of it');
    // A length no network of pseudonyms can express: a documentation network, which matches nobody (a real one
    // of the same /24 would catch other people's pseudonyms).
    assert.equal(cidrPseudonym(p, '36.72.50.64/26'), '192.0.2.0/26');
    assert.equal(cidrPseudonym(p, '2001:4860:1f00:1230::/60'), '2001:db8::/60');
    const net = v6(n56.split('/')[0]!);
    assert.equal(member[0], net[0]);
    assert.equal(member[1]! >>> 8, net[1]! >>> 8, "a member's pseudonym is inside the network's");
  });

  it('IPv6: the /48 is kept; /64s of one /56 stay in one /56, distinct /64s stay distinct; the interface id is hidden', () => {
    const p = ipPseudonymizer(KEY);
    const a = p('2003:e2:1f00:1100::1');
    const b = p('2003:e2:1f00:1101::2'); // same /56 as a, another /64
    const c = p('2003:e2:1f00:1200::3'); // another /56
    const [wa, wb, wc, wa2] = [v6(a), v6(b), v6(c), v6(p('2003:e2:1f00:1100:aaaa:bbbb:cccc:dddd'))];
    const site = (w: Uint32Array) => `${w[0]}:${w[1]! >>> 16}`;
    for (const w of [wa, wb, wc]) assert.equal(site(w), site(v6('2003:e2:1f00::')), 'same /48');
    assert.equal(wa[1]! >>> 8, wb[1]! >>> 8, 'one /56 stays one /56');
    assert.notEqual(wa[1], wb[1], 'two /64s stay two');
    assert.notEqual(wa[1]! >>> 8, wc[1]! >>> 8, 'two /56s stay two');
    assert.equal(wa[1], wa2[1], 'one /64 stays one');
    assert.ok(!a.endsWith('::1'), a);
  });
});

describe('pseudonymised texts and prefixes', () => {
  it('IPv4 addresses and networks inside free text are replaced, version numbers are not', async () => {
    const { eventView, maskedPrefix } = await import('../../src/service/audit-export.ts');
    const m = numberMasker('pseudonymize', KEY);
    const p = ipPseudonymizer(KEY);
    const note = (text: string) => (eventView({ id: 'e', at: 0, type: 'list.add', data: { note: text } }, m).data as { note: string }).note;
    assert.equal(note('spike from 36.72.50.9.'), `spike from ${p('36.72.50.9')}.`);
    assert.equal(note('blocked 36.72.50.9/32 today'), `blocked ${p('36.72.50.9')}/32 today`);
    assert.equal(note('36.72.50.1-36.72.50.9'), `${p('36.72.50.1')}-${p('36.72.50.9')}`);
    assert.equal(note('Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36'), 'Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36');
    // A range's prefix stays, whatever limits.prefixDigits (up to 8); a prefix as long as a number is masked.
    const mask = numberMasker('mask');
    assert.equal(maskedPrefix('+3806712', mask), '+3806712');
    assert.equal(maskedPrefix('+6281234567890', mask), '+62812*****890');
  });
});

describe('a pseudonymised export', () => {
  it('names no number, address or device of the traffic, and replays to the decisions of the export in full', async () => {
    // One address of a /24 is a Tor exit by the operator's list: a fact of that address alone, which its
    // pseudonym (another address of the /24) does not have, so only the recorded facts can carry it.
    const dataDir = mkdtempSync(join(tmpdir(), 'otps-pseudo-'));
    mkdirSync(join(dataDir, 'intel'));
    writeFileSync(join(dataDir, 'intel', 'tor.txt'), '36.72.50.201\n');
    const t = await startTestApp({ keepDataDir: dataDir });
    try {
      const numbers: string[] = [];
      const ips: string[] = [];
      const devices: string[] = [];
      let r = 7;
      const rnd = () => (r = (r * 1103515245 + 12345) % 2147483648) / 2147483648;
      const send = async (ip: string, ua: string, deviceId: string | null, lang: string | null) => {
        const to = `+62812${String(Math.floor(rnd() * 1e8)).padStart(8, '0')}`;
        numbers.push(to);
        ips.push(ip);
        if (deviceId) devices.push(deviceId);
        const res = await t.request('POST', '/v1/verifications', { to, client: { ip, userAgent: ua, ...(deviceId ? { deviceId } : {}), ...(lang ? { acceptLanguage: lang } : {}), elapsedMs: 5000 } });
        if (res.status === 201 && rnd() < 0.7) await t.request('POST', '/v1/verifications/check', { id: res.body.id, code: t.lastCode(to), client: { ip } });
        t.clock.advance(7_000);
      };
      const phone = 'Mozilla/5.0 (Linux; Android 14) Chrome/130';
      // Block-list entries on a device, an address and an IPv6 /56: the export names them, and they must name
      // the same (pseudonymous) device, address and network as the traffic they catch.
      for (const entry of [
        { kind: 'device', value: 'dev-7' },
        { kind: 'ip', value: '36.72.50.103' },
        { kind: 'cidr', value: '2001:4860:1f00:1200::/56' },
      ]) {
        const r = await t.request('POST', '/v1/admin/lists', { list: 'block', ...entry, note: 'abuse' }, { key: t.adminKey });
        assert.equal(r.status, 201, r.text);
      }
      // One address over its per-IP limit (10 per 10 min), neighbours in its /24, IPv6 /64s of one /56 and of
      // another, a cloud server with a script, and one device on several addresses.
      for (let i = 0; i < 12; i++) await send('36.72.50.9', phone, `dev-shared-${i % 2}`, 'id-ID');
      for (let i = 1; i <= 8; i++) await send(`36.72.50.${100 + i}`, phone, `dev-${i}`, 'id-ID');
      for (let i = 0; i < 6; i++) await send(`2001:4860:1f00:${1100 + (i % 3)}::${i + 1}`, phone, `dev-v6-${i}`, 'en-US');
      for (let i = 0; i < 3; i++) await send(`2001:4860:1f00:1200::${i + 1}`, phone, null, 'en-US');
      for (let i = 0; i < 4; i++) await send('159.89.1.7', 'python-requests/2.31', null, null);
      for (let i = 0; i < 2; i++) await send('36.72.50.201', phone, `dev-tor-${i}`, 'en-US');

      const collect = async (mode: 'none' | 'pseudonymize') => {
        const lines: string[] = [];
        for await (const l of exportEvents(t.ctx.store, { mask: numberMasker(mode, mode === 'none' ? undefined : KEY) })) lines.push(l);
        return lines;
      };
      const full = await collect('none');
      const pseudo = await collect('pseudonymize');
      assert.equal(pseudo.length, full.length);
      assert.ok(full.length > 40, `${full.length} lines`);
      const text = pseudo.join('\n');
      for (const n of numbers) assert.ok(!text.includes(n), `number ${n} in the export`);
      for (const d of new Set(devices)) assert.ok(!text.includes(`"${d}"`), `device ${d} in the export`);
      for (const ip of new Set(ips)) assert.ok(!text.includes(`"${ip}"`), `address ${ip} in the export`);
      assert.ok(!text.includes('2001:4860:1f00:1200::/56'), 'the blocked network is pseudonymised');
      assert.ok(!text.includes('"dev-7"') && !text.includes('36.72.50.103'));
      const first = JSON.parse(pseudo.find((l) => JSON.parse(l).type === 'send')!);
      assert.ok(first.client.ip.startsWith('36.72.50.'), 'the /24 is kept');
      assert.equal(first.client.ipFacts.country, 'ID', 'the facts the decision saw');

      const replay = async (lines: string[]) => {
        const out: string[] = [];
        await replayLines(async function* () { yield* lines; }, (l) => void out.push(l), { config: { dataDir } });
        return out.map((l) => JSON.parse(l));
      };
      const [a, b] = [await replay(full), await replay(pseudo)];
      assert.deepEqual(b, a, 'the same decision on every line');
      const decisions = new Set(a.map((x) => x.decision ?? x.result));
      assert.ok(decisions.has('allow') && decisions.has('block') && decisions.has('approved'), [...decisions].join(','));
      assert.ok(a.some((x) => x.reasons?.includes('rate_limited.ip')), 'the per-address limit fired, in both');
      assert.ok(a.some((x) => x.reasons?.includes('ip.hosting') || x.reasons?.includes('score')), JSON.stringify(a.filter((x) => x.decision === 'block')));
      assert.ok(a.some((x) => x.reasons?.includes('ip.tor')), 'the Tor exit was judged as one, in both');
      assert.ok(a.filter((x) => x.reasons?.includes('list.block')).length >= 3, 'the block list caught device, address and network, in both');
    } finally {
      await t.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
