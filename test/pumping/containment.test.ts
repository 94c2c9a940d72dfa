/**
 * The SMS-pumping target, end to end through the real service (the replay driver builds the server's own
 * context and VerificationService): after real traffic has established a baseline, a pumping campaign from
 * rotating residential IPs with valid-looking browser evidence is contained within its first 50 messages —
 * counted where messages leave (the replay's recording sender) — while a number that verified before in
 * the quarantined prefix keeps getting its codes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Replayer } from '../../src/replay/driver.ts';
import { DEFAULT_PUMPING } from '../../src/engine/pumping.ts';
import { seededUniform } from '../../src/sim/random.ts';

const T0 = Date.parse('2026-11-23T00:00:00.000Z');
const H = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

const rng = seededUniform;

const UA = 'Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36';

interface Ev {
  at: number;
  line: string;
  campaign?: string;
}

function browser(r: () => number, ip: string): Record<string, unknown> {
  return { ip, userAgent: UA, deviceId: `dev-${Math.floor(r() * 2 ** 40).toString(36)}`, formToken: 'valid', pow: 'solved', captcha: 'missing', honeypot: false, elapsedMs: 3000 + Math.floor(r() * 30_000), headless: false, acceptLanguage: 'id-ID' };
}

const sendLine = (at: number, to: string, client: Record<string, unknown>) => JSON.stringify({ at: iso(at), type: 'send', to, channel: 'sms', client });
const checkLine = (at: number, to: string, code: string) => JSON.stringify({ at: iso(at), type: 'check', to, code });
const randomNumber = (r: () => number, prefix: string) => `${prefix}${String(Math.floor(r() * 1e8)).padStart(8, '0')}`;
const carrierIp = (r: () => number) => `${['36.72', '110.136', '180.241', '114.124', '182.1'][Math.floor(r() * 5)]}.${Math.floor(r() * 256)}.${1 + Math.floor(r() * 254)}`;

/**
 * Real users: Poisson arrivals per prefix, each a fresh number, typing the code 15 s – 3 min later (a
 * lognormal around 40 s), 15 % never finishing, a few typing a wrong code first.
 */
function legit(r: () => number, prefixes: string[], perHour: number, from: number, to: number, out: Ev[], verified?: string[]): void {
  for (const prefix of prefixes) {
    for (let t = from; ; ) {
      t += Math.round((-Math.log(1 - r()) * H) / perHour);
      if (t >= to) break;
      const n = randomNumber(r, prefix);
      out.push({ at: t, line: sendLine(t, n, browser(r, carrierIp(r))) });
      if (r() < 0.85) {
        const lag = Math.min(180_000, Math.max(15_000, Math.round(40_000 * Math.exp(0.6 * gauss(r)))));
        if (r() < 0.05) out.push({ at: t + lag - 8000, line: checkLine(t + lag - 8000, n, 'wrong') });
        out.push({ at: t + lag, line: checkLine(t + lag, n, 'correct') });
        verified?.push(n);
      }
    }
  }
}

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Pumping: `perHour` messages to fresh numbers from `numbers()`, rotating residential IPs, valid browsers, never a check. */
function campaign(r: () => number, numbers: () => string, perHour: number, from: number, to: number, out: Ev[]): void {
  for (let t = from; ; ) {
    t += Math.max(1, Math.round((-Math.log(1 - r()) * H) / perHour));
    if (t >= to) break;
    const n = numbers();
    out.push({ at: t, line: sendLine(t, n, browser(r, carrierIp(r))), campaign: n });
  }
}

interface Outcome {
  campaignSent: number;
  campaignRequests: number;
  quarantines: { scope: string; reason: string; at: number }[];
  returning: { decisions: string[]; results: string[] };
}

async function run(events: Ev[], returningNumber: string | null, returningAt: number[]): Promise<Outcome> {
  const all = [...events];
  for (const at of returningAt) {
    if (!returningNumber) break;
    all.push({ at, line: sendLine(at, returningNumber, browser(rng(at), '36.72.200.7')) });
    all.push({ at: at + 30_000, line: checkLine(at + 30_000, returningNumber, 'correct') });
  }
  all.sort((a, b) => a.at - b.at);
  const campaignNumbers = new Set(all.filter((e) => e.campaign).map((e) => e.campaign!));
  const r = await Replayer.create();
  let campaignSent = 0;
  r.delivery.onDeliver = (to) => {
    if (campaignNumbers.has(to)) campaignSent++;
  };
  const returning = { decisions: [] as string[], results: [] as string[] };
  try {
    for (const e of all) {
      const out = (await r.line(e.line)) as Record<string, unknown>;
      if (returningNumber && e.line.includes(returningNumber) && e.at >= (returningAt[0] ?? Infinity)) {
        if ('decision' in out) returning.decisions.push(String(out.decision));
        else returning.results.push(String(out.result));
      }
    }
    const q = await r.ctx.store.queryEvents({ type: 'quarantine.start', order: 'asc', limit: 100 });
    return {
      campaignSent,
      campaignRequests: campaignNumbers.size,
      quarantines: q.map((e) => ({ scope: String(e.data?.scope), reason: String(e.reasons?.[0]), at: e.at })),
      returning,
    };
  } finally {
    await r.close();
  }
}

/** Three hours of real traffic on three prefixes, then the attack window with real traffic continuing. */
function baseline(seed: number, attackAt: number, attackEnd: number): { events: Ev[]; verified: string[] } {
  const r = rng(seed);
  const events: Ev[] = [];
  const verified: string[] = [];
  legit(r, ['+62812', '+62813', '+62821'], 40, T0, attackAt, events, verified);
  legit(r, ['+62812', '+62813', '+62821'], 40, attackAt, attackEnd, events);
  return { events, verified: verified.filter((n) => n.startsWith('+62812')) };
}

describe('SMS-pumping containment (replay of the real service)', () => {
  const attackAt = T0 + 3 * H;
  const attackEnd = attackAt + 2 * H;

  for (const perHour of [60, 600, 3000]) {
    it(`a campaign at ${perHour}/h to random numbers of an established prefix sends at most 50 messages; a verified number keeps working`, async (t) => {
      const { events, verified } = baseline(perHour, attackAt, attackEnd);
      const r = rng(perHour + 1);
      campaign(r, () => randomNumber(r, '+62812'), perHour, attackAt, attackEnd, events);
      const returning = verified[0]!;
      // The returning user comes back while the quarantine must be on: 20 min after the first quarantine at
      // the latest (asserted below), and once more later.
      const o = await run(events, returning, [attackAt + 40 * 60_000, attackAt + 70 * 60_000]);
      t.diagnostic(`campaign ${perHour}/h: ${o.campaignSent} of ${o.campaignRequests} messages sent; quarantines ${JSON.stringify(o.quarantines)}`);
      assert.ok(o.campaignRequests > 50, `the campaign tried ${o.campaignRequests} numbers`);
      assert.ok(o.campaignSent <= 50, `${o.campaignSent} campaign messages were sent (target ≤ 50)`);
      const q = o.quarantines.find((x) => x.scope === 'prefix:+62812');
      assert.ok(q, `prefix quarantined: ${JSON.stringify(o.quarantines)}`);
      assert.ok(q.at < attackAt + 40 * 60_000, 'quarantined before the returning user came back');
      assert.ok(!o.quarantines.some((x) => x.scope === 'prefix:+62813' || x.scope === 'prefix:+62821'), 'quiet prefixes untouched');
      assert.deepEqual(o.returning.decisions, ['allow', 'allow'], 'the number that verified before still gets its code');
      assert.deepEqual(o.returning.results, ['approved', 'approved']);
    });
  }

  it('a campaign walking a number range is caught by density even at a trickle', async (t) => {
    const { events, verified } = baseline(11, attackAt, attackEnd);
    let next = 99_900_000;
    campaign(rng(12), () => `+62812${String((next += 1 + (next % 3))).padStart(8, '0')}`, 30, attackAt, attackEnd, events);
    const o = await run(events, verified[1]!, [attackAt + 90 * 60_000]);
    t.diagnostic(`range walk: ${o.campaignSent} of ${o.campaignRequests} messages sent`);
    assert.ok(o.campaignSent <= 50, `${o.campaignSent} sent`);
    // The run threshold per quarantine: once before the first quarantine, once after it expires (the repeat
    // quarantine then lasts twice as long and outlives the two-hour campaign).
    assert.ok(o.campaignSent <= 2 * DEFAULT_PUMPING.density.sequentialMinRun, `a range walk is caught after a handful of numbers (sent ${o.campaignSent})`);
    const q = o.quarantines.find((x) => x.scope === 'prefix:+62812');
    assert.ok(q && (q.reason === 'dense_numbers' || q.reason === 'sequential_numbers'), JSON.stringify(o.quarantines));
    assert.deepEqual(o.returning.decisions, ['allow']);
  });

  it('a brand-new prefix that suddenly takes volume that never converts is quarantined by its country baseline', async (t) => {
    const { events } = baseline(21, attackAt, attackEnd);
    const r = rng(22);
    campaign(r, () => randomNumber(r, '+62896'), 600, attackAt, attackEnd, events);
    const o = await run(events, null, []);
    t.diagnostic(`new prefix: ${o.campaignSent} of ${o.campaignRequests} messages sent`);
    const q = o.quarantines.find((x) => x.scope === 'prefix:+62896');
    assert.ok(q, JSON.stringify(o.quarantines));
    assert.equal(q.reason, 'new_prefix_unconverted');
    assert.ok(o.campaignSent <= 50, `${o.campaignSent} sent`);
  });

  it('real traffic alone, including a quiet night and a daytime surge, is never quarantined', async () => {
    const r = rng(31);
    const events: Ev[] = [];
    legit(r, ['+62812', '+62813'], 40, T0, T0 + 6 * H, events);
    legit(r, ['+62812'], 900, T0 + 4 * H, T0 + 4 * H + 20 * 60_000, events); // a marketing push: 300 sign-ups in 20 min
    legit(r, ['+62821'], 3, T0, T0 + 6 * H, events); // a prefix with little volume
    const o = await run(events, null, []);
    assert.deepEqual(o.quarantines, []);
  });
});
