/**
 * `otp-shield lookup`: the real CLI in a child process, on a data dir that a real server used first
 * (a send and an approval, an admin list entry, a pause) and with operator intel files (tor.txt,
 * disposable-numbers.txt). Checks what it reports, what it would decide, and that it consumes nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY, DEFAULT_RULES } from '../../src/engine/policy.ts';
import { pauseSends } from '../../src/monitoring/pause.ts';
import { prefixOf } from '../../src/signals/phone.ts';
import { cli } from '../helpers/cli.ts';
import { startTestApp, type TestClock, outcome } from '../helpers/app.ts';


async function lookup(dataDir: string, args: string[]): Promise<any> {
  const r = await cli(dataDir, ['lookup', ...args, '--json']);
  assert.equal(r.code, 0, `lookup ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The CLI reads counters at the real time, so the server that writes them must run on real time too. */
function realClock(): TestClock {
  let offset = 0;
  const fn = (() => Date.now() + offset) as TestClock;
  Object.defineProperty(fn, 'now', { get: () => Date.now() + offset });
  fn.advance = (ms: number) => {
    offset += ms;
  };
  return fn;
}

const KNOWN = '+6281234567890'; // sent to and approved from DEVICE on 36.72.10.5
const LISTED = '+6281234567111'; // on the block list
const DISPOSABLE = '+6281234560999'; // in the operator's disposable-numbers.txt
const MY_NUMBER = '+60123456789'; // Malaysia: sends paused for country:MY
const DEVICE = 'dev-lookup-1';
const TOR_IP = '203.0.113.9'; // in the operator's tor.txt

describe('otp-shield lookup (real CLI on a data dir a real server used)', () => {
  let dir: string;
  let listedId: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'otps-cli-lookup-'));
    mkdirSync(join(dir, 'intel'));
    writeFileSync(join(dir, 'intel', 'tor.txt'), `# exit nodes\n203.0.113.0/24\n`);
    writeFileSync(join(dir, 'intel', 'disposable-numbers.txt'), `${DISPOSABLE}\n`);
    const t = await startTestApp({ keepDataDir: dir, clock: realClock() });
    try {
      const client = { ip: '36.72.10.5', deviceId: DEVICE, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };
      const sent = await t.request('POST', '/v1/verifications', { to: KNOWN, client });
      assert.equal(sent.status, 201, sent.text);
      const ok = await t.request('POST', '/v1/verifications/check', { id: sent.body.id, code: t.lastCode(KNOWN) });
      assert.deepEqual(outcome(ok.body), { status: 'approved' });
      const entry = await t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: LISTED, note: 'fraud ring' }, { key: t.adminKey });
      assert.equal(entry.status, 201, entry.text);
      listedId = entry.body.id;
      await pauseSends(t.ctx.store, { kind: 'country', country: 'MY' }, { now: Date.now(), note: 'incident 42', by: 'test' });
    } finally {
      await t.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports the number, the IP, the counters and the trust of a known device, and consumes nothing', async () => {
    const args = ['+62 812 3456 7890', '--ip', '36.72.10.5', '--device', DEVICE];
    const [a, b] = await Promise.all([lookup(dir, args), lookup(dir, args)]);
    const r = await lookup(dir, args);

    assert.equal(r.number.e164, KNOWN);
    assert.equal(r.number.region, 'ID');
    assert.equal(r.number.type, 'MOBILE');
    assert.equal(r.number.prefix, prefixOf(KNOWN, DEFAULT_POLICY.limits.prefixDigits));
    assert.equal(r.number.disposable, false);
    assert.equal(r.ip.country, 'ID');
    assert.equal(r.ip.subnet, '36.72.10.0/24');
    assert.equal(r.ip.tor, false);
    assert.deepEqual(r.lists, []);
    assert.equal(r.channelEnabled, true);
    assert.equal(r.testNumber, false);

    // The one real send is in the counters (the approved number now uses the trusted budget: nt: keys).
    assert.equal(r.observed.verifiedBefore, true);
    assert.equal(r.observed.trusted, true);
    const counter = (key: string) => r.counters.find((c: any) => c.key === key);
    assert.equal(counter('ip:36.72.10.5:10m')?.count, 1);
    assert.equal(counter('gl:1h')?.count, 1);
    assert.equal(counter(`nt:${KNOWN}:10m`)?.count, 0);
    assert.ok(r.decision.rules.some((x: any) => x.id === 'trusted_context'));
    // The request being looked up counts in the velocity it would be judged by: 1 earlier + itself.
    assert.deepEqual(r.observed.velocity, { device: 2, ip: 2 });
    // The IP asked for Indonesia before; this request is Indonesia again: one country.
    assert.equal(r.observed.ipCountries, 1);
    assert.equal(r.state.unverifiedSends, 0, 'the approval reset the number’s unverified sends');

    // Three lookups (two of them at once) saw the same counts: nothing was counted or consumed. Counters
    // of windows under 10 minutes (the 30 s cooldown) are left out: on a loaded machine the three CLI runs
    // can be more than 30 s apart, and the cooldown then rightly reads empty in the last one.
    const lasting = (cs: { windowSeconds: number }[]) => cs.filter((c) => c.windowSeconds >= 600);
    assert.ok(lasting(r.counters).length >= 5, 'the comparison still covers the number, IP and subnet counters');
    for (const other of [a, b]) {
      assert.deepEqual(lasting(other.counters), lasting(r.counters));
      assert.deepEqual(other.observed, r.observed);
    }
  });

  it('counts the IP’s destination countries as a send would (this one included), without counting', async () => {
    // 36.72.10.5 asked for Indonesia; Malaysia would be its second country, twice in a row (nothing counted).
    const [a, b] = await Promise.all([lookup(dir, [MY_NUMBER, '--ip', '36.72.10.5']), lookup(dir, [MY_NUMBER, '--ip', '36.72.10.5'])]);
    assert.equal(a.observed.ipCountries, 2);
    assert.equal(b.observed.ipCountries, 2);
    // An IP that never asked: this request is its first country.
    assert.equal((await lookup(dir, [MY_NUMBER, '--ip', '36.72.10.99'])).observed.ipCountries, 1);
  });

  it('decides as the server enforces the policy: without a CAPTCHA provider, rules only a CAPTCHA clears are shadow', async () => {
    // A policy that allows one destination country per IP: Malaysia is 36.72.10.5's second.
    const file = join(dir, 'one-country.json');
    writeFileSync(file, JSON.stringify({ risk: { ipCountries: 1 } }));
    const r = await lookup(dir, ['+60123456780', '--ip', '36.72.10.5', '--evidence', 'valid', '--policy', file]);
    assert.match(r.policy, /in shadow: no CAPTCHA provider/);
    const rule = r.decision.rules.find((x: any) => x.id === 'ip.many_countries');
    assert.equal(rule?.mode, 'shadow', JSON.stringify(r.decision.rules));
    assert.deepEqual(r.decision.decision.shadow, ['ip.many_countries']);
  });

  it('shows list hits with their entry, intel hits with their source, and the decision', async () => {
    const [r, human] = await Promise.all([lookup(dir, [LISTED, '--ip', TOR_IP]), cli(dir, ['lookup', LISTED, '--ip', TOR_IP])]);
    assert.equal(r.lists.length, 1);
    assert.equal(r.lists[0].id, listedId);
    assert.equal(r.lists[0].note, 'fraud ring');
    assert.equal(r.ip.tor, true);
    assert.deepEqual(r.ip.sources, ['file:tor.txt']);
    assert.equal(r.decision.outcome, 'block');
    assert.deepEqual(r.decision.decision.reasons, ['list.block']);
    const tor = r.decision.rules.find((x: any) => x.id === 'ip.tor');
    assert.equal(tor?.effect, `+${DEFAULT_RULES['ip.tor']?.weight}`);

    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^number +\+6281234567111 +region ID/m);
    assert.match(human.stdout, new RegExp(`^lists +block number \\+6281234567111 +${listedId}`, 'm'));
    assert.match(human.stdout, /sources file:tor\.txt/);
    assert.match(human.stdout, /^WOULD +BLOCK +reasons list\.block$/m);
  });

  it('the assumed evidence changes the decision: no widget vs a browser with the widget', async () => {
    const [missing, valid] = await Promise.all([lookup(dir, [DISPOSABLE, '--ip', '36.72.10.77']), lookup(dir, [DISPOSABLE, '--ip', '36.72.10.77', '--evidence', 'valid'])]);
    for (const r of [missing, valid]) {
      assert.equal(r.number.disposable, true);
      assert.deepEqual(r.number.sources, ['file:disposable-numbers.txt']);
      assert.ok(r.decision.rules.some((x: any) => x.id === 'number.disposable'));
    }
    assert.equal(missing.evidence.formToken, 'missing');
    assert.equal(missing.evidence.pow, 'missing');
    assert.equal(missing.decision.outcome, 'challenge');
    assert.equal(valid.evidence.formToken, 'valid');
    assert.equal(valid.evidence.pow, 'solved');
    assert.equal(valid.decision.score.powCredit, DEFAULT_POLICY.risk.powCredit);
    assert.equal(valid.decision.outcome, 'allow');
    assert.ok(valid.decision.score.effective < missing.decision.score.effective);
  });

  it('an IPv6 client: its /64, the /56 and /48 the subnet limit counts, and their counters', async () => {
    const ip = '2a01:598:1:2ff::1';
    const [r, human] = await Promise.all([lookup(dir, [KNOWN, '--ip', ip]), cli(dir, ['lookup', KNOWN, '--ip', ip])]);
    assert.equal(r.ip.subnet, '2a01:598:1:2ff::/64');
    assert.equal(r.ip.network, '2a01:598:1:200::/56');
    assert.equal(r.ip.site, '2a01:598:1::/48');
    const keys = r.counters.map((c: any) => c.key as string);
    assert.ok(keys.some((k: string) => k.startsWith('sn:2a01:598:1:200::/56:')), keys.join(' '));
    assert.ok(keys.some((k: string) => k.startsWith('st:2a01:598:1::/48:')), keys.join(' '));
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /subnet 2a01:598:1:2ff::\/64 +network 2a01:598:1:200::\/56 +site 2a01:598:1::\/48/);
    // As a proxy hands it on (brackets and a port), and a device id the server would discard: read as the server
    // reads them.
    const proxied = await lookup(dir, [KNOWN, '--ip', `[${ip}]:443`, '--device', 'not a device id']);
    assert.equal(proxied.ip.subnet, '2a01:598:1:2ff::/64');
    assert.equal(proxied.input.deviceId, null);
    assert.ok(!proxied.counters.some((c: any) => String(c.key).startsWith('dv:')), 'no counter for a discarded device id');
  });

  it('a pause applies to its country and shows in the state', async () => {
    const r = await lookup(dir, [MY_NUMBER, '--ip', '175.139.1.1', '--evidence', 'valid']);
    assert.equal(r.number.region, 'MY');
    assert.equal(r.state.paused, 'country:MY');
    assert.deepEqual(r.state.pauses.map((p: any) => [p.scope, p.note]), [['country:MY', 'incident 42']]);
    assert.equal(r.decision.outcome, 'block');
    assert.deepEqual(r.decision.decision.reasons, ['paused']);
  });

  it('refuses what it cannot parse, with a message, and says when a channel is disabled', async () => {
    const [num, ip, ev, channel] = await Promise.all([
      cli(dir, ['lookup', 'call me maybe']),
      cli(dir, ['lookup', KNOWN, '--ip', '300.1.1.1']),
      cli(dir, ['lookup', KNOWN, '--evidence', 'perfect']),
      cli(dir, ['lookup', KNOWN, '--channel', 'whatsapp']),
    ]);
    // Not an error: the answer is that the service would refuse the channel (only sms is enabled here).
    assert.equal(channel.code, 0, channel.stderr);
    assert.match(channel.stdout, /^WOULD +refuse: channel whatsapp is not enabled \(422 channel_disabled\)$/m);
    assert.equal(num.code, 1);
    assert.match(num.stderr, /call me maybe/);
    assert.equal(ip.code, 1);
    assert.match(ip.stderr, /not an IP address/);
    assert.equal(ev.code, 1);
    assert.match(ev.stderr, /--evidence is one of/);
  });
});
