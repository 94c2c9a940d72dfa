import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_PUMPING,
  binomialCdf,
  densityOf,
  DensityTracker,
  judgeDensity,
  judgeScope,
  lagShare,
  lagWeights,
  newProfile,
  offHoursBurst,
  parsePumpingConfig,
  quarantineMinutes,
  recordSend,
  SEND_WINDOWS,
  type ApprovalCounts,
  type ScopeInput,
  type SendCounts,
} from '../../src/engine/pumping.ts';

const cfg = DEFAULT_PUMPING;

/** Exact binomial CDF by the textbook sum (small n only). */
function naiveCdf(k: number, n: number, p: number): number {
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    let c = 1;
    for (let j = 0; j < i; j++) c = (c * (n - j)) / (j + 1);
    sum += c * p ** i * (1 - p) ** (n - i);
  }
  return sum;
}

/**
 * Window counts for a scope with a steady rate of `perMinute` real messages converting at `conv` (approvals
 * arriving per the default lag curve), plus `campaign` never-converting messages sent evenly over the last
 * `campaignMinutes`. Counts are what the store's windows would hold.
 */
function traffic(o: { perMinute: number; conv: number; campaign?: number; campaignMinutes?: number; history?: boolean }): { sends: SendCounts; approvals: ApprovalCounts } {
  const sendsIn = (from: number, to: number): number => {
    let n = o.perMinute * (to - from);
    const cm = o.campaignMinutes ?? 1;
    if (o.campaign) n += (o.campaign * Math.max(0, Math.min(to, cm) - Math.min(from, cm))) / cm;
    return n;
  };
  const history = o.history ?? true;
  const sends = Object.fromEntries(SEND_WINDOWS.map((w) => [w, sendsIn(0, Math.min(w, 60)) + (w === 1440 && history ? o.perMinute * 1380 : 0)])) as SendCounts;
  // Approvals in the last w minutes from a steady real stream: rate × conv × ∫ (F(a) − F(a − w)) da over all ages.
  const approvalsIn = (w: number): number => {
    let s = 0;
    for (let a = 0.05; a < w + 20; a += 0.1) s += (lagShare(cfg.conversion.approvalLag, a) - lagShare(cfg.conversion.approvalLag, a - w)) * 0.1;
    return Math.floor(o.perMinute * o.conv * s);
  };
  const approvals = { 5: approvalsIn(5), 15: approvalsIn(15), 60: approvalsIn(60), 1440: approvalsIn(60) + (history ? Math.floor(o.perMinute * 1380 * o.conv) : 0) } as ApprovalCounts;
  for (const k of Object.keys(sends)) (sends as Record<string, number>)[k] = Math.round((sends as Record<string, number>)[k]!);
  return { sends, approvals };
}

const scope = (t: { sends: SendCounts; approvals: ApprovalCounts }, over: Partial<ScopeInput> = {}): ScopeInput => ({
  scope: 'prefix:+62812',
  kind: 'prefix',
  countryBaseline: 0.8,
  offHours: null,
  ...t,
  ...over,
});

describe('pumping statistics', () => {
  it('binomialCdf equals the textbook sum and stays finite for large n', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 60 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (n, k, p) => {
        const a = binomialCdf(Math.min(k, n), n, p);
        const b = naiveCdf(Math.min(k, n), n, p);
        assert.ok(Math.abs(a - b) <= 1e-9 + 1e-7 * b, `n=${n} k=${k} p=${p}: ${a} vs ${b}`);
      }),
    );
    const big = binomialCdf(700, 1000, 0.8);
    assert.ok(big > 0 && big < 1e-10, String(big));
    assert.equal(binomialCdf(1000, 1000, 0.8), 1);
  });

  it('the lag curve is monotone from 0 to 1 and each window weight is a share', () => {
    let prev = 0;
    for (let a = 0; a <= 20; a += 0.25) {
      const f = lagShare(cfg.conversion.approvalLag, a);
      assert.ok(f >= prev && f <= 1);
      prev = f;
    }
    assert.equal(lagShare(cfg.conversion.approvalLag, 60), 1);
    for (const row of lagWeights(cfg)) for (const w of row) assert.ok(w >= 0 && w <= 1);
  });
});

describe('conversion test', () => {
  it('steady real traffic never fires, at any volume', () => {
    for (const perMinute of [0.2, 1, 3, 10, 40]) {
      assert.equal(judgeScope(scope(traffic({ perMinute, conv: 0.8 })), cfg), null, `perMinute=${perMinute}`);
    }
  });

  it('a busy prefix whose conversion dips by a fifth does not fire (no alarm on noise)', () => {
    const t = traffic({ perMinute: 5, conv: 0.8 });
    for (const w of [5, 15, 60] as const) t.approvals[w] = Math.floor(t.approvals[w] * 0.8);
    assert.equal(judgeScope(scope(t), cfg), null);
  });

  it('a campaign of never-converting messages fires within 50 messages unless it all lands in one minute', () => {
    // Within its first minute nobody can have typed a code yet: a 50-message burst sent inside 60 s is
    // judged by the approvals that do not arrive after it (docs/sms-pumping.md, "Fast bursts").
    for (const [campaign, minutes] of [
      [60, 1],
      [30, 2],
      [30, 5],
      [20, 20],
      [45, 45],
    ] as const) {
      const f = judgeScope(scope(traffic({ perMinute: 0.5, conv: 0.8, campaign, campaignMinutes: minutes })), cfg);
      assert.ok(f, `campaign of ${campaign} messages over ${minutes} min should fire`);
      assert.equal(f.rule, 'conversion_drop');
      assert.equal(f.scope, 'prefix:+62812');
      assert.ok(typeof f.figures.pValue === 'number' && (f.figures.pValue as number) <= cfg.conversion.alpha);
      assert.ok((f.figures.approvals as number) <= cfg.conversion.maxRatio * (f.figures.expected as number));
    }
  });

  it('a handful of unconverted messages is not enough volume to judge', () => {
    assert.equal(judgeScope(scope(traffic({ perMinute: 0, conv: 0.8, campaign: 5, campaignMinutes: 30, history: false })), cfg), null);
  });

  it('a new prefix is judged by its country baseline, or by the prior when the country has none', () => {
    const t = traffic({ perMinute: 0, conv: 0, campaign: 30, campaignMinutes: 10, history: false });
    const byCountry = judgeScope(scope(t), cfg);
    assert.equal(byCountry?.rule, 'new_prefix_unconverted');
    assert.equal(byCountry?.figures.baselineSource, 'country');
    const byPrior = judgeScope(scope(t, { countryBaseline: null }), cfg);
    assert.equal(byPrior?.figures.baselineSource, 'prior');
    assert.equal(byPrior?.figures.baseline, cfg.conversion.priorConversion);
  });

  it('a country needs much more volume than a prefix', () => {
    const t = traffic({ perMinute: 0.5, conv: 0.8, campaign: 30, campaignMinutes: 5 });
    assert.ok(judgeScope(scope(t), cfg));
    assert.equal(judgeScope(scope(t, { kind: 'country', scope: 'country:ID', countryBaseline: null }), cfg), null);
  });

  it('an off-hours burst relaxes the test: a partial drop fires only then', () => {
    const t = traffic({ perMinute: 2, conv: 0.8 });
    for (const w of [5, 15, 60] as const) t.approvals[w] = Math.floor(t.approvals[w] * 0.55);
    assert.equal(judgeScope(scope(t), cfg), null);
    assert.ok(judgeScope(scope(t, { offHours: { hour: 3, count: 120, usual: 2, busiest: 100 } }), cfg));
  });

  it('a scope that has been pumped all day is judged against the floor, not its own polluted history', () => {
    // 1–24 h ago: 600 messages, 30 approvals (5 %): the scope's own "baseline" is the attack itself.
    const t = traffic({ perMinute: 0, conv: 0, campaign: 25, campaignMinutes: 20, history: false });
    t.sends[1440] += 600;
    t.approvals[1440] += 30;
    const f = judgeScope(scope(t, { scope: 'prefix:+994551', countryBaseline: null }), cfg);
    assert.ok(f, 'fires');
    assert.equal(f.figures.baselineSource, 'own');
    assert.equal(f.figures.baseline, cfg.conversion.floorConversion);
  });

  it('an unproven country (no verified traffic) is judged on the small volume floor; a proven one on the large', () => {
    const t = traffic({ perMinute: 0, conv: 0, campaign: 25, campaignMinutes: 15, history: false });
    const unproven = judgeScope(scope(t, { kind: 'country', scope: 'country:LV', countryBaseline: null }), cfg);
    assert.ok(unproven);
    t.approvals[1440] = cfg.conversion.provenApprovals;
    assert.equal(judgeScope(scope(t, { kind: 'country', scope: 'country:LV', countryBaseline: null }), cfg), null);
  });

  it('disabled = never fires', () => {
    const t = traffic({ perMinute: 0.5, conv: 0.8, campaign: 200, campaignMinutes: 5 });
    assert.equal(judgeScope(scope(t), { ...cfg, enabled: false }), null);
  });
});

describe('dense and sequential numbers', () => {
  const rand = (seed: number) => {
    let s = seed >>> 0;
    return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  };

  it('random real numbers across a prefix never look dense or sequential', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 10, max: cfg.density.maxTracked }), (seed, count) => {
        const r = rand(seed);
        const numbers = Array.from({ length: count }, () => `+62812${String(Math.floor(r() * 1e8)).padStart(8, '0')}`);
        assert.equal(judgeDensity('prefix:+62812', densityOf(numbers, cfg), cfg), null);
      }),
      { numRuns: 200 },
    );
  });

  it('longest sequential run equals a brute-force count over mixed lengths and duplicates', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.constantFrom(9, 10, 11)), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 12 }),
        (picks, gap) => {
          const c = { ...cfg, density: { ...cfg.density, sequentialMaxGap: gap } };
          const numbers = picks.map(([v, len]) => `+62${String(81_000_000_000 + v * 3).slice(0, len)}${String(v).padStart(3, '0')}`);
          // Reference: for every distinct number, walk up through numbers of the same length within `gap`.
          const distinct = [...new Set(numbers)];
          const value = (n: string) => Number(n.slice(1));
          let longest = 0;
          for (const start of distinct) {
            let run = 1;
            let cur = start;
            for (;;) {
              const next = distinct
                .filter((n) => n.length === cur.length && value(n) > value(cur) && value(n) - value(cur) <= gap)
                .sort((a, b) => value(a) - value(b))[0];
              if (!next) break;
              run++;
              cur = next;
            }
            longest = Math.max(longest, run);
          }
          assert.equal(densityOf(numbers, c)!.run, longest);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('DensityTracker.mayFire is exactly "judgeDensity(densityOf(the same numbers)) finds something", through adds and deletes', () => {
    let fired = 0;
    let quiet = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 60 }), fc.constantFrom(11, 12)), { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 2, max: 7 }),
        (ops, blockDigits, minNumbers, sequentialMaxGap, sequentialMinRun) => {
          const c = { ...cfg, density: { ...cfg.density, blockDigits, minNumbers, sequentialMaxGap, sequentialMinRun } };
          const t = new DensityTracker(blockDigits);
          const set = new Set<string>();
          for (const [add, v, len] of ops) {
            // Numbers close together (runs, shared blocks) and of two lengths.
            const n = `+62${String(81_200_000_000 + v * 7).slice(0, len - 4)}${String(v % 1000).padStart(3, '0')}`;
            if (add) {
              t.add(n);
              set.add(n);
            } else {
              t.delete(n);
              set.delete(n);
            }
            const want = judgeDensity('prefix:+62812', densityOf([...set], c), c) !== null;
            assert.equal(t.mayFire(c), want, `after ${add ? 'adding' : 'deleting'} ${n} (${set.size} numbers)`);
            if (want) fired++;
            else quiet++;
          }
          assert.equal(t.size, set.size);
        },
      ),
      { numRuns: 400 },
    );
    assert.ok(fired > 200 && quiet > 1000, `both outcomes exercised (${fired} fired, ${quiet} quiet)`);
  });

  it('numbers walked through one block fire dense_numbers; consecutive ones fire even across blocks', () => {
    const dense = Array.from({ length: cfg.density.minNumbers }, (_, i) => `+6281299900${String(i * 97).padStart(3, '0')}`);
    const f = judgeDensity('prefix:+62812', densityOf(dense, cfg), cfg);
    assert.equal(f?.rule, 'dense_numbers');
    assert.equal(f?.figures.block, '+6281299900xxx');
    assert.equal(judgeDensity('prefix:+62812', densityOf(dense.slice(1), cfg), cfg), null, 'one fewer does not fire');

    const across = Array.from({ length: cfg.density.sequentialMinRun }, (_, i) => `+62812999${String(995 + i * 2).padStart(5, '0')}`);
    const g = judgeDensity('prefix:+62812', densityOf(across, cfg), cfg);
    assert.equal(g?.rule, 'sequential_numbers');
    assert.equal(g?.figures.run, cfg.density.sequentialMinRun);
  });
});

describe('hourly profile and off-hours bursts', () => {
  const H = 3_600_000;
  const day0 = Date.parse('2026-11-20T00:00:00Z');

  function learn(days: number): ReturnType<typeof newProfile> {
    let p = newProfile(day0);
    for (let h = 0; h < days * 24; h++) {
      const hour = h % 24;
      const n = hour >= 1 && hour <= 14 ? 60 : 3; // busy UTC daytime (Asia), quiet nights
      for (let i = 0; i < n; i++) p = recordSend(p, day0 + h * H + (i * H) / n);
    }
    return p;
  }

  it('learns the daily rhythm; a burst at a quiet hour is flagged, the same volume at a busy hour is not', () => {
    const p = learn(3);
    assert.ok(p.days >= 2.9 && p.days <= 3.1, String(p.days));
    let night = p;
    const t3 = day0 + 3 * 24 * H + 18 * H;
    for (let i = 0; i < 30; i++) night = recordSend(night, t3 + i * 1000);
    const b = offHoursBurst(night, t3 + 30_000, cfg);
    assert.ok(b, 'burst at 18:00 UTC');
    assert.equal(b.hour, 18);
    let day = p;
    const t2 = day0 + 3 * 24 * H + 5 * H;
    for (let i = 0; i < 30; i++) day = recordSend(day, t2 + i * 1000);
    assert.equal(offHoursBurst(day, t2 + 30_000, cfg), null);
  });

  it('needs minDays of history before any hour counts as quiet', () => {
    let p = learn(1);
    const t = day0 + 24 * H + 18 * H;
    for (let i = 0; i < 40; i++) p = recordSend(p, t + i);
    assert.equal(offHoursBurst(p, t + 100, cfg), null);
  });
});

describe('pumping config', () => {
  it('fills defaults, validates, and rejects inconsistent lag curves and durations', () => {
    const ok = parsePumpingConfig({ mode: { prefix: 'challenge' }, quarantineMinutes: 30 });
    assert.ok(ok.ok);
    assert.equal(ok.config.mode.prefix, 'challenge');
    assert.equal(ok.config.mode.country, DEFAULT_PUMPING.mode.country);
    assert.equal(ok.config.quarantineMinutes, 30);
    for (const bad of [
      { mode: { prefix: 'ban' } },
      { conversion: { maxRatio: 2 } },
      { conversion: { approvalLag: [{ minutes: 2, share: 0.5 }, { minutes: 1, share: 0.6 }] } },
      { quarantineMinutes: 120, maxQuarantineMinutes: 60 },
      { unknown: 1 },
      'yes',
    ]) {
      assert.equal(parsePumpingConfig(bad).ok, false, JSON.stringify(bad));
    }
  });

  it('repeat quarantines grow by the factor up to the cap', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((r) => quarantineMinutes(cfg, r)), [60, 120, 240, 480, 960, 1440]);
  });
});
