/**
 * The policy document: every number OTP Shield decides with. Validated with TypeBox, versioned in the
 * store, replaceable through `/v1/admin/policy`, and the input of `otp-shield replay --policy`.
 *
 * Defaults are chosen so that a deployment that does nothing is safe (docs/policy.md explains each one).
 */
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { deepMerge, reservedKeyPaths } from '../lib/merge.ts';
import { regionProblem } from '../lib/regions.ts';
import { DEFAULT_PUMPING, PumpingConfigSchema, parsePumpingConfig } from './pumping.ts';
import { DEFAULT_MONITORING_POLICY, MonitoringPolicySchema } from '../monitoring/config.ts';

const Rate = Type.Object(
  {
    limit: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
    windowSeconds: Type.Integer({ minimum: 1, maximum: 30 * 86_400 }),
  },
  { additionalProperties: false },
);
export type Rate = Static<typeof Rate>;
const Rates = Type.Array(Rate, { maxItems: 8 });

const RuleMode = Type.Union([Type.Literal('live'), Type.Literal('shadow'), Type.Literal('off')]);
const RuleAction = Type.Union([
  Type.Literal('score'),
  Type.Literal('challenge'),
  Type.Literal('block'),
  Type.Literal('tarpit'),
  Type.Literal('allow'),
]);
export type RuleAction = Static<typeof RuleAction>;

const RuleFields = {
  weight: Type.Optional(Type.Number({ minimum: -1000, maximum: 1000 })),
  /** `shadow`: evaluated and recorded in the event's `data.shadow`, never enforced. */
  mode: Type.Optional(RuleMode),
};
/** A rule as enforced. `score` adds `weight`; the others decide at once (strongest wins: allow-list first, then block, tarpit, challenge). */
const RuleConfig = Type.Object({ action: RuleAction, ...RuleFields }, { additionalProperties: false });
/**
 * A rule as written in `risk.rules`: merged over the rule's default by `parsePolicy`, so `{ mode: shadow }`
 * keeps its action and weight.
 */
const RuleOverride = Type.Object({ action: Type.Optional(RuleAction), ...RuleFields }, { additionalProperties: false });
export type RuleConfig = Static<typeof RuleConfig>;

export const LINE_TYPES = ['MOBILE', 'FIXED_LINE', 'FIXED_LINE_OR_MOBILE', 'VOIP', 'PREMIUM_RATE', 'TOLL_FREE', 'SHARED_COST', 'UAN', 'PAGER', 'PERSONAL_NUMBER', 'VOICEMAIL', 'UNKNOWN'] as const;
const LineType = Type.Enum(LINE_TYPES);
const Country = Type.String({ pattern: '^[A-Z]{2}$' });

export const PolicySchema = Type.Object(
  {
    name: Type.String({ maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]*$', default: 'default' }),
    limits: Type.Object(
      {
        number: Rates,
        /** Separate number budget for requests from the device and network that verified this number before. */
        trustedNumber: Rates,
        ip: Rates,
        /** IPv4 /24 and IPv6 /56 aggregates (one allocation: engine/facts.ts `network`); an IPv6 /48 gets 4× (`SITE_FACTOR`). */
        subnet: Rates,
        device: Rates,
        prefix: Rates,
        country: Rates,
        global: Rates,
        /** Digits of the national number, after the country calling code, that form a prefix. */
        prefixDigits: Type.Integer({ minimum: 1, maximum: 8 }),
        cooldown: Type.Object(
          {
            firstSeconds: Type.Integer({ minimum: 0, maximum: 3600 }),
            factor: Type.Number({ minimum: 1, maximum: 10 }),
            maxSeconds: Type.Integer({ minimum: 0, maximum: 86_400 }),
          },
          { additionalProperties: false },
        ),
        check: Type.Object(
          {
            /** Failed checks per number across all its verifications; reaching it locks checks for the number. */
            failuresPerNumber: Rate,
            /** Separate failure budget for checks from the device and network that verified the number before. */
            trustedFailuresPerNumber: Rate,
            /**
             * Failed checks per number since its last approval, however slowly they come (NIST SP 800-63B: no
             * more than 100 consecutive failures). An approval resets the number's failure counters.
             */
            consecutiveFailuresPerNumber: Rate,
            failuresPerIp: Rate,
          },
          { additionalProperties: false },
        ),
        /**
         * `POST /v1/challenges` per client address (form tokens and puzzles for the widget). Above the per-IP send
         * limit (a page load prepares a token whether or not the person sends); raise it with that limit where
         * many users share an address (carrier-grade NAT).
         */
        challengesPerIp: Rate,
      },
      { additionalProperties: false },
    ),
    numbers: Type.Object(
      {
        /** Line types allowed per channel; everything else is blocked with reason `line_type`. */
        allowedLineTypes: Type.Object(
          {
            sms: Type.Array(LineType),
            whatsapp: Type.Array(LineType),
            voice: Type.Array(LineType),
            email: Type.Array(LineType),
          },
          { additionalProperties: false },
        ),
        /** Empty = every region allowed. Regions are the number's region (IM, JE, GG are not GB). */
        allowCountries: Type.Array(Country),
        denyCountries: Type.Array(Country),
        /** The IP's country, separately from the number's. */
        allowIpCountries: Type.Array(Country),
        denyIpCountries: Type.Array(Country),
      },
      { additionalProperties: false },
    ),
    risk: Type.Object(
      {
        /** Score at or above which a send needs a solved challenge (proof-of-work or CAPTCHA). */
        challengeAt: Type.Number(),
        /** Score at or above which a send is blocked even with a solved challenge. */
        blockAt: Type.Number(),
        /** A solved proof-of-work subtracts this from the score: it is evidence of a real browser that paid CPU. */
        powCredit: Type.Number({ minimum: 0 }),
        /** A passed CAPTCHA subtracts this: stronger evidence of a person than proof-of-work. */
        captchaCredit: Type.Number({ minimum: 0 }),
        /** Requests faster than this since the form token was issued are `too_fast`. */
        minHumanMs: Type.Integer({ minimum: 0, maximum: 60_000 }),
        /** Requests per device in 10 minutes (all outcomes) above which `device_velocity` fires. */
        deviceVelocity: Type.Integer({ minimum: 1 }),
        /** Distinct-number pressure from one IP: requests per IP in 10 minutes above which `ip_velocity` fires. */
        ipVelocity: Type.Integer({ minimum: 1 }),
        /**
         * Distinct destination countries one IP (an IPv6 /64) asked to send to within 24 h (all outcomes), above
         * which `ip.many_countries` fires: a person's phone number has one country, an international revenue-share
         * fraud (IRSF) operator sprays many from the few addresses it holds (Authgear's rule: more than 3 a day).
         */
        ipCountries: Type.Integer({ minimum: 1 }),
        /**
         * Messages delivered to one number since its last approval (counted over 24 h) from which on a send from
         * outside the number's trusted context fires `number.unverified_sends`: codes that nobody types are
         * what SMS bombing and code-guessing leave behind.
         */
        unverifiedSendsPerNumber: Type.Integer({ minimum: 1 }),
        /**
         * Failed checks of one number since its last approval (within `limits.check.failuresPerNumber`'s
         * window) from which on a new send from outside its trusted context fires `number.failed_checks`:
         * asking for a fresh code after wrong guesses is how guessing gets more chances.
         */
        failedChecksPerNumber: Type.Integer({ minimum: 1 }),
        rules: Type.Record(Type.String({ pattern: '^[a-z0-9_.]+$' }), RuleOverride),
      },
      { additionalProperties: false },
    ),
    throttle: Type.Object(
      {
        enabled: Type.Boolean(),
        /** Tighten a scope when its 10-minute count exceeds factor × baseline and the floor. */
        factor: Type.Number({ minimum: 1 }),
        /** Relax when the count falls below relaxFactor × baseline. */
        relaxFactor: Type.Number({ minimum: 0 }),
        floors: Type.Object(
          { global: Type.Integer({ minimum: 0 }), country: Type.Integer({ minimum: 0 }), prefix: Type.Integer({ minimum: 0 }) },
          { additionalProperties: false },
        ),
        /** Half-life of the baseline's exponentially weighted average. */
        baselineHalfLifeMinutes: Type.Integer({ minimum: 10, maximum: 7 * 24 * 60 }),
        /** A scope stays tightened at least this long (hysteresis). */
        minTightenedMinutes: Type.Integer({ minimum: 1, maximum: 24 * 60 }),
      },
      { additionalProperties: false },
    ),
    escalation: Type.Object(
      {
        /** Rule trips per IP/device/number in the window that lead to "always challenge", then "block". */
        challengeAfter: Type.Integer({ minimum: 1 }),
        blockAfter: Type.Integer({ minimum: 1 }),
        /** Trips are counted over a sliding window, so an escalation expires by itself when trips stop. */
        windowSeconds: Type.Integer({ minimum: 60, maximum: 30 * 86_400 }),
      },
      { additionalProperties: false },
    ),
    responses: Type.Object(
      {
        /** Include reason codes in 429/403 responses for the API key holder. */
        exposeReasons: Type.Boolean(),
      },
      { additionalProperties: false },
    ),
    /** SMS-pumping defense: conversion per prefix/country, quarantines (docs/sms-pumping.md). */
    pumping: PumpingConfigSchema,
    /** Prices, budgets and alert rules (docs/monitoring.md). Secrets and sinks live in the configuration. */
    monitoring: MonitoringPolicySchema,
  },
  { additionalProperties: false },
);

export type Policy = Static<typeof PolicySchema>;

const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;

/**
 * The rule catalogue and its defaults. Rule ids are the reason codes that appear in responses and events.
 * docs/policy.md lists every rule with its meaning; a rule missing from a policy falls back to this table.
 */
export const DEFAULT_RULES: Record<string, RuleConfig> = {
  // hard rules
  'list.allow': { action: 'allow' },
  'list.block': { action: 'block' },
  'country.number': { action: 'block' },
  'country.ip': { action: 'block' },
  'line_type': { action: 'block' },
  'paused': { action: 'block' },
  'escalation.block': { action: 'block' },
  'quarantine.block': { action: 'block' },
  // confident bot signals: the bot gets a success it cannot use
  'honeypot': { action: 'tarpit' },
  // soft signals (weights add up to the score)
  'form_token.missing': { action: 'score', weight: 5 },
  'form_token.invalid': { action: 'score', weight: 40 },
  'form_token.expired': { action: 'score', weight: 25 },
  'form_token.reused': { action: 'score', weight: 45 },
  'pow.missing': { action: 'score', weight: 5 },
  'pow.invalid': { action: 'score', weight: 40 },
  'captcha.failed': { action: 'score', weight: 40 },
  'too_fast': { action: 'score', weight: 30 },
  'headless': { action: 'score', weight: 70 },
  'script_user_agent': { action: 'score', weight: 50 },
  'no_accept_language': { action: 'score', weight: 5 },
  'ip.hosting': { action: 'score', weight: 25 },
  'ip.tor': { action: 'score', weight: 45 },
  'ip.proxy': { action: 'score', weight: 30 },
  'ip.vpn': { action: 'score', weight: 10 },
  'ip.country_mismatch': { action: 'score', weight: 10 },
  'number.disposable': { action: 'score', weight: 50 },
  'device_velocity': { action: 'score', weight: 25 },
  'ip_velocity': { action: 'score', weight: 20 },
  'trusted_context': { action: 'score', weight: -30 },
  // the destination number's own history (never from its trusted context): weight 60 = a solved
  // proof-of-work is not enough (60 − 30 ≥ challengeAt), a passed CAPTCHA is (60 − 30 − 60 < challengeAt)
  'number.unverified_sends': { action: 'score', weight: 60 },
  'number.failed_checks': { action: 'score', weight: 60 },
  // one IP asking for codes to more than `risk.ipCountries` countries a day; weight 60 like the number's
  // history: the addresses that do it innocently (hotel, airport and VPN exits) get a CAPTCHA, not a refusal
  'ip.many_countries': { action: 'score', weight: 60 },
  // a block-mode quarantine asks requests with good browser evidence for a CAPTCHA instead of refusing them
  'quarantine.captcha': { action: 'score', weight: 60 },
  // adaptive layers: never block by themselves
  'throttled': { action: 'challenge' },
  'escalation.challenge': { action: 'challenge' },
  'quarantine.challenge': { action: 'challenge' },
};

export const DEFAULT_POLICY: Policy = {
  name: 'default',
  limits: {
    number: [
      { limit: 3, windowSeconds: 10 * MIN },
      { limit: 10, windowSeconds: DAY },
    ],
    trustedNumber: [
      { limit: 3, windowSeconds: 10 * MIN },
      { limit: 10, windowSeconds: DAY },
    ],
    // Carrier-grade NAT: one mobile IP can front hundreds of subscribers, so IP limits are generous and the
    // per-number limit does the fine-grained work (docs/rate-limits.md).
    ip: [
      { limit: 10, windowSeconds: 10 * MIN },
      { limit: 100, windowSeconds: DAY },
    ],
    subnet: [
      { limit: 60, windowSeconds: 10 * MIN },
      { limit: 600, windowSeconds: DAY },
    ],
    // Device ids collide: open-source fingerprints of one popular phone model, OS and locale are often
    // identical, so thousands of real users can share one. The hard device limit is only a ceiling against
    // one emulator or script hammering; per-device velocity is a scored signal (`device_velocity`) instead.
    device: [{ limit: 60, windowSeconds: 10 * MIN }],
    // A cost ceiling per range; range attacks are stopped adaptively by the SMS-pumping defense.
    prefix: [{ limit: 1000, windowSeconds: HOUR }],
    country: [{ limit: 5000, windowSeconds: HOUR }],
    global: [{ limit: 20_000, windowSeconds: HOUR }],
    prefixDigits: 3,
    cooldown: { firstSeconds: 30, factor: 2, maxSeconds: 600 },
    check: {
      failuresPerNumber: { limit: 10, windowSeconds: HOUR },
      trustedFailuresPerNumber: { limit: 10, windowSeconds: HOUR },
      consecutiveFailuresPerNumber: { limit: 100, windowSeconds: 30 * DAY },
      failuresPerIp: { limit: 30, windowSeconds: HOUR },
    },
    challengesPerIp: { limit: 30, windowSeconds: 10 * MIN },
  },
  numbers: {
    allowedLineTypes: {
      sms: ['MOBILE', 'FIXED_LINE_OR_MOBILE'],
      whatsapp: ['MOBILE', 'FIXED_LINE_OR_MOBILE'],
      voice: ['MOBILE', 'FIXED_LINE_OR_MOBILE', 'FIXED_LINE'],
      email: [],
    },
    allowCountries: [],
    denyCountries: [],
    allowIpCountries: [],
    denyIpCountries: [],
  },
  risk: {
    challengeAt: 30,
    blockAt: 120,
    powCredit: 30,
    captchaCredit: 60,
    minHumanMs: 1500,
    deviceVelocity: 8,
    ipVelocity: 20,
    ipCountries: 3,
    unverifiedSendsPerNumber: 2,
    failedChecksPerNumber: 3,
    rules: {},
  },
  throttle: {
    enabled: true,
    factor: 4,
    relaxFactor: 2,
    floors: { global: 300, country: 100, prefix: 30 },
    baselineHalfLifeMinutes: 180,
    minTightenedMinutes: 15,
  },
  escalation: { challengeAfter: 3, blockAfter: 10, windowSeconds: 6 * HOUR },
  responses: { exposeReasons: true },
  pumping: DEFAULT_PUMPING,
  monitoring: DEFAULT_MONITORING_POLICY,
};

export type PolicyProblem = { path: string; message: string };
const UNKNOWN_KEY = 'unknown key (not a policy setting: check the spelling, docs/policy.md lists every key)';
export type PolicyResult = { ok: true; policy: Policy; warnings: PolicyProblem[] } | { ok: false; errors: PolicyProblem[] };

/**
 * Validate a policy document; missing sections are filled from the defaults (deep merge of objects).
 * `relations: 'warn'` is for documents already stored by an earlier version: the checks between fields
 * added since (below) then come back as warnings instead of refusing a policy that was in force, which would
 * leave the server deciding with the defaults after an upgrade. New documents (the admin API, policy files,
 * replay) use the default, `'error'`.
 */
export function parsePolicy(doc: unknown, opts: { relations?: 'error' | 'warn' } = {}): PolicyResult {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { ok: false, errors: [{ path: '/', message: 'policy must be an object' }] };
  }
  const reserved = reservedKeyPaths(doc);
  if (reserved.length > 0) return { ok: false, errors: reserved.slice(0, 20).map((path) => ({ path, message: UNKNOWN_KEY })) };
  const merged = deepMerge(structuredClone(DEFAULT_POLICY) as unknown as Record<string, unknown>, doc as Record<string, unknown>);
  if (!Value.Check(PolicySchema, merged)) {
    // TypeBox says "schema is false" for a key the object does not have, and then again "must not have
    // additional properties" for the object: one line that names the key is what helps.
    const all = [...Value.Errors(PolicySchema, merged)];
    const unknownAt = new Set(all.filter((e) => e.message === 'schema is false').map((e) => (e.instancePath || '/').replace(/\/[^/]*$/, '') || '/'));
    const errors = all
      .filter((e) => !(e.message === 'must not have additional properties' && unknownAt.has(e.instancePath || '/')))
      .slice(0, 20)
      .map((e) => ({ path: e.instancePath || '/', message: e.message === 'schema is false' ? UNKNOWN_KEY : e.message }));
    return { ok: false, errors };
  }
  const policy = merged as unknown as Policy;
  // Relations between fields the schema cannot express: each would make a layer quietly do something else.
  const crossField: PolicyProblem[] = [];
  if (policy.risk.blockAt <= policy.risk.challengeAt) crossField.push({ path: '/risk/blockAt', message: 'must be greater than challengeAt' });
  if (policy.escalation.blockAfter < policy.escalation.challengeAfter) {
    crossField.push({ path: '/escalation/blockAfter', message: 'must be at least challengeAfter (blocking comes after challenging)' });
  }
  if (policy.throttle.relaxFactor >= policy.throttle.factor) {
    crossField.push({ path: '/throttle/relaxFactor', message: 'must be less than throttle.factor (a scope would tighten and relax at the same volume)' });
  }
  const zeroFloors = Object.entries(policy.throttle.floors).filter(([, v]) => v === 0).map(([k]) => k);
  if (policy.throttle.relaxFactor === 0 && zeroFloors.length > 0) {
    crossField.push({ path: '/throttle/relaxFactor', message: `must be above 0 while a floor is 0 (${zeroFloors.join(', ')}): such a scope would relax below a count of 0, never` });
  }
  const cd = policy.limits.cooldown;
  if (cd.firstSeconds > 0 && cd.maxSeconds < cd.firstSeconds) {
    crossField.push({ path: '/limits/cooldown/maxSeconds', message: 'must be at least firstSeconds (it caps the growing cooldown; below it, the cooldown is shorter than firstSeconds or off)' });
  }
  // A code no number or IP can have never matches (a deny list of "UK" denies nothing; the United Kingdom is GB).
  for (const key of ['allowCountries', 'denyCountries', 'allowIpCountries', 'denyIpCountries'] as const) {
    const ipCountry = key.endsWith('IpCountries');
    const problems = policy.numbers[key].map((c) => regionProblem(c, { ipCountry })).filter((m) => m !== null);
    if (problems.length > 0) crossField.push({ path: `/numbers/${key}`, message: problems.join('; ') });
  }
  for (const [allow, deny, where] of [[policy.numbers.allowCountries, policy.numbers.denyCountries, ''], [policy.numbers.allowIpCountries, policy.numbers.denyIpCountries, 'Ip']] as const) {
    const both = allow.filter((c) => deny.includes(c));
    if (both.length > 0) crossField.push({ path: `/numbers/deny${where}Countries`, message: `${both.join(', ')} also in allow${where}Countries: a country is allowed or denied, not both` });
  }
  // Two rates with the same window share one counter (the key is the window), so a send would count twice
  // there: adding a looser rate made the limit tighter.
  for (const [name, rates] of Object.entries(policy.limits)) {
    if (!Array.isArray(rates)) continue;
    const windows = (rates as Rate[]).map((r) => r.windowSeconds);
    const twice = windows.filter((w, i) => windows.indexOf(w) !== i);
    if (twice.length > 0) crossField.push({ path: `/limits/${name}`, message: `two rates with the same windowSeconds (${[...new Set(twice)].join(', ')}): give each window once, with the limit you want` });
  }
  const unknown = Object.keys(policy.risk.rules).filter((id) => !(id in DEFAULT_RULES));
  if (unknown.length > 0) return { ok: false, errors: unknown.map((id) => ({ path: `/risk/rules/${id}`, message: `unknown rule "${id}"` })) };
  // An override is merged over the rule's default: `{ mode: off }` keeps the rule's action and weight.
  for (const [id, override] of Object.entries(policy.risk.rules)) {
    const rule = { ...DEFAULT_RULES[id], ...override };
    if (rule.action === 'score' && typeof rule.weight !== 'number') crossField.push({ path: `/risk/rules/${id}`, message: 'a score rule needs a weight (it would add nothing)' });
    // A stored document written before overrides were merged: its score rule without a weight counted 0 then.
    else if (opts.relations === 'warn' && override.action === 'score' && override.weight === undefined) {
      crossField.push({ path: `/risk/rules/${id}`, message: `a score rule without a weight now takes the rule's default weight (${rule.weight}); it counted 0 until 2026-11-28` });
    }
    policy.risk.rules[id] = rule;
  }
  if (crossField.length > 0 && opts.relations !== 'warn') return { ok: false, errors: crossField };
  const pumping = parsePumpingConfig(policy.pumping);
  if (!pumping.ok) return { ok: false, errors: pumping.errors.map((e) => ({ path: `/pumping${e.path === '/' ? '' : e.path}`, message: e.message })) };
  return { ok: true, policy, warnings: crossField };
}

/** The effective configuration of one rule: the policy's override, else the catalogue default. */
export function ruleConfig(policy: Policy, id: string): RuleConfig {
  // Overrides are complete once `parsePolicy` merged them over their defaults.
  return (policy.risk.rules[id] as RuleConfig | undefined) ?? DEFAULT_RULES[id] ?? { action: 'score', weight: 0, mode: 'off' };
}

/**
 * Rules about the destination number or its range (and `ip.many_countries`, about the history of a shared
 * address) rather than the client in front of us, weighted (60) so that a solved proof-of-work does not clear
 * them and a passed CAPTCHA does. They fire for the number's owner, a range's real users and the guests of a
 * hotel's network too, so they are no escalation trips (`isRuleTrip`), and they need a CAPTCHA provider
 * (`withoutCaptcha`).
 */
export const CAPTCHA_ONLY_RULES: ReadonlySet<string> = new Set(['number.unverified_sends', 'number.failed_checks', 'ip.many_countries', 'quarantine.captcha']);

/**
 * The `CAPTCHA_ONLY_RULES` that are on in `policy` (`quarantine.captcha` only while pumping quarantines use
 * it): without a CAPTCHA provider configured, a person they challenge cannot get a code.
 */
export function captchaOnlyRules(policy: Policy): string[] {
  const quarantineCaptcha = policy.pumping.enabled && policy.pumping.goodEvidence === 'captcha';
  return [...CAPTCHA_ONLY_RULES].filter((id) => {
    if (id === 'quarantine.captcha' && !quarantineCaptcha) return false;
    const r = ruleConfig(policy, id);
    return r.mode !== 'off' && r.mode !== 'shadow' && (r.action !== 'score' || (r.weight ?? 0) > 0);
  });
}

/**
 * The policy as enforced where no CAPTCHA provider is configured: the rules only a CAPTCHA clears would
 * turn into refusals no person can get past (a new user whose first two codes did not arrive would wait a
 * day), so `number.unverified_sends`, `number.failed_checks` and `ip.many_countries` run in shadow (their hits stay visible in the
 * audit log) and a block-mode prefix quarantine blocks good evidence too (`pumping.goodEvidence: block`), as
 * before these rules existed. Returns `policy` itself when nothing changes.
 */
export function withoutCaptcha(policy: Policy): Policy {
  const live = captchaOnlyRules(policy);
  if (live.length === 0) return policy;
  const rules = { ...policy.risk.rules };
  for (const id of live) if (id !== 'quarantine.captcha') rules[id] = { ...ruleConfig(policy, id), mode: 'shadow' };
  const pumping = policy.pumping.goodEvidence === 'captcha' ? { ...policy.pumping, goodEvidence: 'block' as const } : policy.pumping;
  return { ...policy, risk: { ...policy.risk, rules }, pumping };
}

/**
 * A getter of the enforced policy: `get()` as is with a CAPTCHA provider, `withoutCaptcha(get())` without
 * one (recomputed only when `get()` returns a new policy object).
 */
export function enforcedPolicy(get: () => Policy, captchaConfigured: boolean): () => Policy {
  if (captchaConfigured) return get;
  let from: Policy | null = null;
  let enforced: Policy | null = null;
  return () => {
    const p = get();
    if (p !== from) {
      from = p;
      enforced = withoutCaptcha(p);
    }
    return enforced!;
  };
}
