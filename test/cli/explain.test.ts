import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideSend } from '../../src/engine/decide.ts';
import { DEFAULT_POLICY, DEFAULT_RULES } from '../../src/engine/policy.ts';
import { explain, limitLines } from '../../src/service/explain.ts';
import { facts, policy } from '../helpers/engine.ts';

const weight = (id: string) => DEFAULT_RULES[id]?.weight ?? 0;
const P = DEFAULT_POLICY;

describe('explain', () => {
  it('a clean browser request: no rule fires, the proof-of-work credit is shown, allow', () => {
    const e = explain(facts(), P);
    assert.equal(e.outcome, 'allow');
    assert.deepEqual(e.rules, []);
    assert.equal(e.score.rules, 0);
    assert.equal(e.score.powCredit, P.risk.powCredit);
    assert.equal(e.score.effective, -P.risk.powCredit);
    assert.match(e.why, /< challengeAt/);
  });

  it('lists every fired rule with its weight and adds them up to the decision score', () => {
    const f = facts({ evidence: { formToken: 'missing', pow: 'missing', acceptLanguage: null }, number: { disposable: true } });
    const e = explain(f, P);
    const ids = e.rules.map((r) => r.id);
    assert.deepEqual(ids, ['form_token.missing', 'pow.missing', 'no_accept_language', 'number.disposable']);
    for (const r of e.rules) {
      assert.equal(r.weight, weight(r.id));
      assert.equal(r.effect, `+${weight(r.id)}`);
      assert.equal(r.mode, 'live');
    }
    const sum = ids.reduce((s, id) => s + weight(id), 0);
    assert.equal(e.score.rules, sum);
    assert.equal(e.score.effective, sum, 'no credit without a solved proof-of-work');
    assert.equal(e.score.effective, decideSend(f, P).score);
    assert.equal(e.outcome, sum >= P.risk.challengeAt ? 'challenge' : 'allow');
  });

  it('shadow and off rules are shown but do not count', () => {
    const p = policy({ risk: { rules: { 'number.disposable': { action: 'score', weight: 50, mode: 'shadow' }, 'ip.vpn': { action: 'score', weight: 10, mode: 'off' } } } });
    const f = facts({ number: { disposable: true }, ip: { ...facts().ip!, vpn: true } });
    const e = explain(f, p);
    const disp = e.rules.find((r) => r.id === 'number.disposable');
    const vpn = e.rules.find((r) => r.id === 'ip.vpn');
    assert.equal(disp?.mode, 'shadow');
    assert.equal(disp?.effect, 'shadow (would +50)');
    assert.equal(vpn?.effect, 'off');
    assert.equal(e.score.rules, 0);
    assert.deepEqual(e.decision.shadow, ['number.disposable']);
    assert.equal(e.outcome, 'allow');
  });

  it('hard rules: a block-list hit blocks, an allow-list hit wins over it, a pause wins over both', () => {
    const block = explain(facts({ lists: [{ list: 'block', kind: 'number', value: '+6281234567890' }] }), P);
    assert.equal(block.outcome, 'block');
    assert.deepEqual(block.decision.reasons, ['list.block']);
    assert.equal(block.rules[0]?.effect, 'block');
    assert.match(block.why, /hard rule list\.block/);

    const lists = [
      { list: 'block' as const, kind: 'country', value: 'ID' },
      { list: 'allow' as const, kind: 'number', value: '+6281234567890' },
    ];
    const allowed = explain(facts({ lists }), P);
    assert.equal(allowed.outcome, 'allow');
    assert.deepEqual(allowed.decision.reasons, ['list.allow']);
    assert.match(allowed.why, /allow-listed/);

    const paused = explain(facts({ lists, state: { paused: 'country:ID' } }), P);
    assert.equal(paused.outcome, 'block');
    assert.match(paused.why, /paused for country:ID/);
  });

  it('explains score blocks, forced challenges and tarpits', () => {
    const heavy = facts({ evidence: { headless: true, scriptUserAgent: true, pow: 'invalid' }, ip: { ...facts().ip!, tor: true } });
    const e = explain(heavy, P);
    assert.equal(e.outcome, 'block');
    assert.equal(e.decision.reasons[0], 'score');
    assert.ok(e.score.effective >= P.risk.blockAt);
    assert.match(e.why, /≥ blockAt/);

    const throttled = explain(facts({ evidence: { pow: 'missing', formToken: 'missing' }, state: { throttled: ['country:ID'] } }), P);
    assert.equal(throttled.outcome, 'challenge');
    assert.match(throttled.why, /forced by throttled/);

    const solved = explain(facts({ state: { throttled: ['country:ID'] } }), P);
    assert.equal(solved.outcome, 'allow');
    assert.match(solved.why, /solved one/);

    const honeypot = explain(facts({ evidence: { honeypot: true } }), P);
    assert.equal(honeypot.outcome, 'tarpit');
    assert.match(honeypot.why, /sends nothing/);
  });

  it('a full send limit turns an allow into rate_limited, but limits are never the reason for a refusal', () => {
    const lines = limitLines(
      [
        { reason: 'rate_limited.number', key: 'n:x:10m', limit: 3, windowMs: 600_000 },
        { reason: 'rate_limited.ip', key: 'ip:y:10m', limit: 10, windowMs: 600_000 },
      ],
      [3, 9],
    );
    assert.deepEqual(
      lines.map((l) => [l.full, l.windowSeconds]),
      [
        [true, 600],
        [false, 600],
      ],
    );
    const e = explain(facts(), P, lines);
    assert.equal(e.decision.decision, 'allow');
    assert.equal(e.outcome, 'rate_limited');
    assert.deepEqual(e.limitedBy, ['rate_limited.number']);
    assert.match(e.why, /send limit is full/);

    const blocked = explain(facts({ lists: [{ list: 'block', kind: 'number', value: '+6281234567890' }] }), P, lines);
    assert.equal(blocked.outcome, 'block');
    assert.deepEqual(blocked.limitedBy, []);
  });

  it('never disagrees with decideSend (property test over random facts)', () => {
    const outcome = <T extends string>(...xs: T[]) => fc.constantFrom(...xs);
    const arb = fc.record({
      formToken: outcome('valid', 'invalid', 'expired', 'reused', 'missing'),
      pow: outcome('solved', 'invalid', 'missing', 'expired', 'reused'),
      // The size of the solved puzzle: a smaller one than a throttled scope asks for earns no credit.
      powLevel: fc.option(outcome('normal', 'elevated', 'high')),
      captcha: outcome('passed', 'failed', 'missing', 'error'),
      honeypot: fc.boolean(),
      headless: fc.boolean(),
      scriptUserAgent: fc.boolean(),
      elapsedMs: fc.option(fc.integer({ min: 0, max: 10_000 })),
      acceptLanguage: fc.option(fc.constant('en')),
      disposable: fc.boolean(),
      hosting: fc.boolean(),
      tor: fc.boolean(),
      ipCountry: fc.option(outcome('ID', 'US', 'GB')),
      type: outcome('MOBILE', 'VOIP', 'FIXED_LINE'),
      block: fc.boolean(),
      allow: fc.boolean(),
      paused: fc.boolean(),
      throttled: fc.boolean(),
      escalation: outcome<'0' | '1' | '2'>('0', '1', '2'),
      trusted: fc.boolean(),
      shadowTor: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, (a) => {
        const f = facts({
          evidence: { formToken: a.formToken, pow: a.pow, powLevel: a.powLevel, captcha: a.captcha, honeypot: a.honeypot, headless: a.headless, scriptUserAgent: a.scriptUserAgent, elapsedMs: a.elapsedMs, acceptLanguage: a.acceptLanguage },
          number: { disposable: a.disposable, type: a.type },
          ip: { ...facts().ip!, hosting: a.hosting, tor: a.tor, country: a.ipCountry },
          lists: [...(a.block ? [{ list: 'block' as const, kind: 'ip', value: '36.72.10.5' }] : []), ...(a.allow ? [{ list: 'allow' as const, kind: 'number', value: '+6281234567890' }] : [])],
          state: { paused: a.paused ? 'all' : null, throttled: a.throttled ? ['global'] : [], escalation: Number(a.escalation) as 0 | 1 | 2, trusted: a.trusted },
        });
        const p = a.shadowTor ? policy({ risk: { rules: { 'ip.tor': { action: 'score', weight: 45, mode: 'shadow' } } } }) : P;
        const d = decideSend(f, p);
        const e = explain(f, p);
        assert.equal(e.outcome, d.decision);
        assert.deepEqual(e.decision, d);
        assert.equal(e.score.effective, d.score);
        assert.equal(e.score.rules - e.score.powCredit - e.score.captchaCredit, d.score);
        for (const id of d.reasons.filter((r) => r !== 'score' && r !== 'challenge_passed')) assert.ok(e.rules.some((r) => r.id === id), `${id} is explained`);
        for (const id of d.shadow) assert.equal(e.rules.find((r) => r.id === id)?.mode, 'shadow');
        assert.ok(e.why.length > 0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('limitLines', () => {
  it('shows a failed-check lock with the lock\'s own limit, full from the tenth failure (the send limits read it one below)', async () => {
    const { sendLimitSpecs } = await import('../../src/engine/limits.ts');
    const specs = sendLimitSpecs(facts(), P, 0).filter((s) => s.reason === 'locked.number');
    assert.deepEqual(specs.map((s) => [s.key.split(':')[0], s.cost]), [['cf', 0], ['cfc', 0]]);
    const at = (n: number) => limitLines(specs, [n, 0])[0]!;
    assert.deepEqual([at(9).limit, at(9).full], [P.limits.check.failuresPerNumber.limit, false]);
    assert.deepEqual([at(10).limit, at(10).full], [10, true]);
  });
});
