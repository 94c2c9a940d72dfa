/**
 * `otp-shield lookup <number> [--ip IP] …`: everything OTP Shield knows about a destination and a client,
 * and what it would decide for a send right now — without sending, counting or consuming anything.
 *
 * It gathers facts the way the verification service does (same signals, same shared state, same counter
 * keys) but only ever reads: counters with `peekLimits`, lists/pauses/quarantines/throttles with a
 * snapshot load. The decision comes from the engine's own `decideSend`, through `explain`.
 *
 * Client evidence cannot be looked up (form tokens and proofs of work are one-time), so it is assumed:
 * `missing` by default (an API call without the widget), or what the flags say.
 */
import type { Command } from 'commander';
import { contextHash } from '../../service/verifications.ts';
import { destinationFacts } from '../../service/destination.ts';
import { testNumbersOf } from '../../service/config-checks.ts';
import { ConfigError } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { NO_STATE, type EvidenceFacts, type FormTokenOutcome, type PowOutcome, type CaptchaOutcome, type SendFacts, type StateFacts } from '../../engine/facts.ts';
import { escalationKeys, escalationLevel, observationSpecs, sendLimitSpecs } from '../../engine/limits.ts';
import { DEFAULT_POLICY, enforcedPolicy, type Policy } from '../../engine/policy.ts';
import { stepThrottle } from '../../engine/throttle.ts';
import { loadPolicyFile } from '../../service/context.ts';
import { checkReadable } from '../errors.ts';
import { explain, limitLines, type Explanation, type LimitLine } from '../../service/explain.ts';
import { listView } from '../../service/lists.ts';
import { refreshPolicy } from '../../service/policy-store.ts';
import { buildSignals } from '../../service/signals.ts';
import { SharedState } from '../../service/state.ts';
import { classifyUserAgent } from '../../signals/invisible.ts';
import { deviceIdOf } from '../../signals/evidence.ts';
import { withoutPort } from '../../signals/ip.ts';
import { CHANNELS, type Channel, type Store } from '../../store/interface.ts';
import { configFrom, print, storeFrom } from '../shared.ts';

const EVIDENCE_PRESETS: Record<string, { formToken: FormTokenOutcome; pow: PowOutcome }> = {
  missing: { formToken: 'missing', pow: 'missing' },
  valid: { formToken: 'valid', pow: 'solved' },
  invalid: { formToken: 'invalid', pow: 'invalid' },
  expired: { formToken: 'expired', pow: 'expired' },
  reused: { formToken: 'reused', pow: 'reused' },
};
const CAPTCHA: readonly CaptchaOutcome[] = ['passed', 'failed', 'missing', 'error'];

export interface LookupOptions {
  ip?: string;
  channel?: string;
  device?: string;
  region?: string;
  evidence?: string;
  captcha?: string;
  headless?: boolean;
  honeypot?: boolean;
  userAgent?: string;
  acceptLanguage?: string;
  elapsedMs?: string;
  policy?: string;
  json?: boolean;
}

function usage(message: string): ConfigError {
  // ConfigError: main.ts prints its message without a stack trace and exits 1.
  return new ConfigError(message);
}

/** The evidence a request would carry, as the flags describe it (pure). */
export function assumedEvidence(o: LookupOptions): EvidenceFacts {
  const preset = EVIDENCE_PRESETS[o.evidence ?? 'missing'];
  if (!preset) throw usage(`--evidence is one of ${Object.keys(EVIDENCE_PRESETS).join(', ')}`);
  const captcha = (o.captcha ?? 'missing') as CaptchaOutcome;
  if (!CAPTCHA.includes(captcha)) throw usage(`--captcha is one of ${CAPTCHA.join(', ')}`);
  let elapsedMs: number | null = null;
  if (o.elapsedMs !== undefined) {
    elapsedMs = Number(o.elapsedMs);
    if (!Number.isFinite(elapsedMs) || elapsedMs < 0) throw usage('--elapsed-ms is a number of milliseconds');
  }
  const ua = o.userAgent !== undefined ? classifyUserAgent(o.userAgent) : { script: null, headless: null };
  // A browser running the widget always sends Accept-Language; an API call without evidence usually not.
  const acceptLanguage = o.acceptLanguage ?? (o.evidence === 'valid' ? 'en' : null);
  // Cleaned as the server cleans the widget's (an id it would discard counts nothing there either).
  const deviceId = deviceIdOf(o.device);
  return {
    formToken: preset.formToken,
    pow: preset.pow,
    captcha,
    honeypot: o.honeypot === true,
    elapsedMs,
    headless: o.headless === true || ua.headless !== null,
    scriptUserAgent: ua.script !== null,
    deviceId,
    acceptLanguage,
  };
}

export async function effectivePolicy(cfg: Config, store: Store, file: string | undefined): Promise<{ policy: Policy; source: string }> {
  if (file) {
    checkReadable(file, 'policy file');
    return { policy: loadPolicyFile(file), source: `file ${file}` };
  }
  if (cfg.policyFile) return { policy: loadPolicyFile(cfg.policyFile), source: `file ${cfg.policyFile} (policyFile)` };
  const stored = await refreshPolicy(store, 0);
  if (stored === null) return { policy: DEFAULT_POLICY, source: 'built-in defaults' };
  if (stored.policy === null) {
    const why = stored.errors.map((e) => `${e.path} ${e.message}`).join('; ');
    return { policy: DEFAULT_POLICY, source: `built-in defaults: stored version ${stored.version} does not load (${why})` };
  }
  return { policy: stored.policy, source: `stored version ${stored.version}` };
}

export interface LookupReport {
  input: { number: string; ip: string | null; channel: Channel; deviceId: string | null };
  policy: string;
  channelEnabled: boolean;
  testNumber: boolean;
  number: SendFacts['number'] & { national: string | null };
  ip: (NonNullable<SendFacts['ip']> & { asOrg?: string | null }) | null;
  lists: (ReturnType<typeof listView> | { list: string; kind: string; value: string })[];
  pending: { id: string; sends: number; resendAfter: string; expiresAt: string } | null;
  counters: LimitLine[];
  observed: { velocity: { device: number; ip: number }; ipCountries: number; escalationTrips: Record<string, number>; verifiedBefore: boolean; trusted: boolean };
  state: StateFacts & {
    pauses: { scope: string; since: string; note: string | null }[];
    quarantines: { scope: string; mode: string; reason: string; until: string }[];
    tightened: string[];
  };
  evidence: EvidenceFacts;
  decision: Explanation;
}

const iso = (ms: number) => new Date(ms).toISOString();

export async function lookup(cfg: Config, store: Store, numberInput: string, o: LookupOptions, now: number): Promise<LookupReport> {
  const channel = (o.channel ?? 'sms') as Channel;
  if (!CHANNELS.includes(channel)) throw usage(`--channel is one of ${CHANNELS.join(', ')}`);
  const evidence = assumedEvidence(o);
  const chosen = await effectivePolicy(cfg, store, o.policy);
  // As the server enforces it: without a CAPTCHA provider the rules only a CAPTCHA clears run in shadow.
  const policy = enforcedPolicy(() => chosen.policy, Boolean(cfg.captcha))();
  const source = chosen.source + (policy === chosen.policy ? '' : ' (rules only a CAPTCHA clears in shadow: no CAPTCHA provider)');

  // Lookups never verify evidence, so the signals' code secret is never used: an empty one is enough.
  const signals = await buildSignals(cfg, store, () => now, '');
  // A phone number, or for the email channel an address (service/destination.ts), as the server reads it.
  const dest = destinationFacts(signals, channel, numberInput, o.region, policy.limits.prefixDigits);
  if (!dest.ok) throw usage(`${JSON.stringify(numberInput)}: ${dest.message} (${dest.reason})`);
  let ip: LookupReport['ip'] = null;
  if (o.ip !== undefined) {
    // As the server reads a client's address: a proxy's brackets and port removed.
    ip = signals.ipFacts(withoutPort(o.ip));
    if (!ip) throw usage(`--ip ${JSON.stringify(o.ip)} is not an IP address`);
  }
  const e164 = dest.number.e164;
  const testNumber = testNumbersOf(cfg, signals).has(e164);

  const facts: SendFacts = {
    now,
    channel,
    number: dest.number,
    ip,
    evidence,
    lists: [],
    state: NO_STATE,
  };

  const shared = new SharedState(store, () => now);
  await shared.reload();
  facts.lists = shared.listHits({ e164, region: dest.number.region, ip: ip?.ip ?? null, ipCountry: ip?.country ?? null, deviceId: evidence.deviceId }, now);

  // The server's observation step counts this request (cost 1) and reads the rest (cost 0); the counts it
  // decides with are the ones after the request, so add each spec's cost to what is stored now.
  const layout = observationSpecs(facts, policy, contextHash(evidence.deviceId, ip?.subnet ?? null));
  const stored = await store.peekLimits(layout.specs, now);
  const c = layout.specs.map((s, i) => (stored[i] ?? 0) + (s.cost ?? 1));
  const idx = layout.index;
  const throttled: string[] = [];
  for (const [scope, i] of [['global', idx.global], [`country:${dest.number.region}`, idx.country], [`prefix:${dest.number.prefix}`, idx.prefix]] as const) {
    // stepThrottle is pure: this predicts the scope's state after the request without saving it. An email
    // address has no country or prefix scope (no index).
    if (i === undefined) continue;
    if (stepThrottle(scope, shared.throttle(scope), c[i] ?? 0, policy, now).state.tightenedSince !== null) throttled.push(scope);
  }
  const escKeys = escalationKeys(facts);
  const trips = idx.escalation.map((i) => stored[i] ?? 0);
  const q = shared.quarantineFor(dest.number.prefix, dest.number.region, now);
  facts.state = {
    throttled,
    quarantine: q ? { scope: q.scope, mode: q.mode } : null,
    escalation: escalationLevel(trips, policy, escKeys),
    paused: shared.pausedFor(e164, dest.number.region, channel),
    velocity: { device: idx.device !== undefined ? (c[idx.device] ?? 0) : 0, ip: idx.ip !== undefined ? (c[idx.ip] ?? 0) : 0 },
    trusted: idx.trust !== undefined && (stored[idx.trust] ?? 0) > 0,
    numberVerifiedBefore: (stored[idx.verified] ?? 0) > 0,
    unverifiedSends: c[idx.unverified] ?? 0,
    failedChecks: c[idx.failures] ?? 0,
    // As the server counts them with this request: a country the IP did not ask for today adds one (and
    // while the rule is off nothing is read or counted).
    // (IPv6: the larger of its /64's and its /56's.)
    ipCountries: Math.max(countriesWith(stored, idx.ipCountrySeen, idx.ipCountries), countriesWith(stored, idx.subnetCountrySeen, idx.subnetCountries)),
  };

  const pending = await store.findPending(e164, channel, now);
  const specs = sendLimitSpecs(facts, policy, pending?.sends ?? 0);
  const counters = limitLines(specs, await store.peekLimits(specs, now));

  // Show the stored entry behind each hit (id, note, expiry), so it can be removed with `lists remove`.
  const entries = await store.listEntries(now);
  const lists = facts.lists.map((h) => {
    const e = entries.find((x) => x.list === h.list && x.kind === h.kind && x.value === h.value);
    return e ? listView(e) : h;
  });

  return {
    input: { number: numberInput, ip: o.ip ?? null, channel, deviceId: evidence.deviceId },
    policy: source,
    channelEnabled: cfg.channels.includes(channel),
    testNumber,
    number: { ...facts.number, national: dest.national },
    ip,
    lists,
    pending: pending ? { id: pending.id, sends: pending.sends, resendAfter: iso(pending.resendAfter), expiresAt: iso(pending.expiresAt) } : null,
    counters,
    observed: {
      velocity: facts.state.velocity,
      ipCountries: facts.state.ipCountries ?? 0,
      escalationTrips: Object.fromEntries(escKeys.map((k, i) => [k, trips[i] ?? 0])),
      verifiedBefore: facts.state.numberVerifiedBefore,
      trusted: facts.state.trusted,
    },
    state: {
      ...facts.state,
      pauses: [...shared.pauses].map(([scope, p]) => ({ scope, since: iso(p.since), note: p.note })),
      quarantines: [...shared.quarantines.values()].filter((x) => x.until > now).map((x) => ({ scope: x.scope, mode: x.mode, reason: x.reason, until: iso(x.until) })),
      tightened: [...shared.throttles].filter(([, t]) => t.tightenedSince !== null).map(([scope]) => scope),
    },
    evidence,
    decision: explain(facts, policy, counters),
  };
}

// ------------------------------------------------------------------ printing

const yn = (b: boolean) => (b ? 'yes' : 'no');

/** An address's destination countries today as the server counts them with this request (unseen country: +1). */
function countriesWith(stored: number[], seenAt: number | undefined, countAt: number | undefined): number {
  if (countAt === undefined) return 0;
  return (stored[countAt] ?? 0) + ((stored[seenAt ?? -1] ?? 0) > 0 ? 0 : 1);
}

function windowText(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

export function formatReport(r: LookupReport): string[] {
  const out: string[] = [];
  const n = r.number;
  const d = r.decision;
  out.push(n.region === null ? `address    ${n.e164}  (email: no country, no prefix)` : `number     ${n.e164}  region ${n.region}  +${n.callingCode}  type ${n.type}  prefix ${n.prefix}`);
  out.push(`           disposable ${yn(n.disposable)}${n.sources.length ? `  sources ${n.sources.join(', ')}` : ''}`);
  if (r.ip) {
    const i = r.ip;
    out.push(`ip         ${i.ip}  subnet ${i.subnet}${i.network !== i.subnet ? `  network ${i.network}` : ''}${i.site ? `  site ${i.site}` : ''}  country ${i.country ?? 'unknown'}  ${i.asn !== null ? `AS${i.asn}${i.asOrg ? ` ${i.asOrg}` : ''}` : 'ASN unknown'}`);
    out.push(`           hosting ${yn(i.hosting)}  tor ${yn(i.tor)}  proxy ${yn(i.proxy)}  vpn ${yn(i.vpn)}${i.sources.length ? `  sources ${i.sources.join(', ')}` : ''}`);
  } else out.push('ip         (none given: --ip)');
  if (r.lists.length === 0) out.push('lists      no entry matches');
  for (const [k, h] of r.lists.entries()) {
    const extra = 'id' in h ? `  ${h.id}  ${h.expiresAt ? `expires ${h.expiresAt}` : 'no expiry'}${h.note ? `  "${h.note}"` : ''}` : '';
    out.push(`${k === 0 ? 'lists' : ''.padEnd(5)}      ${h.list} ${h.kind} ${h.value}${extra}`);
  }
  if (r.pending) out.push(`pending    ${r.pending.id}  sends ${r.pending.sends}  resend after ${r.pending.resendAfter}  expires ${r.pending.expiresAt}`);
  out.push('counters   (send limits; a send is refused when one is full)');
  for (const l of r.counters) {
    const used = `${l.count}/${l.limit} per ${windowText(l.windowSeconds)}`;
    out.push(`           ${l.full ? 'FULL ' : '     '}${l.reason.padEnd(22)} ${used.padEnd(20)} ${l.key}`);
  }
  const o = r.observed;
  out.push(`observed   requests in 10 min: device ${o.velocity.device}, ip ${o.velocity.ip} (this one included)  ip's destination countries in 24 h ${o.ipCountries}  verified before ${yn(o.verifiedBefore)}  trusted device+network ${yn(o.trusted)}`);
  out.push(`           escalation trips: ${Object.entries(o.escalationTrips).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const s = r.state;
  out.push(`state      paused ${s.paused ?? 'no'}  quarantine ${s.quarantine ? `${s.quarantine.scope} (${s.quarantine.mode})` : 'none'}  throttled ${s.throttled.join(', ') || 'none'}  escalation ${['none', 'challenge', 'block'][s.escalation]}`);
  out.push(`           all pauses: ${s.pauses.map((p) => p.scope).join(', ') || 'none'}; quarantines: ${s.quarantines.map((x) => `${x.scope} (${x.mode} until ${x.until})`).join(', ') || 'none'}; tightened scopes: ${s.tightened.join(', ') || 'none'}`);
  const e = r.evidence;
  out.push(
    `evidence   (assumed) form token ${e.formToken}, proof-of-work ${e.pow}, captcha ${e.captcha}, honeypot ${yn(e.honeypot)}, headless ${yn(e.headless)}, script UA ${yn(e.scriptUserAgent)}, Accept-Language ${e.acceptLanguage ?? 'none'}, elapsed ${e.elapsedMs ?? 'unknown'}`,
  );
  out.push(`policy     ${r.policy}`);
  if (d.rules.length === 0) out.push('rules      none fired');
  for (const [k, l] of d.rules.entries()) out.push(`${k === 0 ? 'rules' : ''.padEnd(5)}      ${l.id.padEnd(22)} ${l.effect.padEnd(22)} ${l.mode}`);
  const sc = d.score;
  out.push(`score      ${sc.effective} = rules ${sc.rules} - proof-of-work credit ${sc.powCredit} - captcha credit ${sc.captchaCredit}  (challengeAt ${sc.challengeAt}, blockAt ${sc.blockAt})`);
  if (!r.channelEnabled) out.push(`WOULD      refuse: channel ${r.input.channel} is not enabled (422 channel_disabled)`);
  else if (r.testNumber) out.push('WOULD      accept without sending: this is a configured test number (fixed code, no rules)');
  else out.push(`WOULD      ${d.outcome.toUpperCase()}${d.decision.reasons.length ? `  reasons ${d.decision.reasons.join(', ')}` : ''}${d.decision.shadow.length ? `  shadow ${d.decision.shadow.join(', ')}` : ''}`);
  out.push(`why        ${d.why}`);
  return out;
}

export function registerLookup(program: Command): void {
  program
    .command('lookup <number>')
    .description('show everything known about a number (an email address with --channel email, and an IP) and what a send would get now, without sending or counting anything')
    .option('--ip <ip>', "the client's IP address")
    .option('--channel <channel>', `channel (${CHANNELS.join(', ')})`, 'sms')
    .option('--device <id>', 'device id (FingerprintJS visitorId from the widget)')
    .option('--region <cc>', 'default region for a national number, e.g. ID')
    .option('--evidence <outcome>', 'assumed form token + proof-of-work: missing (no widget), valid (a browser with the widget), invalid, expired, reused', 'missing')
    .option('--captcha <outcome>', 'assumed CAPTCHA outcome: passed, failed, missing, error', 'missing')
    .option('--headless', 'assume the widget reported automation (webdriver, headless)')
    .option('--honeypot', 'assume the honeypot field was filled')
    .option('--user-agent <ua>', 'User-Agent to classify (script clients, headless browsers)')
    .option('--accept-language <value>', 'assumed Accept-Language (default: sent with --evidence valid, absent otherwise)')
    .option('--elapsed-ms <ms>', 'assumed time from form token to submit')
    .option('--policy <file>', 'decide with this policy file instead of the one in force')
    .option('--json', 'print JSON')
    .action(async (numberInput: string, opts: LookupOptions, cmd: Command) => {
      const cfg = configFrom(cmd);
      const store = await storeFrom(cfg);
      let report: LookupReport;
      try {
        report = await lookup(cfg, store, numberInput, opts, Date.now());
      } finally {
        await store.close();
      }
      if (opts.json) print(JSON.stringify(report, null, 2));
      else for (const line of formatReport(report)) print(line);
    });
}
