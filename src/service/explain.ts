/**
 * Explaining a send decision: which rules fired, what each one did under the policy, how the score was
 * reached and which counter would refuse the send. Used by `otp-shield lookup`; pure (no I/O, no clock),
 * so the explanation of given facts is always the same and can be tested without a store.
 *
 * It calls the engine's own `triggeredRules` and `decideSend` rather than re-implementing them: the
 * explanation can then never disagree with what the server decides for the same facts.
 */
import { decideSend, powEarnsCredit, triggeredRules, type Decision, type DecisionKind } from '../engine/decide.ts';
import type { SendFacts } from '../engine/facts.ts';
import { ruleConfig, type Policy, type RuleAction } from '../engine/policy.ts';
import type { LimitSpec } from '../store/interface.ts';

export type RuleMode = 'live' | 'shadow' | 'off';

export interface RuleLine {
  id: string;
  action: RuleAction;
  /** Weight of a `score` rule, null for rules that decide by themselves. */
  weight: number | null;
  mode: RuleMode;
  /** What the rule did here: `+25`, `-30`, `block`, `challenge`, `shadow (would +25)`, `off`. */
  effect: string;
}

/** One send-limit counter and whether it still has room for one more send. */
export interface LimitLine {
  reason: string;
  key: string;
  count: number;
  limit: number;
  windowSeconds: number;
  /** The next send would exceed the limit. */
  full: boolean;
}

export interface Explanation {
  /** What the engine decides (before send limits). */
  decision: Decision;
  /**
   * What would happen to the send: the decision, or `rate_limited` when the decision is `allow` but a
   * send limit is full (the server checks limits only for sends it would make).
   */
  outcome: DecisionKind | 'rate_limited';
  /** Reasons of the full limits when `outcome` is `rate_limited`. */
  limitedBy: string[];
  /** Every rule that fired, in evaluation order, with its effect. */
  rules: RuleLine[];
  score: {
    /** Sum of the weights of live `score` rules. */
    rules: number;
    powCredit: number;
    captchaCredit: number;
    /** `rules - credits`: the number compared with the thresholds (equals `decision.score`). */
    effective: number;
    challengeAt: number;
    blockAt: number;
  };
  /** One sentence for people: why this outcome. */
  why: string;
}

export function limitLines(specs: readonly LimitSpec[], counts: readonly number[]): LimitLine[] {
  return specs.map((s, i) => {
    const count = counts[i] ?? 0;
    // A failed-check lock read by the send limits (cost 0, limit one below the lock: engine/limits.ts) is shown
    // with the lock's own limit: "10 failures lock it", not "9".
    const limit = s.cost === 0 && s.reason.startsWith('locked.') ? s.limit + 1 : s.limit;
    // Same test as the store's consumeLimits: allowed while count + cost stays within the limit.
    return { reason: s.reason, key: s.key, count, limit, windowSeconds: Math.round(s.windowMs / 1000), full: count + (s.cost ?? 1) > s.limit };
  });
}

function signed(n: number): string {
  return n >= 0 ? `+${n}` : String(n);
}

function ruleLine(policy: Policy, id: string): RuleLine {
  const cfg = ruleConfig(policy, id);
  const mode: RuleMode = cfg.mode ?? 'live';
  const weight = cfg.action === 'score' ? (cfg.weight ?? 0) : null;
  const does = weight !== null ? signed(weight) : cfg.action;
  const effect = mode === 'live' ? does : mode === 'shadow' ? `shadow (would ${does})` : 'off';
  return { id, action: cfg.action, weight, mode, effect };
}

function why(d: Decision, f: SendFacts, rules: RuleLine[], score: Explanation['score'], limitedBy: string[]): string {
  const r = d.reasons;
  const forced = rules.filter((l) => l.mode === 'live' && l.action === 'challenge').map((l) => l.id);
  const cmp = (n: number) => `score ${n}`;
  if (limitedBy.length > 0) return `the rules allow it, but a send limit is full: ${limitedBy.join(', ')} (answered 429 rate_limited)`;
  switch (d.decision) {
    case 'block':
      if (r[0] === 'paused') return `sends are paused for ${f.state.paused ?? 'this scope'}: the emergency switch blocks even allow-listed numbers`;
      if (r[0] === 'score') return `${cmp(score.effective)} ≥ blockAt ${score.blockAt}: blocked even with a solved challenge (${r.slice(1).join(', ')})`;
      return `blocked by hard rule${r.length > 1 ? 's' : ''} ${r.join(', ')}`;
    case 'tarpit':
      return `tarpit (${r.join(', ')}): answers like a real send, sends nothing, no code can match`;
    case 'challenge':
      if (score.effective >= score.challengeAt) return `${cmp(score.effective)} ≥ challengeAt ${score.challengeAt}: needs a solved proof-of-work or CAPTCHA (${r.join(', ')})`;
      return `challenge forced by ${forced.join(', ')}: needs a solved proof-of-work or CAPTCHA`;
    case 'allow':
      if (r[0] === 'list.allow') return 'allow-listed: every rule except `paused` is skipped';
      if (r[0] === 'challenge_passed') return `a challenge was needed and the request carries a solved one (${cmp(score.effective)})`;
      return `${cmp(score.effective)} < challengeAt ${score.challengeAt}`;
  }
}

/**
 * Explain what `decideSend` decides for these facts under this policy. `limits` (optional) are the send
 * limit counters as they are now; a full one turns an `allow` into `rate_limited`, as in the server.
 */
export function explain(facts: SendFacts, policy: Policy, limits: readonly LimitLine[] = []): Explanation {
  const decision = decideSend(facts, policy);
  const rules = triggeredRules(facts, policy).map((id) => ruleLine(policy, id));
  const ruleScore = rules.reduce((sum, l) => sum + (l.mode === 'live' && l.weight !== null ? l.weight : 0), 0);
  // As decideSend credits it: a smaller puzzle than a throttled scope asks for earns nothing.
  const powCredit = powEarnsCredit(facts.evidence, decision.powLevel) ? policy.risk.powCredit : 0;
  const captchaCredit = facts.evidence.captcha === 'passed' ? policy.risk.captchaCredit : 0;
  const score = {
    rules: ruleScore,
    powCredit,
    captchaCredit,
    effective: ruleScore - powCredit - captchaCredit,
    challengeAt: policy.risk.challengeAt,
    blockAt: policy.risk.blockAt,
  };
  const limitedBy = decision.decision === 'allow' ? [...new Set(limits.filter((l) => l.full).map((l) => l.reason))] : [];
  return {
    decision,
    outcome: limitedBy.length > 0 ? 'rate_limited' : decision.decision,
    limitedBy,
    rules,
    score,
    why: why(decision, facts, rules, score, limitedBy),
  };
}
