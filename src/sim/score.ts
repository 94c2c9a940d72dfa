/**
 * Effectiveness figures from a labelled trace and its replay output: per scenario, what was allowed,
 * challenged, blocked and tarpitted; the fraud spend that got through; real users who could not finish;
 * brute-force approvals. Warm-up lines are not scored.
 *
 * A static trace cannot answer a challenge, so a real user whose only sends were challenged is counted
 * apart ("challenged, not resolved in the trace"): in production the widget would show a challenge that a
 * person can solve. Users who were blocked (or tarpitted, or whose code was refused) count as failed.
 *
 * Some challenges only a CAPTCHA clears (`CAPTCHA_ONLY_RULES` of the policy: a solved proof-of-work is already counted and the
 * score stays at `challengeAt`). Users whose only sends were such challenges are counted again apart
 * (`captchaOnly`): the price of those rules in CAPTCHAs shown to real people. (They are enforced only where
 * a CAPTCHA provider is configured, engine/policy.ts `withoutCaptcha`.)
 */
import type { Label } from './scenarios.ts';
import { priceOf, type PriceTable } from './prices.ts';
import { CAPTCHA_ONLY_RULES } from '../engine/policy.ts';

export interface ScenarioScore {
  scenario: string;
  fraud: boolean;
  sends: number;
  allow: number;
  challenge: number;
  block: number;
  tarpit: number;
  checks: number;
  approved: number;
  /** Money spent on messages that were sent (fraud scenarios). */
  spendAllowed: number;
  /** What the same sends would have cost with nothing refused (valid numbers only). */
  spendAttempted: number;
  /** Legit: sessions where the user meant to finish. */
  sessions: number;
  completed: number;
  /** Legit: meant to finish, was refused (block/tarpit) or never approved although a code was sent. */
  failed: number;
  /** Legit: never sent a code because every send was challenged (solvable by a person in production). */
  challengedOnly: number;
  /** Legit: of `challengedOnly`, those challenged by a rule only a CAPTCHA clears. */
  captchaOnly: number;
  /** Block reasons seen, with counts (top of the list first). */
  blockReasons: [string, number][];
  /** Fraud: sends and allowed sends per attacker campaign. */
  actors: Record<string, { sends: number; allow: number }>;
}

export interface Totals {
  fraudSends: number;
  fraudAllowed: number;
  fraudAllowedPct: number;
  legitSends: number;
  legitBlocked: number;
  legitBlockedPct: number;
  legitChallenged: number;
  legitChallengedPct: number;
  legitSessions: number;
  legitFailed: number;
  legitFailedPct: number;
  legitChallengedOnly: number;
  legitCaptchaOnly: number;
  bruteForceApprovals: number;
  fraudSpendAllowed: number;
  fraudSpendAttempted: number;
}

type Out = { decision?: string; reasons?: string[]; result?: string; error?: string };

/** a / b in percent, two decimals. */
const pct = (a: number, b: number) => (b === 0 ? 0 : Math.round((10_000 * a) / b) / 100);


export function scoreRun(lines: string[], labels: Label[], outputs: Out[], prices: PriceTable): { scenarios: ScenarioScore[]; totals: Totals } {
  const by = new Map<string, ScenarioScore>();
  const reasons = new Map<string, Map<string, number>>();
  const sessions = new Map<string, { scenario: string; intent: string; sent: boolean; approved: boolean; refused: boolean; challenged: boolean; captcha: boolean }>();

  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l.warmup) continue;
    const o = outputs[i] ?? {};
    const s =
      by.get(l.scenario) ??
      by
        .set(l.scenario, { scenario: l.scenario, fraud: l.fraud, sends: 0, allow: 0, challenge: 0, block: 0, tarpit: 0, checks: 0, approved: 0, spendAllowed: 0, spendAttempted: 0, sessions: 0, completed: 0, failed: 0, challengedOnly: 0, captchaOnly: 0, blockReasons: [], actors: {} })
        .get(l.scenario)!;
    const isSend = lines[i]!.includes('"type":"send"');
    const ses = l.session ? (sessions.get(l.session) ?? sessions.set(l.session, { scenario: l.scenario, intent: l.intent ?? 'verify', sent: false, approved: false, refused: false, challenged: false, captcha: false }).get(l.session)!) : null;
    if (isSend) {
      s.sends++;
      const d = o.decision ?? 'block';
      if (d === 'allow') s.allow++;
      else if (d === 'challenge') s.challenge++;
      else if (d === 'tarpit') s.tarpit++;
      else s.block++;
      const valid = !(o.reasons ?? []).includes('invalid_phone_number');
      const price = priceOf(prices, l.country);
      if (l.fraud && valid) s.spendAttempted += price;
      if (l.fraud && d === 'allow') s.spendAllowed += price;
      if (l.fraud) {
        const a = (s.actors[l.actor] ??= { sends: 0, allow: 0 });
        a.sends++;
        if (d === 'allow') a.allow++;
      }
      if (d === 'block' || d === 'tarpit') {
        const m = reasons.get(l.scenario) ?? reasons.set(l.scenario, new Map()).get(l.scenario)!;
        const key = d === 'tarpit' ? `tarpit:${(o.reasons ?? []).join('+')}` : (o.reasons ?? ['?']).filter((r) => r !== 'score').join('+') || 'score';
        m.set(key, (m.get(key) ?? 0) + 1);
      }
      if (ses) {
        if (d === 'allow') ses.sent = true;
        else if (d === 'challenge') {
          ses.challenged = true;
          if ((o.reasons ?? []).some((r) => CAPTCHA_ONLY_RULES.has(r))) ses.captcha = true;
        }
        else ses.refused = true;
      }
    } else {
      s.checks++;
      if (o.result === 'approved') {
        s.approved++;
        if (ses) ses.approved = true;
      }
    }
  }

  for (const ses of sessions.values()) {
    if (ses.intent !== 'verify') continue;
    const s = by.get(ses.scenario)!;
    s.sessions++;
    if (ses.approved) s.completed++;
    else if (!ses.sent && !ses.refused && ses.challenged) {
      s.challengedOnly++;
      if (ses.captcha) s.captchaOnly++;
    }
    else s.failed++;
  }
  for (const [scenario, m] of reasons) by.get(scenario)!.blockReasons = [...m].sort((a, b) => b[1] - a[1]).slice(0, 6);

  const scenarios = [...by.values()].sort((a, b) => Number(a.fraud) - Number(b.fraud) || a.scenario.localeCompare(b.scenario));
  const sum = (f: (s: ScenarioScore) => number, fraud: boolean) => scenarios.filter((s) => s.fraud === fraud).reduce((a, s) => a + f(s), 0);
  const fraudSends = sum((s) => s.sends, true);
  const fraudAllowed = sum((s) => s.allow, true);
  const legitSends = sum((s) => s.sends, false);
  const legitBlocked = sum((s) => s.block + s.tarpit, false);
  const legitChallenged = sum((s) => s.challenge, false);
  const legitSessions = sum((s) => s.sessions, false);
  const legitFailed = sum((s) => s.failed, false);
  const totals: Totals = {
    fraudSends,
    fraudAllowed,
    fraudAllowedPct: pct(fraudAllowed, fraudSends),
    legitSends,
    legitBlocked,
    legitBlockedPct: pct(legitBlocked, legitSends),
    legitChallenged,
    legitChallengedPct: pct(legitChallenged, legitSends),
    legitSessions,
    legitFailed,
    legitFailedPct: pct(legitFailed, legitSessions),
    legitChallengedOnly: sum((s) => s.challengedOnly, false),
    legitCaptchaOnly: sum((s) => s.captchaOnly, false),
    bruteForceApprovals: scenarios.filter((s) => s.scenario.startsWith('bruteforce.')).reduce((a, s) => a + s.approved, 0),
    fraudSpendAllowed: Math.round(sum((s) => s.spendAllowed, true) * 100) / 100,
    fraudSpendAttempted: Math.round(sum((s) => s.spendAttempted, true) * 100) / 100,
  };
  for (const s of scenarios) {
    s.spendAllowed = Math.round(s.spendAllowed * 100) / 100;
    s.spendAttempted = Math.round(s.spendAttempted * 100) / 100;
  }
  return { scenarios, totals };
}

const TARGETS = { fraudAllowedPct: 1, legitBlockedPct: 0.3, legitChallengedPct: 3, bruteForceApprovals: 0 };

export function targetsMet(t: Totals): Record<keyof typeof TARGETS, { value: number; target: number; met: boolean }> {
  return {
    fraudAllowedPct: { value: t.fraudAllowedPct, target: TARGETS.fraudAllowedPct, met: t.fraudAllowedPct <= TARGETS.fraudAllowedPct },
    legitBlockedPct: { value: t.legitBlockedPct, target: TARGETS.legitBlockedPct, met: t.legitBlockedPct <= TARGETS.legitBlockedPct },
    legitChallengedPct: { value: t.legitChallengedPct, target: TARGETS.legitChallengedPct, met: t.legitChallengedPct <= TARGETS.legitChallengedPct },
    bruteForceApprovals: { value: t.bruteForceApprovals, target: TARGETS.bruteForceApprovals, met: t.bruteForceApprovals <= TARGETS.bruteForceApprovals },
  };
}

/** The results as Markdown tables (for docs/benchmarks.md). */
export function markdown(r: { scenarios: ScenarioScore[]; totals: Totals }, currency: string): string {
  const money = (x: number) => `${x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  const rows = r.scenarios.map((s) => {
    const legit = s.fraud ? '' : `${s.completed}/${s.sessions} done, ${s.failed} failed, ${s.challengedOnly} challenged only`;
    const spend = s.fraud ? `${money(s.spendAllowed)} of ${money(s.spendAttempted)}` : '';
    return `| ${s.scenario} | ${s.sends} | ${s.allow} | ${s.challenge} | ${s.block} | ${s.tarpit} | ${spend} | ${legit} | ${s.scenario.startsWith('bruteforce.') ? s.approved : ''} |`;
  });
  const t = r.totals;
  const tm = targetsMet(t);
  const mark = (ok: boolean) => (ok ? 'met' : '**missed**');
  return [
    `| scenario | sends | allowed | challenged | blocked | tarpitted | fraud spend allowed (${currency}) | real users | brute-force approvals |`,
    '|---|---:|---:|---:|---:|---:|---:|---|---:|',
    ...rows,
    '',
    '| measure | value | target | |',
    '|---|---:|---:|---|',
    `| fraud sends allowed | ${t.fraudAllowed} of ${t.fraudSends} = ${t.fraudAllowedPct} % | ≤ 1 % | ${mark(tm.fraudAllowedPct.met)} |`,
    `| legit sends blocked (incl. tarpitted) | ${t.legitBlocked} of ${t.legitSends} = ${t.legitBlockedPct} % | ≤ 0.3 % | ${mark(tm.legitBlockedPct.met)} |`,
    `| legit sends challenged | ${t.legitChallenged} of ${t.legitSends} = ${t.legitChallengedPct} % | ≤ 3 % | ${mark(tm.legitChallengedPct.met)} |`,
    `| brute-force approvals | ${t.bruteForceApprovals} | 0 | ${mark(tm.bruteForceApprovals.met)} |`,
    `| real users who could not finish | ${t.legitFailed} of ${t.legitSessions} = ${t.legitFailedPct} % (+ ${t.legitChallengedOnly} challenged only) | | |`,
    `| … of them held by a rule only a CAPTCHA clears | ${t.legitCaptchaOnly} = ${pct(t.legitCaptchaOnly, t.legitSessions)} % | | |`,
    `| fraud spend allowed | ${money(t.fraudSpendAllowed)} of ${money(t.fraudSpendAttempted)} ${currency} attempted | | |`,
  ].join('\n');
}
