/**
 * The risk decision: facts + policy → allow | challenge | block | tarpit, with reasons and a score.
 *
 * Pure and synchronous: no I/O, no clock (time is `facts.now`). The HTTP service and the replay CLI call
 * this same function; only how they gather facts differs.
 *
 * Order of precedence (docs/policy.md):
 *  1. `paused` (emergency switch) blocks, even allow-listed numbers: it exists for the moment of an attack.
 *  2. allow-list hits allow at once (QA numbers, partners), skipping every other rule.
 *  3. hard rules with action `block`, then `tarpit`.
 *  4. soft rules add weights; solved proof-of-work / passed CAPTCHA subtract their credit;
 *     effective score ≥ blockAt → block, ≥ challengeAt → challenge.
 *  5. forced challenges (throttling, escalation, quarantine) need a solved challenge to pass.
 * Rules in `shadow` mode are evaluated and reported as `shadow:<rule>` but change nothing.
 */
import type { SendFacts } from './facts.ts';
import { CAPTCHA_ONLY_RULES, ruleConfig, type Policy } from './policy.ts';

export type DecisionKind = 'allow' | 'challenge' | 'block' | 'tarpit';

export interface Decision {
  decision: DecisionKind;
  /** Rule ids that drove the decision (live rules only), in evaluation order. */
  reasons: string[];
  /** Rules in shadow mode that would have fired. */
  shadow: string[];
  /** Score after credits for solved challenges. */
  score: number;
  /** Proof-of-work difficulty level to ask for when the decision is `challenge`. */
  powLevel: 'normal' | 'elevated' | 'high';
}

/**
 * Whether the request's proof-of-work earns its credit. A throttled scope or an escalated client is asked for
 * the biggest puzzle (`powLevel` high): a smaller one (a normal puzzle from /v1/challenges instead of the
 * challenge's own) earns nothing, or raising the size would cost an attacker nothing. Puzzles of unknown size
 * (issued before sizes were signed, replayed traces) count.
 */
export function powEarnsCredit(ev: Pick<SendFacts['evidence'], 'pow' | 'powLevel'>, powLevel: Decision['powLevel']): boolean {
  return ev.pow === 'solved' && (powLevel !== 'high' || ev.powLevel == null || ev.powLevel === 'high');
}

/** Which rules fire for these facts (policy-independent except for thresholds carried in the policy). */
export function triggeredRules(f: SendFacts, p: Policy): string[] {
  const out: string[] = [];
  const ev = f.evidence;
  if (f.state.paused) out.push('paused');
  for (const hit of f.lists) out.push(hit.list === 'allow' ? 'list.allow' : 'list.block');

  const nums = p.numbers;
  // An email address has no country (region null): the number's country lists do not apply to it.
  const region = f.number.region;
  if (region !== null) {
    if (nums.allowCountries.length > 0 && !nums.allowCountries.includes(region)) out.push('country.number');
    else if (nums.denyCountries.includes(region)) out.push('country.number');
  }
  const ipCountry = f.ip?.country ?? null;
  if (ipCountry) {
    if (nums.allowIpCountries.length > 0 && !nums.allowIpCountries.includes(ipCountry)) out.push('country.ip');
    else if (nums.denyIpCountries.includes(ipCountry)) out.push('country.ip');
  }
  const allowedTypes = nums.allowedLineTypes[f.channel] as string[];
  if (f.channel !== 'email' && !allowedTypes.includes(f.number.type)) out.push('line_type');

  if (f.state.escalation === 2) out.push('escalation.block');
  // Real users of a quarantined range keep working: a number that verified before is not pumping.
  const quarantine = f.state.numberVerifiedBefore ? null : f.state.quarantine;
  // New users of a quarantined range who bring good browser evidence get a CAPTCHA instead of a refusal (if
  // the policy says so). Not for a blocked country: that happens only to countries without real users.
  if (quarantine?.mode === 'block') {
    const captcha = p.pumping.goodEvidence === 'captcha' && quarantine.scope.startsWith('prefix:') && goodEvidence(f);
    out.push(captcha ? 'quarantine.captcha' : 'quarantine.block');
  }
  if (ev.honeypot) out.push('honeypot');

  if (ev.formToken !== 'valid') out.push(`form_token.${ev.formToken}`);
  if (ev.pow === 'missing') out.push('pow.missing');
  else if (ev.pow !== 'solved') out.push('pow.invalid');
  if (ev.captcha === 'failed') out.push('captcha.failed');
  if (ev.elapsedMs !== null && ev.elapsedMs < p.risk.minHumanMs) out.push('too_fast');
  if (ev.headless) out.push('headless');
  if (ev.scriptUserAgent) out.push('script_user_agent');
  if (!ev.acceptLanguage) out.push('no_accept_language');

  if (f.ip) {
    if (f.ip.hosting) out.push('ip.hosting');
    if (f.ip.tor) out.push('ip.tor');
    if (f.ip.proxy) out.push('ip.proxy');
    if (f.ip.vpn) out.push('ip.vpn');
    if (f.ip.country && region !== null && f.ip.country !== region) out.push('ip.country_mismatch');
  }
  if (f.number.disposable) out.push('number.disposable');
  if (f.state.velocity.device > p.risk.deviceVelocity) out.push('device_velocity');
  if (f.state.velocity.ip > p.risk.ipVelocity) out.push('ip_velocity');
  if ((f.state.ipCountries ?? 0) > p.risk.ipCountries) out.push('ip.many_countries');
  if (f.state.trusted) out.push('trusted_context');
  // The number's own history, from anyone but the context that verified it before (its owner).
  if (!f.state.trusted) {
    if ((f.state.unverifiedSends ?? 0) >= p.risk.unverifiedSendsPerNumber) out.push('number.unverified_sends');
    if ((f.state.failedChecks ?? 0) >= p.risk.failedChecksPerNumber) out.push('number.failed_checks');
  }

  if (f.state.throttled.length > 0) out.push('throttled');
  if (f.state.escalation === 1) out.push('escalation.challenge');
  if (quarantine?.mode === 'challenge') out.push('quarantine.challenge');
  return out;
}

/**
 * Good browser evidence: a valid form token and a solved proof-of-work from a browser without automation
 * markers, on an IP that is not a hosting, Tor, proxy or VPN address. Pumping bots can present all of it,
 * which is why it earns a CAPTCHA rather than a pass.
 */
export function goodEvidence(f: SendFacts): boolean {
  const ev = f.evidence;
  if (ev.formToken !== 'valid' || ev.pow !== 'solved' || ev.headless || ev.scriptUserAgent || ev.honeypot) return false;
  return f.ip !== null && !f.ip.hosting && !f.ip.tor && !f.ip.proxy && !f.ip.vpn;
}

/**
 * Evidence a client without the widget never has (a native app, a server-to-server integration): its absence
 * says how the client is built, not that it misbehaves, so it weighs in decisions but not in escalation trips —
 * counted, a native app's users behind one carrier NAT address escalated it for everyone with any 20-point rule
 * (a mobile review).
 */
const ABSENT_WIDGET_EVIDENCE: ReadonlySet<string> = new Set(['form_token.missing', 'pow.missing', 'no_accept_language']);

/**
 * Whether a decision is a rule trip for escalation: a block or tarpit for a reason other than a pause or a
 * rate limit, or a challenge whose score reached `challengeAt` — without the weight of the rules about the
 * number or its range (`CAPTCHA_ONLY_RULES`: they fire for its owner and a range's real users too) and of absent
 * widget evidence (`ABSENT_WIDGET_EVIDENCE`). Forced challenges of the adaptive layers (throttling, quarantine, escalation) are no trips.
 */
export function isRuleTrip(d: Decision, p: Policy): boolean {
  // Only a client with neither a token nor a puzzle is one without the widget: a page that has one and lacks the
  // other, or lacks Accept-Language beside a token, keeps those weights in its trips.
  const noWidget = d.reasons.includes('form_token.missing') && d.reasons.includes('pow.missing');
  const own = d.reasons.filter((r) => CAPTCHA_ONLY_RULES.has(r) || (noWidget && ABSENT_WIDGET_EVIDENCE.has(r))).reduce((sum, r) => sum + Math.max(0, ruleConfig(p, r).weight ?? 0), 0);
  if (d.decision === 'challenge') return d.score - own >= p.risk.challengeAt;
  if (d.decision !== 'block' && d.decision !== 'tarpit') return false;
  if (d.reasons[0] === 'score') return d.score - own >= p.risk.challengeAt;
  const adaptive = (r: string) => r.startsWith('quarantine.') || r.startsWith('escalation.');
  // A spent budget (`budget.country`) refuses everyone, like a pause: no trip.
  if (d.reasons.some((r) => r !== 'paused' && !r.startsWith('budget.') && !r.startsWith('rate_limited.') && !r.startsWith('locked.') && r !== 'cooldown' && !adaptive(r))) return true;
  // A quarantine's or the escalation's own block is a trip only when the client's own signals would have
  // challenged it anyway: a quarantine refuses every new number of a range (the real users of an integration
  // without the widget too), and counting escalation's blocks renewed a shared address's block with each retry
  // of the people behind it.
  return d.reasons.some(adaptive) && d.score - own >= p.risk.challengeAt;
}

export function decideSend(f: SendFacts, p: Policy): Decision {
  const fired = triggeredRules(f, p);
  const shadow: string[] = [];
  const blocks: string[] = [];
  const tarpits: string[] = [];
  const forced: string[] = [];
  const scored: string[] = [];
  let allowListed = false;
  let score = 0;
  // A throttled scope or an escalated client asks for the biggest puzzle, but only while its rule is live: a
  // rule in shadow (or off) must decide as if it did not exist (docs/policy.md), and a raised puzzle size
  // withholds the credit of the normal one.
  let adaptive = false;

  for (const id of fired) {
    const cfg = ruleConfig(p, id);
    const mode = cfg.mode ?? 'live';
    if (mode === 'off') continue;
    if (mode === 'shadow') {
      shadow.push(id);
      continue;
    }
    if (id === 'throttled' || id.startsWith('escalation.')) adaptive = true;
    switch (cfg.action) {
      case 'allow':
        allowListed = true;
        break;
      case 'block':
        blocks.push(id);
        break;
      case 'tarpit':
        tarpits.push(id);
        break;
      case 'challenge':
        forced.push(id);
        break;
      case 'score': {
        const w = cfg.weight ?? 0;
        score += w;
        if (w > 0) scored.push(id);
        break;
      }
    }
  }

  const ev = f.evidence;
  const powLevel: Decision['powLevel'] = adaptive ? 'high' : score >= p.risk.challengeAt ? 'elevated' : 'normal';
  const powSolved = powEarnsCredit(ev, powLevel);
  const captchaPassed = ev.captcha === 'passed';
  const credit = (powSolved ? p.risk.powCredit : 0) + (captchaPassed ? p.risk.captchaCredit : 0);
  const effective = score - credit;
  const base = { shadow, score: effective, powLevel };

  if (blocks.includes('paused')) return { decision: 'block', reasons: ['paused'], ...base };
  if (allowListed) return { decision: 'allow', reasons: ['list.allow'], ...base };
  if (blocks.length > 0) return { decision: 'block', reasons: blocks, ...base };
  if (tarpits.length > 0) return { decision: 'tarpit', reasons: tarpits, ...base };
  if (effective >= p.risk.blockAt) return { decision: 'block', reasons: ['score', ...scored], ...base };
  if (effective >= p.risk.challengeAt) return { decision: 'challenge', reasons: [...scored, ...forced], ...base };
  if (forced.length > 0 && !powSolved && !captchaPassed) return { decision: 'challenge', reasons: [...forced, ...scored], ...base };
  return { decision: 'allow', reasons: score >= p.risk.challengeAt || forced.length > 0 ? ['challenge_passed'] : [], ...base };
}
