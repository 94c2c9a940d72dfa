/**
 * SMS-pumping detection (docs/sms-pumping.md): pure functions from counts to quarantine decisions.
 *
 * Pumping sends codes to numbers a fraudster earns from, and those codes are never typed. So each scope
 * (a destination prefix, a country) is judged by its conversion — approvals per message sent — against its
 * own baseline:
 *
 *  1. Conversion test, lag-aware. Real users type a code 20 s to a few minutes after it is sent, so young
 *     messages are not yet "missing" approvals. With the sends of the last hour in age buckets and an
 *     approval-lag curve F(age) (share of eventual approvals that have arrived by that age), the approvals
 *     expected in the last w minutes are E_w = b · Σ sends × (F(age) − F(age − w)) — a lower bound, taking
 *     each age bucket at its least favourable age. A scope fires when, in
 *     any window w ∈ {5, 15, 60} min (and the day, for scopes without their own baseline), E_w is large
 *     enough to judge (minExpected), the approvals seen C_w are
 *     at most maxRatio × E_w (a material drop, not noise in a busy prefix), and C_w that low is improbable
 *     under the baseline: binomial P(X ≤ C_w; n = E_w / b, b) ≤ alpha × min(1, w / 60). Short windows catch a campaign in its
 *     first minutes even inside a busy prefix; the hour catches a slow one.
 *  2. Baseline b: the scope's own conversion 1–24 h ago (the last hour is what is being judged, so an attack
 *     never teaches its own baseline); a prefix with too little history uses its country's, a country with
 *     too little history the prior (Authgear-style: thresholds come from each country's own verified volume).
 *     A new prefix that suddenly takes volume that never converts is therefore judged by its country.
 *  3. Dense / sequential numbers: many unconverted numbers inside one block of 10^blockDigits numbers, or a
 *     run of near-consecutive ones, is how ranges are walked; random real users almost never cluster so.
 *  4. Off-hours burst: volume at an hour that is normally quiet for the scope relaxes the conversion test
 *     (relaxedMaxRatio, relaxedAlpha), because such bursts are the typical shape of a campaign.
 *
 * Nothing here does I/O or reads a clock: `src/service/pumping.ts` gathers the counts (store sliding windows)
 * and writes quarantines.
 */
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { deepMerge } from '../lib/merge.ts';

// ---------------------------------------------------------------------------------------------- config

const Mode = Type.Union([Type.Literal('challenge'), Type.Literal('block')]);
const Ratio = Type.Number({ minimum: 0, maximum: 1 });

export const PumpingConfigSchema = Type.Object(
  {
    enabled: Type.Boolean(),
    /**
     * What a quarantine does to senders of the scope whose number never verified before. `unprovenCountry`:
     * a country with (almost) no verified traffic in the last day — nobody real to lock out there.
     */
    mode: Type.Object({ prefix: Mode, country: Mode, unprovenCountry: Mode }, { additionalProperties: false }),
    /**
     * What a `block` quarantine of a prefix does to a never-verified number's request that carries good browser evidence
     * (valid form token, solved proof-of-work, no automation markers, not a hosting/Tor/proxy/VPN address):
     * `captcha` asks for a passed CAPTCHA (rule `quarantine.captcha`), `block` refuses it like any other.
     */
    goodEvidence: Type.Union([Type.Literal('captcha'), Type.Literal('block')]),
    /** First quarantine of a scope; repeats within a week last `repeatFactor` times longer, up to the max. */
    quarantineMinutes: Type.Integer({ minimum: 1, maximum: 7 * 24 * 60 }),
    repeatFactor: Type.Number({ minimum: 1, maximum: 10 }),
    maxQuarantineMinutes: Type.Integer({ minimum: 1, maximum: 30 * 24 * 60 }),
    /** After an admin lifts a quarantine, the scope is not quarantined automatically again for this long. */
    liftGraceMinutes: Type.Integer({ minimum: 0, maximum: 7 * 24 * 60 }),
    conversion: Type.Object(
      {
        /** Approvals expected in a window before a prefix / a country is judged at all (the volume floor). */
        minExpected: Type.Number({ minimum: 1 }),
        countryMinExpected: Type.Number({ minimum: 1 }),
        /** Fire only when approvals seen ≤ maxRatio × expected. */
        maxRatio: Ratio,
        /**
         * … and when so few approvals are that improbable under the baseline (binomial lower tail). This is
         * the alpha of the hour window; shorter windows use alpha × minutes / 60 (they are tested more often).
         */
        alpha: Type.Number({ exclusiveMinimum: 0, maximum: 0.5 }),
        /** Sends 1–24 h ago a scope needs for its own baseline; below it the country's (then the prior) is used. */
        minBaselineSends: Type.Integer({ minimum: 1 }),
        /** Conversion assumed when neither the prefix nor its country has a baseline yet. */
        priorConversion: Type.Number({ minimum: 0.05, maximum: 1 }),
        /**
         * Lowest baseline a scope is judged against. A scope whose own history converts worse than this has
         * usually been pumped already (an attack must not become its own baseline); real OTP traffic converts
         * well above it (Vonage alerts at 35 %).
         */
        floorConversion: Ratio,
        /**
         * Approvals in the last day that make a country "proven" (it has real users). An unproven country is
         * judged on the prefix volume floor and quarantined with `mode.unprovenCountry`.
         */
        provenApprovals: Type.Integer({ minimum: 1 }),
        /**
         * Approval-lag curve: share of a message's eventual approvals that have arrived by each age (minutes),
         * piecewise linear between points, 1 after the last one. Lower shares = more patient = fewer false
         * alarms on slow users, later detection.
         */
        approvalLag: Type.Array(
          Type.Object({ minutes: Type.Number({ minimum: 0, maximum: 60 }), share: Ratio }, { additionalProperties: false }),
          { minItems: 1, maxItems: 16 },
        ),
      },
      { additionalProperties: false },
    ),
    density: Type.Object(
      {
        enabled: Type.Boolean(),
        /** Unconverted numbers sent to in this many minutes are compared. */
        windowMinutes: Type.Integer({ minimum: 1, maximum: 24 * 60 }),
        /** A block is all numbers that differ only in their last `blockDigits` digits (3 → 1,000 numbers). */
        blockDigits: Type.Integer({ minimum: 1, maximum: 6 }),
        /** Unconverted numbers in one block that fire the rule. */
        minNumbers: Type.Integer({ minimum: 2 }),
        /** Numbers at most this far apart are "sequential"; a run of `sequentialMinRun` of them fires the rule. */
        sequentialMaxGap: Type.Integer({ minimum: 1 }),
        sequentialMinRun: Type.Integer({ minimum: 2 }),
        /** Recent numbers remembered per prefix (memory bound). */
        maxTracked: Type.Integer({ minimum: 10, maximum: 10_000 }),
      },
      { additionalProperties: false },
    ),
    renew: Type.Object(
      {
        enabled: Type.Boolean(),
        /**
         * An automatic quarantine that is about to end is renewed (reason `attack_persists`) when, in its last
         * hour, it refused at least max(minRefused, factor × the scope's usual hourly volume) distinct numbers:
         * a campaign that is still going would otherwise get a fresh batch through at every expiry. The usual
         * volume is taken when the scope's first quarantine of the run starts (not later: the quarantine holds
         * the volume down): the larger of its last day's messages / 24 and its last hour's.
         */
        factor: Type.Number({ minimum: 1 }),
        minRefused: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    offHours: Type.Object(
      {
        enabled: Type.Boolean(),
        /** An hour (UTC) is quiet for a scope when its usual volume is ≤ quietShare × the scope's busiest hour. */
        quietShare: Ratio,
        /** A burst: this hour's sends ≥ max(minSends, factor × the usual volume of this hour). */
        minSends: Type.Integer({ minimum: 1 }),
        factor: Type.Number({ minimum: 1 }),
        /** Days of history before hours can be called quiet. */
        minDays: Type.Number({ minimum: 0 }),
        /** During a burst the conversion test uses these instead of maxRatio and alpha. */
        relaxedMaxRatio: Ratio,
        relaxedAlpha: Type.Number({ exclusiveMinimum: 0, maximum: 0.5 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type PumpingConfig = Static<typeof PumpingConfigSchema>;

export const DEFAULT_PUMPING: PumpingConfig = {
  enabled: true,
  mode: { prefix: 'block', country: 'challenge', unprovenCountry: 'block' },
  goodEvidence: 'captcha',
  quarantineMinutes: 60,
  repeatFactor: 2,
  maxQuarantineMinutes: 24 * 60,
  liftGraceMinutes: 60,
  conversion: {
    minExpected: 4,
    countryMinExpected: 30,
    maxRatio: 0.5,
    alpha: 1e-4,
    minBaselineSends: 30,
    priorConversion: 0.5,
    floorConversion: 0.35,
    provenApprovals: 10,
    // From first principles, set before the simulator existed and not tuned on it: SMS arrive in 5–20 s,
    // reading and typing (or autofill) takes 10–40 s, so about half of the eventual approvals arrive within a
    // minute; stragglers take minutes. Kept on the slow side of that estimate (docs/sms-pumping.md).
    approvalLag: [
      { minutes: 0, share: 0 },
      { minutes: 0.25, share: 0.05 },
      { minutes: 0.5, share: 0.25 },
      { minutes: 1, share: 0.55 },
      { minutes: 2, share: 0.8 },
      { minutes: 5, share: 0.93 },
      { minutes: 10, share: 0.98 },
      { minutes: 15, share: 1 },
    ],
  },
  density: { enabled: true, windowMinutes: 60, blockDigits: 3, minNumbers: 8, sequentialMaxGap: 10, sequentialMinRun: 6, maxTracked: 200 },
  renew: { enabled: true, factor: 4, minRefused: 20 },
  offHours: { enabled: true, quietShare: 0.25, minSends: 20, factor: 5, minDays: 2, relaxedMaxRatio: 0.8, relaxedAlpha: 0.01 },
};

export type PumpingConfigResult = { ok: true; config: PumpingConfig } | { ok: false; errors: { path: string; message: string }[] };

/** Validate a (partial) pumping section over the defaults. */
export function parsePumpingConfig(doc: unknown): PumpingConfigResult {
  if (doc === undefined || doc === null) return { ok: true, config: DEFAULT_PUMPING };
  if (typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, errors: [{ path: '/', message: 'must be an object' }] };
  const merged = deepMerge(structuredClone(DEFAULT_PUMPING) as unknown as Record<string, unknown>, doc as Record<string, unknown>);
  if (!Value.Check(PumpingConfigSchema, merged)) {
    return { ok: false, errors: [...Value.Errors(PumpingConfigSchema, merged)].slice(0, 20).map((e) => ({ path: e.instancePath || '/', message: e.message })) };
  }
  const cfg = merged as unknown as PumpingConfig;
  const lag = cfg.conversion.approvalLag;
  for (let i = 1; i < lag.length; i++) {
    if (lag[i]!.minutes <= lag[i - 1]!.minutes || lag[i]!.share < lag[i - 1]!.share) {
      return { ok: false, errors: [{ path: `/conversion/approvalLag/${i}`, message: 'points must have increasing minutes and non-decreasing shares' }] };
    }
  }
  if (cfg.maxQuarantineMinutes < cfg.quarantineMinutes) return { ok: false, errors: [{ path: '/maxQuarantineMinutes', message: 'must be at least quarantineMinutes' }] };
  return { ok: true, config: cfg };
}

// ------------------------------------------------------------------------------------------ counts

/**
 * Send-count windows (minutes). Their differences are the age buckets of the lag-aware expectation; they are
 * fine where the lag curve is steep (the first minutes), so that the lower bound below stays close.
 */
export const SEND_WINDOWS = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 15, 30, 60, 1440] as const;
/** Approval-count windows (minutes): the windows the conversion test judges, plus the baseline day. */
export const APPROVAL_WINDOWS = [5, 15, 60, 1440] as const;
/**
 * Windows the conversion test judges. The day is judged only for scopes without a baseline of their own
 * (their own day is what their baseline is made of): a new range or an unserved country that takes a
 * trickle of never-converting messages all day is caught there.
 */
export const JUDGED_WINDOWS = [5, 15, 60, 1440] as const;

export type SendCounts = Record<(typeof SEND_WINDOWS)[number], number>;
export type ApprovalCounts = Record<(typeof APPROVAL_WINDOWS)[number], number>;

/** Age buckets [from, to) in minutes: consecutive send windows. */
const BUCKETS: [number, number][] = SEND_WINDOWS.map((w, i) => [i === 0 ? 0 : SEND_WINDOWS[i - 1]!, w]);

function bucketCounts(s: SendCounts): number[] {
  // Windows nest (the 5-minute count includes the 3-minute one); clamp in case counters disagree.
  return SEND_WINDOWS.map((w, i) => Math.max(0, s[w] - (i === 0 ? 0 : s[SEND_WINDOWS[i - 1]!])));
}

/** The approval-lag curve F(ageMinutes) ∈ [0, 1]. */
export function lagShare(lag: PumpingConfig['conversion']['approvalLag'], age: number): number {
  if (age <= 0) return 0;
  let prev = { minutes: 0, share: 0 };
  for (const p of lag) {
    if (age <= p.minutes) {
      const span = p.minutes - prev.minutes;
      return span <= 0 ? p.share : prev.share + ((p.share - prev.share) * (age - prev.minutes)) / span;
    }
    prev = p;
  }
  return 1;
}

/**
 * For each judged window w and age bucket: the share of a message's eventual approvals that land inside the
 * window, F(age) − F(age − w), at its *smallest* over the ages of the bucket. Where in its bucket a message
 * was sent is unknown (traffic is bursty: a marketing push, then a rate limit), so the expectation is a
 * lower bound: the detector may be late by a bucket, never alarmed by how sends fell inside one.
 * Computed once per config.
 */
const weightCache = new WeakMap<object, number[][]>();
export function lagWeights(cfg: PumpingConfig): number[][] {
  const hit = weightCache.get(cfg.conversion.approvalLag);
  if (hit) return hit;
  const STEPS = 480;
  const w = JUDGED_WINDOWS.map((win) =>
    BUCKETS.map(([a, b]) => {
      let min = Infinity;
      for (let i = 0; i <= STEPS; i++) {
        const age = a + ((b - a) * i) / STEPS;
        min = Math.min(min, lagShare(cfg.conversion.approvalLag, age) - lagShare(cfg.conversion.approvalLag, age - win));
      }
      return Math.max(0, min);
    }),
  );
  weightCache.set(cfg.conversion.approvalLag, w);
  return w;
}

// ---------------------------------------------------------------------------------------- statistics

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return Math.max(a, b) + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/** P(X ≤ k) for X ~ Binomial(n, p), computed in log space (exact; n up to a few hundred thousand). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n || p <= 0) return 1;
  if (p >= 1) return 0;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  let term = n * lq; // log P(X = 0)
  let sum = term;
  for (let i = 0; i < k; i++) {
    term += Math.log((n - i) / (i + 1)) + lp - lq;
    sum = logAdd(sum, term);
  }
  return Math.min(1, Math.exp(sum));
}

// ------------------------------------------------------------------------------------------ baseline

export type BaselineSource = 'own' | 'country' | 'prior';

/** A scope's own conversion 1–24 h ago, or null when it sent too little then to have one. */
export function ownBaseline(sends: SendCounts, approvals: ApprovalCounts, cfg: PumpingConfig): number | null {
  const s = sends[1440] - sends[60];
  if (s < cfg.conversion.minBaselineSends) return null;
  const a = Math.max(0, approvals[1440] - approvals[60]);
  // Clamped: a scope that never converted has no meaningful "drop", and >1 is resends/approval skew.
  return Math.min(1, Math.max(0.02, a / s));
}

// --------------------------------------------------------------------------------------------- rules

export interface OffHoursBurst {
  hour: number;
  count: number;
  usual: number;
  busiest: number;
}

export interface ConversionFigures {
  windowMinutes: number;
  expected: number;
  approvals: number;
  /** Messages the expectation corresponds to (expected / baseline). */
  matured: number;
  /** approvals / matured. */
  conversion: number;
  baseline: number;
  baselineSource: BaselineSource;
  pValue: number;
}

export interface ScopeInput {
  /** `prefix:+62812` or `country:ID`. */
  scope: string;
  kind: 'prefix' | 'country';
  sends: SendCounts;
  approvals: ApprovalCounts;
  /** For a prefix: the country's baseline (null if the country has none either). */
  countryBaseline: number | null;
  offHours: OffHoursBurst | null;
}

export type PumpingRule = 'conversion_drop' | 'new_prefix_unconverted' | 'dense_numbers' | 'sequential_numbers';

export interface Finding {
  scope: string;
  rule: PumpingRule;
  /** Everything the decision used, for the audit event and the admin view. */
  figures: Record<string, unknown>;
}

/** The baseline a scope is judged by (never below the floor), and where it came from. */
export function baselineFor(input: Pick<ScopeInput, 'kind' | 'sends' | 'approvals' | 'countryBaseline'>, cfg: PumpingConfig): { baseline: number; source: BaselineSource } {
  const floor = cfg.conversion.floorConversion;
  const own = ownBaseline(input.sends, input.approvals, cfg);
  if (own !== null) return { baseline: Math.max(floor, own), source: 'own' };
  if (input.kind === 'prefix' && input.countryBaseline !== null) return { baseline: Math.max(floor, input.countryBaseline), source: 'country' };
  return { baseline: Math.max(floor, cfg.conversion.priorConversion), source: 'prior' };
}

/** A country with real users: enough approvals in the last day. */
export function isProven(approvals: ApprovalCounts, cfg: PumpingConfig): boolean {
  return approvals[1440] >= cfg.conversion.provenApprovals;
}

/** The conversion test over every judged window; the first window that fires, else the closest call. */
export function conversionTest(input: ScopeInput, cfg: PumpingConfig): { fired: boolean; figures: ConversionFigures | null } {
  const { baseline, source } = baselineFor(input, cfg);
  const weights = lagWeights(cfg);
  const buckets = bucketCounts(input.sends);
  // A proven country is big: judge it on more volume. An unproven one has nobody to protect.
  const minExpected = input.kind === 'country' && isProven(input.approvals, cfg) ? cfg.conversion.countryMinExpected : cfg.conversion.minExpected;
  const burst = input.offHours !== null && cfg.offHours.enabled;
  const maxRatio = burst ? Math.max(cfg.conversion.maxRatio, cfg.offHours.relaxedMaxRatio) : cfg.conversion.maxRatio;
  const baseAlpha = burst ? Math.max(cfg.conversion.alpha, cfg.offHours.relaxedAlpha) : cfg.conversion.alpha;
  let closest: ConversionFigures | null = null;
  for (const [wi, win] of JUDGED_WINDOWS.entries()) {
    if (win === 1440 && source === 'own') continue;
    const share = buckets.reduce((sum, n, bi) => sum + n * weights[wi]![bi]!, 0);
    const expected = baseline * share;
    if (expected < minExpected) continue;
    const approvals = input.approvals[win];
    const matured = share;
    const figures: ConversionFigures = {
      windowMinutes: win,
      expected: round(expected),
      approvals,
      matured: round(matured),
      conversion: round(matured > 0 ? approvals / matured : 0),
      baseline: round(baseline),
      baselineSource: source,
      pValue: 1,
    };
    if (approvals > maxRatio * expected) {
      if (!closest || approvals / expected < closest.approvals / Math.max(1e-9, closest.expected)) closest = figures;
      continue;
    }
    figures.pValue = binomialCdf(approvals, Math.max(1, Math.round(matured)), baseline);
    // A day holds 12 times more 5-minute windows than hours: each scope is tested that much more often on
    // short windows, so their alpha is divided accordingly (Bonferroni over windows of a day).
    if (figures.pValue <= baseAlpha * Math.min(1, win / 60)) return { fired: true, figures };
    if (!closest || figures.pValue < closest.pValue) closest = figures;
  }
  return { fired: false, figures: closest };
}

/** Judge one scope by conversion. */
export function judgeScope(input: ScopeInput, cfg: PumpingConfig): Finding | null {
  if (!cfg.enabled) return null;
  const t = conversionTest(input, cfg);
  if (!t.fired || !t.figures) return null;
  const rule: PumpingRule = input.kind === 'prefix' && t.figures.baselineSource !== 'own' ? 'new_prefix_unconverted' : 'conversion_drop';
  return {
    scope: input.scope,
    rule,
    figures: {
      ...t.figures,
      sends: { ...input.sends },
      approvalsByWindow: { ...input.approvals },
      ...(input.offHours ? { offHours: input.offHours } : {}),
    },
  };
}

// ------------------------------------------------------------------------------------ dense numbers

export interface DensityFigures {
  /** The block with the most unconverted numbers, e.g. `+62812345` + `xxx`. */
  block: string;
  blockCount: number;
  /** Longest run of numbers each within sequentialMaxGap of the previous, and where it starts. */
  run: number;
  runStart: string;
  numbers: number;
}

/** Dense / sequential figures for the unconverted numbers recently sent to in one prefix (E.164 strings). */
export function densityOf(numbers: readonly string[], cfg: PumpingConfig): DensityFigures | null {
  if (numbers.length === 0) return null;
  const d = cfg.density;
  const blocks = new Map<string, number>();
  let block = '';
  let blockCount = 0;
  for (const n of numbers) {
    const b = n.slice(0, Math.max(2, n.length - d.blockDigits));
    const c = (blocks.get(b) ?? 0) + 1;
    blocks.set(b, c);
    if (c > blockCount) {
      blockCount = c;
      block = b;
    }
  }
  // Sequential runs: numbers of equal length compared as integers (15 digits fit a double exactly). Digit
  // strings of equal length sort as their values, so the sort compares strings (no objects per number).
  const sorted = [...new Set(numbers)].sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  let run = 1;
  let runStart = sorted[0]!;
  let cur = 1;
  let curStart = sorted[0]!;
  let prevValue = Number(sorted[0]!.slice(1));
  for (let i = 1; i < sorted.length; i++) {
    const x = sorted[i]!;
    const v = Number(x.slice(1));
    if (x.length === sorted[i - 1]!.length && v - prevValue <= d.sequentialMaxGap) cur++;
    else {
      cur = 1;
      curStart = x;
    }
    prevValue = v;
    if (cur > run) {
      run = cur;
      runStart = curStart;
    }
  }
  return { block: `${block}${'x'.repeat(d.blockDigits)}`, blockCount, run, runStart, numbers: numbers.length };
}

/**
 * The recent unconverted numbers of one prefix, kept so that "could the density rule fire?" costs one pass
 * without sorting or allocating: block counts are kept per block, and numbers sorted per length. `mayFire`
 * is exact — true iff `judgeDensity(…, densityOf(numbers), cfg)` would return a finding for the same set —
 * so the service computes `densityOf` (and its figures, with its own tie-breaking) only when it does.
 * test/pumping/engine.test.ts checks that equivalence on random sequences.
 */
export class DensityTracker {
  private readonly blocks = new Map<string, number>();
  /** Numbers of each length (E.164 string length), as values, ascending. */
  private readonly byLength = new Map<number, number[]>();
  private readonly members = new Set<string>();

  constructor(private readonly blockDigits: number) {}

  /** The block digits this tracker was built for (a policy change rebuilds it). */
  get digits(): number {
    return this.blockDigits;
  }

  get size(): number {
    return this.members.size;
  }

  private blockOf(n: string): string {
    return n.slice(0, Math.max(2, n.length - this.blockDigits));
  }

  add(n: string): void {
    if (this.members.has(n)) return;
    this.members.add(n);
    const b = this.blockOf(n);
    this.blocks.set(b, (this.blocks.get(b) ?? 0) + 1);
    let vals = this.byLength.get(n.length);
    if (!vals) this.byLength.set(n.length, (vals = []));
    const v = Number(n.slice(1));
    vals.splice(lowerBound(vals, v), 0, v);
  }

  delete(n: string): void {
    if (!this.members.delete(n)) return;
    const b = this.blockOf(n);
    const c = (this.blocks.get(b) ?? 1) - 1;
    if (c > 0) this.blocks.set(b, c);
    else this.blocks.delete(b);
    const vals = this.byLength.get(n.length)!;
    vals.splice(lowerBound(vals, Number(n.slice(1))), 1);
    if (vals.length === 0) this.byLength.delete(n.length);
  }

  /** Whether the density rule fires for the tracked numbers (see the class comment). */
  mayFire(cfg: PumpingConfig): boolean {
    const d = cfg.density;
    if (!cfg.enabled || !d.enabled || this.members.size === 0) return false;
    for (const c of this.blocks.values()) if (c >= d.minNumbers) return true;
    for (const vals of this.byLength.values()) {
      let run = 1;
      for (let i = 1; i < vals.length; i++) {
        run = vals[i]! - vals[i - 1]! <= d.sequentialMaxGap ? run + 1 : 1;
        if (run >= d.sequentialMinRun) return true;
      }
      if (run >= d.sequentialMinRun) return true;
    }
    return false;
  }
}

/** First index whose value is ≥ v in an ascending array. */
function lowerBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function judgeDensity(scope: string, figures: DensityFigures | null, cfg: PumpingConfig): Finding | null {
  if (!cfg.enabled || !cfg.density.enabled || !figures) return null;
  if (figures.blockCount >= cfg.density.minNumbers) return { scope, rule: 'dense_numbers', figures: { ...figures } };
  if (figures.run >= cfg.density.sequentialMinRun) return { scope, rule: 'sequential_numbers', figures: { ...figures } };
  return null;
}

// ---------------------------------------------------------------------------------- hourly profile

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** A scope's usual sends per UTC hour of day (EWMA over days), and the hour being counted. */
export interface HourProfile {
  usual: number[];
  /** Days of history folded in (fractional while the first day fills). */
  days: number;
  hourStart: number;
  count: number;
}

export function newProfile(now: number): HourProfile {
  return { usual: new Array<number>(24).fill(0), days: 0, hourStart: Math.floor(now / HOUR_MS) * HOUR_MS, count: 0 };
}

/** Weight of a new day in the EWMA: a week of memory. */
const PROFILE_ALPHA = 1 - Math.pow(2, -1 / 7);

/**
 * Advance the profile to `now` (folding finished hours in; hours nobody sent in count as 0) and count one
 * send. Returns a new object.
 */
export function recordSend(p: HourProfile, now: number): HourProfile {
  const hourStart = Math.floor(now / HOUR_MS) * HOUR_MS;
  if (hourStart <= p.hourStart) return { ...p, count: p.count + 1 };
  const usual = [...p.usual];
  let days = p.days;
  // Fold the finished hour, then empty hours up to now (at most a day of them matters).
  const gap = Math.min(24, Math.round((hourStart - p.hourStart) / HOUR_MS));
  for (let i = 0; i < gap; i++) {
    const h = new Date(p.hourStart + i * HOUR_MS).getUTCHours();
    const n = i === 0 ? p.count : 0;
    // While the first day fills, the first observation of an hour is taken as is.
    usual[h] = days < 1 ? n : usual[h]! + PROFILE_ALPHA * (n - usual[h]!);
    days += 1 / 24;
  }
  if (hourStart - p.hourStart > DAY_MS) days += (hourStart - p.hourStart - gap * HOUR_MS) / DAY_MS;
  return { usual, days, hourStart, count: 1 };
}

/** A burst at an hour that is normally quiet for this scope, or null. */
export function offHoursBurst(p: HourProfile, now: number, cfg: PumpingConfig): OffHoursBurst | null {
  const o = cfg.offHours;
  if (!o.enabled || p.days < o.minDays) return null;
  const hour = new Date(now).getUTCHours();
  const usual = p.usual[hour] ?? 0;
  const busiest = Math.max(...p.usual);
  if (busiest <= 0 || usual > o.quietShare * busiest) return null;
  if (p.count < Math.max(o.minSends, o.factor * usual)) return null;
  return { hour, count: p.count, usual: round(usual), busiest: round(busiest) };
}

// -------------------------------------------------------------------------------------------- renewal

/** Reasons of quarantines the detector starts (an admin's quarantine, whatever its reason, is never renewed). */
export const AUTOMATIC_REASONS: readonly string[] = ['conversion_drop', 'new_prefix_unconverted', 'dense_numbers', 'sequential_numbers', 'attack_persists'];

export interface RenewalFigures {
  /** Distinct numbers of the scope the quarantine refused in the last hour. */
  refused: number;
  /** The scope's usual hourly volume (messages to distinct numbers per hour) before its quarantines began. */
  usual: number;
  threshold: number;
}

/**
 * Whether a quarantine that is ending should be renewed because the scope is still being hammered: the
 * numbers it refused in its last hour against the scope's usual hourly volume. Null when it should end.
 */
export function judgeRenewal(reason: string, refused: number, usual: number, cfg: PumpingConfig): RenewalFigures | null {
  if (!cfg.enabled || !cfg.renew.enabled || !AUTOMATIC_REASONS.includes(reason)) return null;
  const threshold = Math.max(cfg.renew.minRefused, cfg.renew.factor * usual);
  return refused >= threshold ? { refused, usual: round(usual), threshold: round(threshold) } : null;
}

// --------------------------------------------------------------------------------------- durations

/** Quarantine length for the (repeats+1)-th quarantine of a scope within a week. */
export function quarantineMinutes(cfg: PumpingConfig, repeats: number): number {
  return Math.min(cfg.maxQuarantineMinutes, Math.round(cfg.quarantineMinutes * Math.pow(cfg.repeatFactor, Math.max(0, repeats))));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
