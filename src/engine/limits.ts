/**
 * Which counters a request touches, as `LimitSpec`s the store evaluates atomically in one step.
 *
 * Three families:
 *  - send limits: consumed only when a message is about to be sent (all-or-nothing), so a request that
 *    any layer denies costs nothing of the budgets after it, and the victim's budget is not spent by
 *    requests that were challenged or blocked;
 *  - observation counters: every send request, whatever its outcome (velocity, throttling, escalation);
 *  - check counters: failed checks per number and per IP (brute force across verifications).
 */
import type { LimitSpec } from '../store/interface.ts';
import type { IpFacts, SendFacts } from './facts.ts';
import { ruleConfig, type Policy, type Rate } from './policy.ts';
import { slotMsFor } from './window.ts';

/** Observation counters use a limit nobody reaches: they count, they never deny. */
export const UNLIMITED = 1_000_000_000;
export const OBSERVE_WINDOW_MS = 10 * 60_000;
const TRUST_WINDOW_MS = 90 * 86_400_000;
const UNVERIFIED_WINDOW_MS = 86_400_000;

function win(r: Rate): string {
  const s = r.windowSeconds;
  if (s % 86_400 === 0) return `${s / 86_400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/**
 * An IPv6 /48 gets this many times the per-subnet (/56) budget in total: a client rotating its /56s through a
 * /48 (a free tunnel-broker allocation, a business line) gets four subnets' worth, not 256; a carrier pool
 * whose /48 holds many subscribers' /64s gets four times the room a /56 has (docs/rate-limits.md).
 */
export const SITE_FACTOR = 4;

function ratesToSpecs(reason: string, key: string, rates: Rate[]): LimitSpec[] {
  return rates.map((r) => ({ reason, key: `${key}:${win(r)}`, limit: r.limit, windowMs: r.windowSeconds * 1000 }));
}

/** Cooldown before the (sends+1)-th message of a verification: 30 s, 60 s, 120 s … capped. */
export function cooldownMs(p: Policy, sendsSoFar: number): number {
  const c = p.limits.cooldown;
  if (c.firstSeconds <= 0) return 0;
  const seconds = Math.min(c.maxSeconds, c.firstSeconds * Math.pow(c.factor, Math.max(0, sendsSoFar - 1)));
  return Math.round(seconds * 1000);
}

/**
 * The key a destination's send limits, cooldown, unverified sends, failed-check lockout and escalation count
 * under: the destination itself, but for an email address without a `+tag` (and for Yahoo without a
 * `-keyword`). On most mail systems `bob+1@x` reaches bob's mailbox; as destinations they stay apart (on some
 * systems they are different mailboxes), but a tag per request must buy no fresh budget for bombing a mailbox
 * or guessing its codes (an email review sent six codes to one mailbox in two seconds; a diff review found the
 * lockout and escalation still per tag). Verified-number and trust counters stay per exact destination.
 */
export function limitKeyOf(destination: string): string {
  const at = destination.lastIndexOf('@');
  if (at < 0) return destination;
  const domain = destination.slice(at + 1);
  const local = destination.slice(0, at);
  const plus = local.indexOf('+');
  let base = plus > 0 ? local.slice(0, plus) : local;
  if (YAHOO.has(domain)) {
    const dash = base.indexOf('-');
    if (dash > 0) base = base.slice(0, dash);
  }
  return `${base}@${domain}`;
}

/** Yahoo's domains, whose `base-keyword` disposable addresses reach the account of `base`'s owner. */
const YAHOO = new Set(['yahoo.com', 'ymail.com', 'rocketmail.com', 'yahoo.co.uk', 'yahoo.ca', 'yahoo.de', 'yahoo.fr', 'yahoo.in', 'yahoo.it']);

/** The key of the cooldown limit of a destination on a channel (`sendLimitSpecs`). */
export function cooldownKey(e164: string, channel: string): string {
  return `cd:${limitKeyOf(e164)}:${channel}`;
}

/**
 * Milliseconds until a resend of `v` is allowed: its last send plus the cooldown before its next message
 * (`resendAfter` under the current policy); 0 or less when it is allowed now. The `cd:` limit alone does not
 * hold a growing cooldown: its stored state expires with the cooldown it was written under (30 s at the second
 * message), so the third, due 60 s after the second, got through after 30 s on the memory and Redis stores and
 * after a sweep on SQLite (found by the send-limit property test). The limit still serialises parallel resends.
 */
export function resendWaitMs(p: Policy, v: { lastSentAt: number; sends: number }, now: number): number {
  return v.lastSentAt + cooldownMs(p, v.sends) - now;
}

/**
 * Send limits for one request. `sendsSoFar` is the number of messages of the pending verification for
 * this number (0 when none): it sets the cooldown, which is itself a limit of 1 per cooldown period so that
 * parallel resends cannot slip through together.
 */
export function sendLimitSpecs(f: SendFacts, p: Policy, sendsSoFar: number): LimitSpec[] {
  const L = p.limits;
  // The destination's budget and cooldown are keyed by its limit key (an email address without its +tag).
  const n = limitKeyOf(f.number.e164);
  const specs: LimitSpec[] = [];
  // A code whose checks are locked cannot be checked: sending one cost a message and showed the user a code that
  // is refused (a review found it sent and paid for). The failure counters the check path locks on are read
  // (cost 0) and deny while at their limit (count > limit - 1), with the time the lock lifts as Retry-After.
  for (const s of checkFailureSpecs(p, f.number.e164, null, f.state.trusted)) if (s.limit > 0) specs.push({ ...s, limit: s.limit - 1, cost: 0 });
  const cd = cooldownMs(p, sendsSoFar);
  // The window rule may refuse up to one slot late; shortening the window by one slot makes a resend at
  // exactly `resendAfter` (last send + cooldown) always pass, at the price of allowing it up to 1/60 early.
  if (cd > 0) specs.push({ reason: 'cooldown', key: cooldownKey(f.number.e164, f.channel), limit: 1, windowMs: Math.max(1, cd - slotMsFor(cd)) });
  // The trusted budget is separate so that an attacker who exhausts a number's budget does not lock its
  // owner out (docs/rate-limits.md, "Limits that do not lock out the owner").
  specs.push(...(f.state.trusted ? ratesToSpecs('rate_limited.number', `nt:${n}`, L.trustedNumber) : ratesToSpecs('rate_limited.number', `n:${n}`, L.number)));
  if (f.ip) {
    specs.push(...ratesToSpecs('rate_limited.ip', `ip:${addressOf(f.ip)}`, L.ip));
    specs.push(...ratesToSpecs('rate_limited.subnet', `sn:${f.ip.network}`, L.subnet));
    if (f.ip.site !== null) specs.push(...ratesToSpecs('rate_limited.subnet', `st:${f.ip.site}`, L.subnet.map((r) => ({ ...r, limit: r.limit * SITE_FACTOR }))));
  }
  if (f.evidence.deviceId) specs.push(...ratesToSpecs('rate_limited.device', `dv:${f.evidence.deviceId}`, L.device));
  // An email address has neither (NumberFacts).
  if (f.number.prefix !== null) specs.push(...ratesToSpecs('rate_limited.prefix', `px:${f.number.prefix}`, L.prefix));
  if (f.number.region !== null) specs.push(...ratesToSpecs('rate_limited.country', `cc:${f.number.region}`, L.country));
  specs.push(...ratesToSpecs('rate_limited.global', 'gl', L.global));
  // Never denies: counts the message among the number's unverified sends (reset by its next approval).
  specs.push(unverifiedSendsSpec(f.number.e164, 1));
  return specs;
}

/**
 * Messages delivered to a number since its last approval (24 h): counted with each send (cost 1, part of
 * the send limits), read by the observation step (cost 0), reset by an approval (`numberFailureKeys`).
 */
export function unverifiedSendsSpec(e164: string, cost: number): LimitSpec {
  return { reason: 'unverified', key: `uv:${limitKeyOf(e164)}:1d`, limit: UNLIMITED, windowMs: UNVERIFIED_WINDOW_MS, cost };
}

/** The trust key of a device + network pair for a number (hashing is the caller's business). */
export function trustKey(e164: string, contextHash: string): string {
  return `tr:${e164}:${contextHash}`;
}

export interface ObservationLayout {
  specs: LimitSpec[];
  /** Index of each named counter in `specs` (and so in the store's returned counts). */
  index: {
    ip?: number;
    device?: number;
    global: number;
    /** Absent for an email address (no country, no range). */
    country?: number;
    prefix?: number;
    trust?: number;
    verified: number;
    /** The number's unverified sends and failed checks since its last approval (read, cost 0). */
    unverified: number;
    failures: number;
    escalation: number[];
    /** `ipCountrySpecs` reads: this IP asked for this country today; the IP's countries today. */
    ipCountrySeen?: number;
    ipCountries?: number;
    /** The same for an IPv6 client's /56 (its allocation), so that rotating /64s buys no countries. */
    subnetCountrySeen?: number;
    subnetCountries?: number;
  };
  /** `ipCountrySpecs(…).record` for this request, when the IP's countries are tracked. */
  ipCountryRecord?: LimitSpec[];
  /** The /56's `record`, for IPv6 (a separate call: its `seen` may deny while the /64's counts). */
  subnetCountryRecord?: LimitSpec[];
}

/**
 * The facts that name a request's counters: the number, the IP and the device id. All three are known before
 * the client evidence is verified (the device id is the client's, cleaned: `deviceIdOf`), so the observation
 * call can leave together with the evidence's one-time-token calls.
 */
export type KeyFacts = Pick<SendFacts, 'number' | 'ip'> & { evidence: Pick<SendFacts['evidence'], 'deviceId'> };

/** A 10-minute observation counter (never denies): requests per scope, IP, device. */
function observed(key: string): LimitSpec {
  return { reason: 'observe', key: `ob:${key}`, limit: UNLIMITED, windowMs: OBSERVE_WINDOW_MS };
}

/**
 * The observation counter a throttle scope steps on (`global`, `country:ID`, `prefix:+62812`): the same one
 * `observationSpecs` counts, for reading it without a request (an idle scope's relaxation).
 */
export function throttleScopeSpec(scope: string): LimitSpec {
  if (scope === 'global') return observed('gl');
  if (scope.startsWith('country:')) return observed(`cc:${scope.slice(8)}`);
  return observed(`px:${scope.slice(7)}`);
}

/**
 * Observation counters for one send request, counted whatever the outcome. Trust and escalation counters
 * are read here with cost 0, so the whole observation is one store call (one Redis round trip).
 */
export function observationSpecs(
  f: KeyFacts,
  p: Policy,
  trustContextHash: string | null,
): ObservationLayout {
  const specs: LimitSpec[] = [];
  const push = (s: LimitSpec) => specs.push(s) - 1;
  const obs = observed;
  const index: ObservationLayout['index'] = {
    // The counters the throttle steps each scope on (`throttleScopeSpec` names them for a read without a request).
    global: push(throttleScopeSpec('global')),
    verified: push({ ...verifiedNumberSpec(f.number.e164), cost: 0 }),
    unverified: push(unverifiedSendsSpec(f.number.e164, 0)),
    // The untrusted failure counter of checkFailureSpecs, read without a limit (an observation never denies).
    failures: push({ ...checkFailureSpecs(p, f.number.e164, null, false)[0]!, reason: 'observe', limit: UNLIMITED, cost: 0 }),
    escalation: [],
  };
  if (f.number.region !== null) index.country = push(throttleScopeSpec(`country:${f.number.region}`));
  if (f.number.prefix !== null) index.prefix = push(throttleScopeSpec(`prefix:${f.number.prefix}`));
  if (f.ip) index.ip = push(obs(`ip:${addressOf(f.ip)}`));
  if (f.evidence.deviceId) index.device = push(obs(`dv:${f.evidence.deviceId}`));
  if (trustContextHash) index.trust = push({ reason: 'observe', key: trustKey(f.number.e164, trustContextHash), limit: UNLIMITED, windowMs: TRUST_WINDOW_MS, cost: 0 });
  for (const k of escalationKeys(f)) index.escalation.push(push({ ...escalationSpec(k, p), cost: 0 }));
  // An IP asking for email addresses asks for no country.
  if (f.ip && f.number.region !== null && tracksIpCountries(p)) {
    const ipc = ipCountrySpecs(addressOf(f.ip), f.number.region);
    index.ipCountrySeen = push(ipc.seen);
    index.ipCountries = push(ipc.countries);
    if (f.ip.site === null) return { specs, index, ipCountryRecord: ipc.record };
    // IPv6: the /56 too, at the same threshold, as failed checks count it (`checkFailureSpecs`): an IPv4
    // carrier NAT address already holds more subscribers than a /56, and a client owns its /56's 256 /64s.
    const net = ipCountrySpecs(f.ip.network, f.number.region);
    index.subnetCountrySeen = push(net.seen);
    index.subnetCountries = push(net.countries);
    return { specs, index, ipCountryRecord: ipc.record, subnetCountryRecord: net.record };
  }
  return { specs, index };
}

const DAY_MS = 86_400_000;

/**
 * The address per-IP counters are kept for (limits, velocity, escalation, failed checks, countries): the IP
 * itself, or for IPv6 its /64 — one subscriber's network, whose low 64 bits its owner rotates at will.
 */
export function addressOf(ip: Pick<IpFacts, 'ip' | 'subnet'>): string {
  return ip.ip.includes(':') ? ip.subnet : ip.ip;
}

/**
 * Distinct destination countries of one IP in 24 h (`ip.many_countries`), kept in two counters: `seen`,
 * one per IP and country (did this IP ask for this country today?), and `countries`, per IP (how many
 * countries it asked for today). The observation call reads both at no cost (`observationSpecs`), so an IP
 * asking for a country it asked for before — nearly every request of real traffic — costs no extra store
 * call. Only the first request for a new country records it: `record`, one atomic call whose `seen` spec
 * (limit 1) lets exactly one of several racing requests count it in `countries`.
 */
export function ipCountrySpecs(ipKey: string, region: string): { seen: LimitSpec; countries: LimitSpec; record: LimitSpec[] } {
  const seen: LimitSpec = { reason: 'observe', key: `ipcc:${ipKey}:${region}`, limit: 1, windowMs: DAY_MS };
  const countries: LimitSpec = { reason: 'observe', key: `ipc:${ipKey}`, limit: UNLIMITED, windowMs: DAY_MS };
  return { seen: { ...seen, limit: UNLIMITED, cost: 0 }, countries: { ...countries, cost: 0 }, record: [seen, countries] };
}

/** Whether the observation step reads and records the IP's destination countries (not while the rule is off). */
export function tracksIpCountries(p: Policy): boolean {
  return ruleConfig(p, 'ip.many_countries').mode !== 'off';
}

/** Keys whose repeated rule trips escalate: the IP, the device and the number. */
export function escalationKeys(f: KeyFacts): string[] {
  const keys = [`n:${limitKeyOf(f.number.e164)}`];
  if (f.ip) keys.push(`ip:${addressOf(f.ip)}`);
  if (f.evidence.deviceId) keys.push(`dv:${f.evidence.deviceId}`);
  return keys;
}

export function escalationSpec(key: string, p: Policy): LimitSpec {
  return { reason: 'escalation', key: `es:${key}`, limit: UNLIMITED, windowMs: p.escalation.windowSeconds * 1000 };
}

/**
 * Escalation level from trip counts: 0 none, 1 always challenge, 2 blocked (both expire as trips age out).
 * A destination number escalates at most to "always challenge": anyone can send requests for a victim's
 * number, so letting those block it would hand attackers a lock-out of the owner (docs/rate-limits.md).
 */
export function escalationLevel(trips: number[], p: Policy, keys: string[] = []): 0 | 1 | 2 {
  let level: 0 | 1 | 2 = 0;
  trips.forEach((n, i) => {
    const cap = keys[i]?.startsWith('n:') ? 1 : 2;
    const l = n >= p.escalation.blockAfter ? 2 : n >= p.escalation.challengeAfter ? 1 : 0;
    level = Math.max(level, Math.min(l, cap)) as 0 | 1 | 2;
  });
  return level;
}

/** Counts approvals per number (90 days): a number that verified before is exempt from quarantines. */
export function verifiedNumberSpec(e164: string): LimitSpec {
  return { reason: 'verified', key: `vn:${e164}`, limit: UNLIMITED, windowMs: TRUST_WINDOW_MS };
}

export function trustSpec(e164: string, contextHash: string): LimitSpec {
  return { reason: 'trust', key: trustKey(e164, contextHash), limit: UNLIMITED, windowMs: TRUST_WINDOW_MS };
}

/**
 * The number's counters an approval resets: its failure counters (both budgets, every window) and its
 * unverified sends.
 */
export function numberFailureKeys(p: Policy, e164: string): string[] {
  const c = p.limits.check;
  const k = limitKeyOf(e164);
  return [`cf:${k}:${win(c.failuresPerNumber)}`, `cft:${k}:${win(c.trustedFailuresPerNumber)}`, `cfc:${k}:${win(c.consecutiveFailuresPerNumber)}`, unverifiedSendsSpec(e164, 0).key];
}

/**
 * What an operator's unlock of a destination resets (`otp-shield unlock`, `POST /v1/admin/unlock`): its send
 * budgets (both), its cooldown on every channel, its failed-check locks (hourly, its owner's, consecutive), its
 * unverified sends and its escalation. Not its verified and trust history, which only ever help its owner. The
 * keys are the current policy's: a window changed since a count was made names another key.
 */
export function destinationUnlockKeys(p: Policy, destination: string, channels: readonly string[]): string[] {
  const k = limitKeyOf(destination);
  return [
    ...ratesToSpecs('', `n:${k}`, p.limits.number).map((s) => s.key),
    ...ratesToSpecs('', `nt:${k}`, p.limits.trustedNumber).map((s) => s.key),
    ...channels.map((c) => cooldownKey(destination, c)),
    ...numberFailureKeys(p, destination),
    escalationSpec(`n:${k}`, p).key,
  ];
}

/** What an unlock of an IP resets: its own send limit, its failed-check locks (IPv6: its /64, /56 and /48) and its escalation. */
export function addressUnlockKeys(p: Policy, ip: CheckAddress): string[] {
  const per = p.limits.check.failuresPerIp;
  const addr = addressOf(ip);
  const keys = [...ratesToSpecs('', `ip:${addr}`, p.limits.ip).map((s) => s.key), `cfi:${addr}:${win(per)}`, escalationSpec(`ip:${addr}`, p).key];
  if (ip.site !== null) keys.push(`cfn:${ip.network}:${win(per)}`, `cfs:${ip.site}:${win(per)}`);
  return keys;
}

/**
 * Failed-check counters. Reading them with cost 0 tells whether the number or IP is locked. `ip`: the
 * request's address key (`addressOf`: an IPv6 address counts as its /64).
 */
export function checkFailureSpecs(p: Policy, e164: string, ip: CheckAddress | null, trusted: boolean): LimitSpec[] {
  const c = p.limits.check;
  const rate = trusted ? c.trustedFailuresPerNumber : c.failuresPerNumber;
  const long = c.consecutiveFailuresPerNumber;
  const specs: LimitSpec[] = [
    { reason: 'locked.number', key: `${trusted ? 'cft' : 'cf'}:${limitKeyOf(e164)}:${win(rate)}`, limit: rate.limit, windowMs: rate.windowSeconds * 1000 },
    { reason: 'locked.number', key: `cfc:${limitKeyOf(e164)}:${win(long)}`, limit: long.limit, windowMs: long.windowSeconds * 1000 },
  ];
  return ip ? [...specs, ...checkAddressFailureSpecs(p, ip)] : specs;
}

/**
 * The failed-check budgets of an address alone: what a check that found no verification counts, so that
 * asking "does this number have a code pending?" of many numbers runs into the same lock as guessing codes.
 */
export function checkAddressFailureSpecs(p: Policy, ip: CheckAddress): LimitSpec[] {
  const per = p.limits.check.failuresPerIp;
  const windowMs = per.windowSeconds * 1000;
  const specs: LimitSpec[] = [{ reason: 'locked.ip', key: `cfi:${addressOf(ip)}:${win(per)}`, limit: per.limit, windowMs }];
  // IPv6: the /64 is free to rotate through a delegation, so the /56 gets the budget one IPv4 address has (a
  // carrier NAT address holds more subscribers than a /56 does) and the /48 four times that, as the per-subnet
  // send limit counts them. IPv4 /24s are not counted: a carrier NAT pool's /24 holds thousands of real users.
  if (ip.site !== null) {
    specs.push({ reason: 'locked.subnet', key: `cfn:${ip.network}:${win(per)}`, limit: per.limit, windowMs });
    specs.push({ reason: 'locked.subnet', key: `cfs:${ip.site}:${win(per)}`, limit: per.limit * SITE_FACTOR, windowMs });
  }
  return specs;
}

/** What the failed-check counters of an address need: the address itself and, for IPv6, its /56 and /48. */
export type CheckAddress = Pick<IpFacts, 'ip' | 'subnet' | 'network' | 'site'>;
