import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideSend } from '../../src/engine/decide.ts';
import { DEFAULT_POLICY, parsePolicy, ruleConfig } from '../../src/engine/policy.ts';
import { facts, policy } from '../helpers/engine.ts';

describe('decideSend', () => {
  const P = DEFAULT_POLICY;

  it('allows a clean browser request', () => {
    assert.equal(decideSend(facts(), P).decision, 'allow');
  });

  it('allows a server-to-server request without widget evidence', () => {
    const d = decideSend(facts({ evidence: { formToken: 'missing', pow: 'missing', elapsedMs: null } }), P);
    assert.equal(d.decision, 'allow', JSON.stringify(d));
  });

  it('tarpits a filled honeypot', () => {
    const d = decideSend(facts({ evidence: { honeypot: true } }), P);
    assert.equal(d.decision, 'tarpit');
    assert.deepEqual(d.reasons, ['honeypot']);
  });

  it('challenges a headless browser even with solved proof-of-work', () => {
    const d = decideSend(facts({ evidence: { headless: true } }), P);
    assert.equal(d.decision, 'challenge');
    assert.ok(d.reasons.includes('headless'));
  });

  it('a passed CAPTCHA lets a challenged request through', () => {
    const d = decideSend(facts({ evidence: { headless: true, captcha: 'passed' } }), P);
    assert.equal(d.decision, 'allow');
  });

  it('blocks by line type, country and lists; the allow list wins over blocks but not over a pause', () => {
    assert.deepEqual(decideSend(facts({ number: { ...facts().number, type: 'FIXED_LINE' } }), P).reasons, ['line_type']);
    assert.equal(decideSend(facts({ number: { ...facts().number, type: 'FIXED_LINE' }, channel: 'voice' }), P).decision, 'allow');
    const p = policy({ numbers: { allowCountries: ['GB'] } });
    assert.deepEqual(decideSend(facts(), p).reasons, ['country.number']);
    const blocked = facts({ lists: [{ list: 'block', kind: 'prefix', value: '+62812' }] });
    assert.equal(decideSend(blocked, P).decision, 'block');
    const both = facts({ lists: [{ list: 'block', kind: 'prefix', value: '+62812' }, { list: 'allow', kind: 'number', value: '+6281234567890' }] });
    assert.equal(decideSend(both, P).decision, 'allow');
    assert.equal(decideSend({ ...both, state: { ...both.state, paused: 'all' } }, P).decision, 'block');
  });

  it('IP country mismatch is a signal, not a verdict', () => {
    const d = decideSend(facts({ ip: { ...facts().ip!, country: 'US' } }), P);
    assert.equal(d.decision, 'allow');
    assert.equal(d.score, 10 - 30);
  });

  it('throttling and escalation force a challenge, which a solved proof-of-work satisfies; never a block', () => {
    const throttled = facts({ state: { throttled: ['country:ID'] }, evidence: { pow: 'missing' } });
    assert.equal(decideSend(throttled, P).decision, 'challenge');
    assert.equal(decideSend(facts({ state: { throttled: ['country:ID'] } }), P).decision, 'allow');
    assert.equal(decideSend(facts({ state: { escalation: 2 } }), P).decision, 'block');
  });

  it('a throttled scope or an escalated client needs a puzzle of the highest level: a smaller one earns nothing', () => {
    for (const state of [{ throttled: ['country:ID'] }, { escalation: 1 }] as Partial<import('../../src/engine/facts.ts').StateFacts>[]) {
      const small = decideSend(facts({ state, evidence: { powLevel: 'normal' } }), P);
      assert.equal(small.decision, 'challenge', JSON.stringify(state));
      assert.equal(small.powLevel, 'high', 'and the challenge asks for the highest level');
      assert.equal(decideSend(facts({ state, evidence: { powLevel: 'elevated' } }), P).decision, 'challenge');
      assert.equal(decideSend(facts({ state, evidence: { powLevel: 'high' } }), P).decision, 'allow', JSON.stringify(state));
      // Unknown size (a puzzle issued before sizes were signed, a replayed trace): credited as before.
      assert.equal(decideSend(facts({ state, evidence: { powLevel: null } }), P).decision, 'allow');
    }
    // Elsewhere any size earns the credit.
    assert.equal(decideSend(facts({ evidence: { powLevel: 'normal' } }), P).decision, 'allow');
  });

  it('shadow rules are reported but not enforced', () => {
    const p = policy({ risk: { rules: { 'line_type': { action: 'block', mode: 'shadow' } } } });
    const d = decideSend(facts({ number: { ...facts().number, type: 'VOIP' } }), p);
    assert.equal(d.decision, 'allow');
    assert.deepEqual(d.shadow, ['line_type']);
  });

  it('throttled and escalation rules in shadow or off decide as if they did not exist (no raised puzzle size either)', () => {
    // A disposable number (50) with a solved normal-size puzzle (credit 30): 20 outside any throttled scope.
    const base = { number: { ...facts().number, disposable: true }, evidence: { powLevel: 'normal' as const } };
    const reference = decideSend(facts(base), P);
    assert.equal(reference.decision, 'allow');
    const cases: [string, Partial<import('../../src/engine/facts.ts').StateFacts>][] = [
      ['throttled', { throttled: ['country:ID'] }],
      ['escalation.challenge', { escalation: 1 }],
    ];
    for (const [rule, state] of cases) {
      for (const mode of ['shadow', 'off'] as const) {
        const p = policy({ risk: { rules: { [rule]: { action: 'challenge', mode } } } });
        const d = decideSend(facts({ ...base, state }), p);
        assert.deepEqual([d.decision, d.score, d.powLevel], [reference.decision, reference.score, reference.powLevel], `${rule} ${mode}`);
        assert.deepEqual(d.shadow, mode === 'shadow' ? [rule] : [], `${rule} ${mode}`);
      }
      // Live, it does raise the size and withhold the normal puzzle's credit.
      assert.equal(decideSend(facts({ ...base, state }), P).powLevel, 'high');
    }
  });

  it('rejects invalid policies with a path', () => {
    const r = parsePolicy({ limits: { number: [{ limit: -1, windowSeconds: 60 }] } });
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.errors[0]!.path.startsWith('/limits/number'));
    assert.equal(parsePolicy({ risk: { rules: { nope: { action: 'block' } } } }).ok, false);
    assert.equal(parsePolicy({ risk: { challengeAt: 50, blockAt: 40 } }).ok, false);
    // Relations the schema cannot express, each reported with its path.
    const bad: [unknown, string][] = [
      [{ escalation: { challengeAfter: 10, blockAfter: 1 } }, '/escalation/blockAfter'],
      [{ throttle: { factor: 4, relaxFactor: 4 } }, '/throttle/relaxFactor'],
      [{ numbers: { allowCountries: ['ID', 'MY'], denyCountries: ['MY'] } }, '/numbers/denyCountries'],
      [{ numbers: { allowIpCountries: ['ID'], denyIpCountries: ['ID'] } }, '/numbers/denyIpCountries'],
      [{ name: 'prod\u0000' }, '/name'],
      [{ numbers: { denyCountries: ['UK'] } }, '/numbers/denyCountries'],
      [{ numbers: { allowCountries: ['ID', 'ZZ'] } }, '/numbers/allowCountries'],
      [{ numbers: { denyIpCountries: ['UK'] } }, '/numbers/denyIpCountries'],
      // Found by a policy author's review (2026-11-28): each was accepted and did something else quietly.
      [{ limits: { number: [{ limit: 3, windowSeconds: 600 }, { limit: 5, windowSeconds: 600 }] } }, '/limits/number'],
      [{ limits: { ip: [{ limit: 10, windowSeconds: 600 }, { limit: 100, windowSeconds: 86_400 }, { limit: 20, windowSeconds: 600 }] } }, '/limits/ip'],
      [{ risk: { rules: { line_type: { action: 'score' } } } }, '/risk/rules/line_type'],
      [{ throttle: { relaxFactor: 0, floors: { global: 300, country: 100, prefix: 0 } } }, '/throttle/relaxFactor'],
      [{ limits: { cooldown: { firstSeconds: 30, factor: 2, maxSeconds: 0 } } }, '/limits/cooldown/maxSeconds'],
      [{ limits: { cooldown: { firstSeconds: 600, factor: 2, maxSeconds: 10 } } }, '/limits/cooldown/maxSeconds'],
    ];
    for (const [doc, path] of bad) {
      const res = parsePolicy(doc);
      assert.ok(!res.ok && res.errors.some((e) => e.path === path), `${JSON.stringify(doc)} → ${JSON.stringify(res)}`);
    }
    assert.ok(parsePolicy({ escalation: { challengeAfter: 5, blockAfter: 5 }, throttle: { relaxFactor: 0 }, name: 'prod — Jakarta' }).ok);
    assert.ok(parsePolicy({ limits: { cooldown: { firstSeconds: 0, factor: 1, maxSeconds: 0 } } }).ok, 'no cooldown at all is a choice');
    // A stricter lockout than the rule's threshold is sensible (the rule then never fires, the lockout acts).
    assert.ok(parsePolicy({ limits: { check: { failuresPerNumber: { limit: 2, windowSeconds: 3600 } } } }).ok);
    // A stored document's score override without weight: loaded (merged), with a warning that it changed.
    const stored = parsePolicy({ risk: { rules: { 'ip.vpn': { action: 'score' } } } }, { relations: 'warn' });
    assert.ok(stored.ok && stored.warnings.some((w) => w.path === '/risk/rules/ip.vpn' && /counted 0/.test(w.message)), JSON.stringify(stored));
    // A partial override is merged over the rule's default (docs/policy.md: `ip.country_mismatch: { mode: off }`).
    const partial = parsePolicy({ risk: { rules: { 'ip.country_mismatch': { mode: 'off' }, 'number.disposable': { action: 'block' } } } });
    assert.ok(partial.ok, JSON.stringify(partial));
    assert.deepEqual(ruleConfig(partial.policy, 'ip.country_mismatch'), { ...ruleConfig(P, 'ip.country_mismatch'), mode: 'off' });
    assert.equal(ruleConfig(partial.policy, 'number.disposable').action, 'block');
    assert.equal(decideSend(facts({ number: { ...facts().number, disposable: true } }), partial.policy).decision, 'block');
    const typo = parsePolicy({ risk: { challengeat: 40 } });
    assert.deepEqual(!typo.ok && typo.errors.map((e) => e.path), ['/risk/challengeat'], 'one error naming the key');
    assert.ok(!typo.ok && /^unknown key/.test(typo.errors[0]!.message));
    // Keys the merge must never follow are reported like any unknown key, not dropped without a word.
    const reserved = parsePolicy(JSON.parse('{"constructor": 5, "limits": {"prototype": 1}}'));
    assert.deepEqual(!reserved.ok && reserved.errors.map((e) => [e.path, /^unknown key/.test(e.message)]), [['/constructor', true], ['/limits/prototype', true]]);
    const several = parsePolicy({ risk: { rules: { nope: { action: 'block' }, nada: { mode: 'off' } } } });
    assert.ok(!several.ok && several.errors.length === 2, 'every unknown rule is named');
    const uk = parsePolicy({ numbers: { denyCountries: ['UK'] } });
    assert.ok(!uk.ok && /the United Kingdom is GB/.test(uk.errors[0]!.message), JSON.stringify(uk));
    assert.ok(parsePolicy({ numbers: { allowCountries: ['GB', 'XK', 'GG', 'JE', 'IM'], denyCountries: ['UZ'] } }).ok, 'regions of libphonenumber, crown dependencies and Kosovo included');
    // An IP country may also be a territory without phone numbers (the IP data names AQ, UM …); a number's region may not.
    assert.ok(parsePolicy({ numbers: { denyIpCountries: ['AQ', 'UM'] } }).ok);
    assert.equal(parsePolicy({ numbers: { denyCountries: ['AQ'] } }).ok, false);
  });
});
