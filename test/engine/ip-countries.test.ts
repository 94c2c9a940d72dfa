/**
 * `ip.many_countries`: one IP (an IPv6 /64) asking for codes to numbers of more than `risk.ipCountries`
 * countries within 24 h — the spray of an international revenue-share fraud from the few addresses it holds.
 * The pure rule, then end to end through the real service (the replay driver builds the server's own context
 * and VerificationService), on the memory store.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideSend, isRuleTrip } from '../../src/engine/decide.ts';
import { ipCountrySpecs, addressOf, observationSpecs } from '../../src/engine/limits.ts';
import { DEFAULT_POLICY, withoutCaptcha } from '../../src/engine/policy.ts';
import { Replayer } from '../../src/replay/driver.ts';
import { facts, policy } from '../helpers/engine.ts';
import { browser as widgetBrowser, H, MIN, send, T0, WITH_CAPTCHA } from '../helpers/trace.ts';

const browser = (ip: string, deviceId: string) => widgetBrowser(ip, deviceId, 'en-US');

const P = DEFAULT_POLICY;
const N = P.risk.ipCountries;

/** Valid mobile numbers of eight countries (libphonenumber metadata), one range each. */
const ABROAD: [string, string][] = [
  ['ID', '+6281234560001'],
  ['MY', '+60123456789'],
  ['PH', '+639171234567'],
  ['NG', '+2348031234567'],
  ['AZ', '+994501234567'],
  ['LV', '+37122123456'],
  ['UZ', '+998901234567'],
  ['KE', '+254712345678'],
];

type SendOut = { decision: string; reasons: string[]; shadow?: string[] };

/** Run `fn` on a fresh replayer (the server's own service on a memory store), closed afterwards. */
async function replaying(opts: Parameters<typeof Replayer.create>[0], fn: (r: Replayer) => Promise<void>): Promise<void> {
  const r = await Replayer.create(opts);
  try {
    await fn(r);
  } finally {
    await r.close();
  }
}

describe('ip.many_countries (pure)', () => {
  it(`fires above risk.ipCountries (${N}); a solved proof-of-work does not clear it, a passed CAPTCHA does`, () => {
    assert.equal(decideSend(facts({ state: { ipCountries: N } }), P).decision, 'allow');
    const d = decideSend(facts({ state: { ipCountries: N + 1 } }), P);
    assert.equal(d.decision, 'challenge');
    assert.deepEqual(d.reasons, ['ip.many_countries']);
    assert.equal(decideSend(facts({ state: { ipCountries: N + 5 }, evidence: { captcha: 'passed' } }), P).decision, 'allow');
    assert.equal(isRuleTrip(d, P), false, 'a shared address (hotel, airport, VPN exit) is no escalation trip by itself');
    const raised = policy({ risk: { ipCountries: 6 } });
    assert.equal(decideSend(facts({ state: { ipCountries: 6 } }), raised).decision, 'allow');
    assert.equal(decideSend(facts({ state: { ipCountries: 7 } }), raised).decision, 'challenge');
  });

  it('without a CAPTCHA provider it runs in shadow: seen in the audit log, nobody refused', () => {
    const d = decideSend(facts({ state: { ipCountries: N + 3 } }), withoutCaptcha(P));
    assert.equal(d.decision, 'allow');
    assert.deepEqual(d.shadow, ['ip.many_countries']);
  });

  it('counts per IPv4 address and per IPv6 /64', () => {
    assert.equal(addressOf({ ip: '36.72.10.5', subnet: '36.72.10.0/24' }), '36.72.10.5');
    assert.equal(addressOf({ ip: '2001:db8:1:2::99', subnet: '2001:db8:1:2::/64' }), '2001:db8:1:2::/64');
    const t = ipCountrySpecs('36.72.10.5', 'ID');
    // Read for free by the observation call; recorded by one atomic call whose `seen` spec lets one racer count.
    assert.deepEqual([t.seen.cost, t.countries.cost], [0, 0]);
    assert.deepEqual(t.record.map((x) => [x.key, x.limit, x.cost ?? 1, x.windowMs]), [[t.seen.key, 1, 1, 86_400_000], [t.countries.key, t.countries.limit, 1, 86_400_000]]);
    assert.notEqual(ipCountrySpecs('36.72.10.5', 'MY').seen.key, t.seen.key);
    assert.equal(ipCountrySpecs('36.72.10.5', 'MY').countries.key, t.countries.key);
    // Both reads ride in the observation call (no second call for a country asked for before) unless the rule is off.
    const keys = (p: typeof P) => observationSpecs(facts(), p, null).specs.map((s) => s.key);
    assert.ok(keys(P).includes(t.seen.key) && keys(P).includes(t.countries.key), keys(P).join());
    const off = policy({ risk: { rules: { 'ip.many_countries': { action: 'score', weight: 60, mode: 'off' } } } });
    assert.ok(!keys(off).some((k) => k.startsWith('ipc')), keys(off).join());
  });
});

describe('ip.many_countries through the service', () => {
  it(`one IP spraying ${ABROAD.length} countries is challenged from the ${N + 1}th country on; repeats to one country do not count`, async () => {
    await replaying(WITH_CAPTCHA, async (r) => {
      let delivered = 0;
      r.delivery.onDeliver = () => void delivered++;
      let t = T0;
      const ip = '102.89.10.20';
      const out: SendOut[] = [];
      // Five numbers of the first country from the same IP (different numbers: one country, counted once).
      for (let i = 0; i < 5; i++) out.push((await r.line(send((t += MIN), `+62812345600${10 + i}`, browser(ip, `d-${i}`)))) as SendOut);
      assert.deepEqual(out.map((o) => o.decision), ['allow', 'allow', 'allow', 'allow', 'allow']);
      const rest: SendOut[] = [];
      for (const [, to] of ABROAD.slice(1)) rest.push((await r.line(send((t += MIN), to, browser(ip, `dx-${to}`)))) as SendOut);
      // Countries 2..N are allowed, N+1.. challenged with the rule as the reason.
      assert.deepEqual(rest.map((o) => o.decision), ABROAD.slice(1).map((_, i) => (i + 2 <= N ? 'allow' : 'challenge')));
      for (const o of rest.slice(N - 1)) assert.ok(o.reasons.includes('ip.many_countries'), o.reasons.join());
      assert.equal(delivered, 5 + N - 1);

      // Another IP is not affected; the sprayer's IP still is, also for a country it asked for before (the
      // IP's spread is the evidence, not the destination).
      const other = (await r.line(send((t += MIN), '+6281299990000', browser('102.89.10.21', 'd-other')))) as SendOut;
      assert.equal(other.decision, 'allow');
      const back = (await r.line(send((t += MIN), '+6281299990001', browser(ip, 'd-back')))) as SendOut;
      assert.equal(back.decision, 'challenge');

      // A day later the countries have left the window.
      const later = (await r.line(send((t += 25 * H), '+6281299990002', browser(ip, 'd-later')))) as SendOut;
      assert.equal(later.decision, 'allow');
    });
  });

  it('only the first request for a country records it (one extra store call); repeats ride in the observation call', async () => {
    await replaying(WITH_CAPTCHA, async (r) => {
      const records: string[] = [];
      const store = r.ctx.store as unknown as { consumeLimits: (...a: unknown[]) => Promise<unknown> };
      const consume = store.consumeLimits.bind(store);
      store.consumeLimits = (specs: unknown, now: unknown) => {
        const list = specs as { key: string; cost?: number }[];
        if (list.some((x) => x.key.startsWith('ipcc:') && (x.cost ?? 1) > 0)) records.push(list.map((x) => x.key).join(' '));
        return consume(specs, now);
      };
      let t = T0;
      const ip = '36.72.44.1';
      for (let i = 0; i < 4; i++) await r.line(send((t += MIN), `+62${['811', '813', '821', '852'][i]}55${i}81234`, browser(ip, `rep-${i}`)));
      assert.deepEqual(records, ['ipcc:36.72.44.1:ID ipc:36.72.44.1'], 'four requests for one country: recorded once');
      await r.line(send((t += MIN), '+60123456789', browser(ip, 'rep-my')));
      assert.equal(records.length, 2);
    });
  });

  it('an IPv6 sprayer rotating addresses inside its /64 is one address; another /56 is another', async () => {
    await replaying(WITH_CAPTCHA, async (r) => {
      let t = T0;
      const out: SendOut[] = [];
      for (const [i, [, to]] of ABROAD.slice(0, N + 1).entries()) out.push((await r.line(send((t += MIN), to, browser(`2001:db8:77:1::${i + 1}`, `v6-${i}`)))) as SendOut);
      assert.deepEqual(out.map((o) => o.decision), [...Array(N).fill('allow'), 'challenge']);
      // 2001:db8:77::/56 holds 2001:db8:77:1::/64 and 2001:db8:77:ff::/64; 2001:db8:77:100:: is the next /56.
      const nextSubnet = (await r.line(send((t += MIN), ABROAD[N + 1]![1], browser('2001:db8:77:100::1', 'v6-n')))) as SendOut;
      assert.equal(nextSubnet.decision, 'allow');
    });
  });

  it('an IPv6 sprayer rotating /64s through its /56 buys no countries: the /56 counts them at the same threshold', async () => {
    await replaying(WITH_CAPTCHA, async (r) => {
      let t = T0;
      const out: SendOut[] = [];
      // A fresh /64 of 2001:db8:88::/56 for every request, one country each.
      for (const [i, [, to]] of ABROAD.entries()) out.push((await r.line(send((t += MIN), to, browser(`2001:db8:88:${((i * 37) % 256).toString(16)}::1`, `rot-${i}`)))) as SendOut);
      assert.deepEqual(out.map((o) => o.decision), ABROAD.map((_, i) => (i < N ? 'allow' : 'challenge')));
      for (const o of out.slice(N)) assert.ok(o.reasons.includes('ip.many_countries'), o.reasons.join());
      // A country the /56 asked for before, from yet another /64 of it: still challenged (the spread is the evidence).
      const back = (await r.line(send((t += MIN), '+6281299990003', browser('2001:db8:88:fe::1', 'rot-back')))) as SendOut;
      assert.equal(back.decision, 'challenge');
      // An IPv4 /24 is not an allocation: its neighbours are other subscribers (carrier NAT pools).
      const v4: SendOut[] = [];
      for (const [i, [, to]] of ABROAD.entries()) v4.push((await r.line(send((t += MIN), to, browser(`102.89.11.${i + 1}`, `v4-${i}`)))) as SendOut);
      assert.deepEqual(v4.map((o) => o.decision), ABROAD.map(() => 'allow'));
    });
  });

  it('requests that were refused count too (the IP asked), and with the rule off nothing is counted', async () => {
    // Bots without widget evidence from a script: refused or challenged for other reasons, still counted.
    await replaying(WITH_CAPTCHA, async (r) => {
      let t = T0;
      const ip = '5.18.1.1';
      const script = { ip, userAgent: 'python-requests/2.31', formToken: 'missing', pow: 'missing', captcha: 'missing', honeypot: false, elapsedMs: null, headless: false, acceptLanguage: null };
      for (const [, to] of ABROAD.slice(0, N)) assert.notEqual(((await r.line(send((t += MIN), to, script))) as SendOut).decision, 'allow');
      // The same IP now behind a good browser, to a country of its own: the earlier refused requests count.
      const d = (await r.line(send((t += MIN), ABROAD[N]![1], browser(ip, 'good')))) as SendOut;
      assert.equal(d.decision, 'challenge');
      assert.ok(d.reasons.includes('ip.many_countries'), d.reasons.join());
    });

    await replaying({ ...WITH_CAPTCHA, policy: policy({ risk: { rules: { 'ip.many_countries': { action: 'score', weight: 60, mode: 'off' } } } }) }, async (off) => {
      const calls: string[] = [];
      const store = off.ctx.store as unknown as { consumeLimits: (...a: unknown[]) => Promise<unknown> };
      const consume = store.consumeLimits.bind(store);
      store.consumeLimits = (specs: unknown, now: unknown) => {
        for (const x of specs as { key: string }[]) calls.push(x.key);
        return consume(specs, now);
      };
      let t = T0;
      for (const [, to] of ABROAD) assert.equal(((await off.line(send((t += MIN), to, browser('102.89.10.30', `o-${to}`)))) as SendOut).decision, 'allow');
      assert.ok(calls.length > 0);
      assert.deepEqual(calls.filter((k) => k.startsWith('ipc')), [], 'no reading or counting for a rule that is off');
    });
  });
});
