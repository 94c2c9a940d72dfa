/**
 * The destination number's own history in the decision (SMS bombing, code guessing with re-requests), the
 * CAPTCHA that a block-mode prefix quarantine asks of good browser evidence, which refusals count as
 * escalation trips, and when an ending quarantine is renewed. Pure: facts in, decision out.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideSend, goodEvidence, isRuleTrip } from '../../src/engine/decide.ts';
import { checkFailureSpecs, numberFailureKeys, observationSpecs, sendLimitSpecs, unverifiedSendsSpec, UNLIMITED } from '../../src/engine/limits.ts';
import { captchaOnlyRules, DEFAULT_POLICY, parsePolicy, ruleConfig, withoutCaptcha } from '../../src/engine/policy.ts';
import { DEFAULT_PUMPING, judgeRenewal, parsePumpingConfig } from '../../src/engine/pumping.ts';
import { facts, policy, type FactsOverrides } from '../helpers/engine.ts';

const P = DEFAULT_POLICY;
const N = P.risk.unverifiedSendsPerNumber;
const F = P.risk.failedChecksPerNumber;

describe('the number’s unverified sends (SMS bombing)', () => {
  it('below the threshold nothing fires; from it on a solved proof-of-work is not enough, a CAPTCHA is', () => {
    assert.equal(decideSend(facts({ state: { unverifiedSends: N - 1 } }), P).decision, 'allow');
    const d = decideSend(facts({ state: { unverifiedSends: N } }), P);
    assert.equal(d.decision, 'challenge');
    assert.deepEqual(d.reasons, ['number.unverified_sends']);
    assert.equal(decideSend(facts({ state: { unverifiedSends: N + 5 }, evidence: { captcha: 'passed' } }), P).decision, 'allow');
  });

  it('the context that verified the number before (its owner) is exempt', () => {
    const d = decideSend(facts({ state: { unverifiedSends: N + 10, trusted: true } }), P);
    assert.equal(d.decision, 'allow');
    assert.ok(!d.reasons.includes('number.unverified_sends'));
  });

  it('the threshold is a policy setting', () => {
    const p = policy({ risk: { unverifiedSendsPerNumber: 5 } });
    assert.equal(decideSend(facts({ state: { unverifiedSends: 4 } }), p).decision, 'allow');
    assert.equal(decideSend(facts({ state: { unverifiedSends: 5 } }), p).decision, 'challenge');
    assert.equal(parsePolicy({ risk: { unverifiedSendsPerNumber: 0 } }).ok, false);
  });
});

describe('the number’s failed checks (guessing with code re-requests)', () => {
  it('a new code after repeated wrong guesses needs a CAPTCHA; a mistyped code or two does not', () => {
    assert.equal(decideSend(facts({ state: { failedChecks: F - 1 } }), P).decision, 'allow');
    const d = decideSend(facts({ state: { failedChecks: F } }), P);
    assert.equal(d.decision, 'challenge');
    assert.deepEqual(d.reasons, ['number.failed_checks']);
    assert.equal(decideSend(facts({ state: { failedChecks: F }, evidence: { captcha: 'passed' } }), P).decision, 'allow');
    assert.equal(decideSend(facts({ state: { failedChecks: F, trusted: true } }), P).decision, 'allow');
  });
});

describe('counters of the number’s history', () => {
  it('a send counts an unverified message, the observation reads it and the failures without ever denying, an approval resets both', () => {
    const f = facts();
    const send = sendLimitSpecs(f, P, 0);
    const uv = unverifiedSendsSpec(f.number.e164, 1);
    assert.deepEqual(send.find((s) => s.key === uv.key), uv);
    assert.equal(uv.limit, UNLIMITED);

    const obs = observationSpecs(f, P, null);
    const read = obs.specs[obs.index.unverified]!;
    assert.equal(read.key, uv.key);
    assert.equal(read.windowMs, uv.windowMs);
    assert.equal(read.cost, 0);
    const failures = obs.specs[obs.index.failures]!;
    const counted = checkFailureSpecs(P, f.number.e164, null, false)[0]!;
    assert.equal(failures.key, counted.key, 'reads the failure counter the checks write');
    assert.equal(failures.windowMs, counted.windowMs);
    assert.equal(failures.cost, 0);
    assert.ok(obs.specs.every((s) => s.limit === UNLIMITED || s.cost === 0), 'an observation never denies');

    const reset = numberFailureKeys(P, f.number.e164);
    assert.ok(reset.includes(uv.key) && reset.includes(counted.key));
  });
});

describe('block-mode quarantine of a prefix: a CAPTCHA for good browser evidence', () => {
  const quarantined = (over: FactsOverrides = {}) => facts({ ...over, state: { quarantine: { scope: 'prefix:+62812', mode: 'block' }, ...over.state } });

  it('good evidence is asked for a CAPTCHA, which lets it through', () => {
    const d = decideSend(quarantined(), P);
    assert.equal(d.decision, 'challenge');
    assert.deepEqual(d.reasons, ['quarantine.captcha']);
    assert.equal(decideSend(quarantined({ evidence: { captcha: 'passed' } }), P).decision, 'allow');
  });

  it('without good evidence it stays a block; so does a blocked country, and everything with goodEvidence: block', () => {
    for (const ev of [{ pow: 'missing' as const }, { formToken: 'missing' as const }, { headless: true }, { scriptUserAgent: true }]) {
      assert.deepEqual(decideSend(quarantined({ evidence: ev }), P).reasons, ['quarantine.block'], JSON.stringify(ev));
    }
    for (const ip of [{ hosting: true }, { tor: true }, { proxy: true }, { vpn: true }]) {
      assert.equal(decideSend(quarantined({ ip: { ...facts().ip!, ...ip } }), P).decision, 'block', JSON.stringify(ip));
    }
    assert.equal(decideSend(quarantined({ ip: null }), P).decision, 'block');
    const country = facts({ state: { quarantine: { scope: 'country:AZ', mode: 'block' } } });
    assert.deepEqual(decideSend(country, P).reasons, ['quarantine.block']);
    assert.deepEqual(decideSend(quarantined(), policy({ pumping: { goodEvidence: 'block' } })).reasons, ['quarantine.block']);
  });

  it('a number that verified before is exempt either way', () => {
    assert.equal(decideSend(quarantined({ state: { numberVerifiedBefore: true } }), P).decision, 'allow');
  });

  it('goodEvidence needs every part', () => {
    assert.equal(goodEvidence(facts()), true);
    assert.equal(goodEvidence(facts({ evidence: { honeypot: true } })), false);
    assert.equal(goodEvidence(facts({ evidence: { pow: 'invalid' } })), false);
  });
});

describe('escalation trips', () => {
  const trip = (over: FactsOverrides) => isRuleTrip(decideSend(facts(over), P), P);

  it('refusals for the client’s own signals trip; those for the number’s history or its range do not', () => {
    assert.equal(trip({ evidence: { headless: true } }), true);
    assert.equal(trip({ evidence: { honeypot: true } }), true);
    // Escalation's own block is no new trip: counting it renewed a shared address's block with every retry of
    // the people behind it (a pen-test review, 2026-11-28).
    assert.equal(trip({ state: { escalation: 2 } }), false);
    assert.equal(trip({ state: { escalation: 2 }, evidence: { headless: true } }), true, 'the client’s own signal still trips');
    assert.equal(trip({ state: { unverifiedSends: N } }), false);
    assert.equal(trip({ state: { failedChecks: F } }), false);
    assert.equal(trip({ state: { quarantine: { scope: 'prefix:+62812', mode: 'block' } } }), false);
    // Not even without the widget's evidence: every real user of a server-to-server or native-app integration
    // sends without it, and their carrier NAT address was blocked for everything for 6 h after ten of them
    // met a quarantine (a pen-test review, 2026-11-28; until then it tripped).
    assert.equal(trip({ state: { quarantine: { scope: 'prefix:+62812', mode: 'block' } }, evidence: { pow: 'missing' } }), false);
    assert.equal(trip({ state: { throttled: ['global'] }, evidence: { pow: 'missing' } }), false);
    // The number's rule does not hide the client's own: headless + unverified sends still trips.
    assert.equal(trip({ evidence: { headless: true }, state: { unverifiedSends: N } }), true);
  });

  it('a client without the widget (a native app) is challenged by a 20-point rule but trips nothing for it', () => {
    const app = { evidence: { formToken: 'missing' as const, pow: 'missing' as const, acceptLanguage: null, deviceId: null } };
    const busyNat = { ...app, state: { velocity: { device: 0, ip: P.risk.ipVelocity + 1 } } };
    const d = decideSend(facts(busyNat), P);
    assert.equal(d.decision, 'challenge', JSON.stringify(d));
    assert.equal(isRuleTrip(d, P), false, 'ip_velocity 20 + absent widget evidence 15: the evidence is not held against the address');
    // A browser with the same address passes; a signal of its own still trips for the app.
    assert.equal(decideSend(facts({ state: busyNat.state }), P).decision, 'allow');
    assert.equal(trip({ ...app, ip: { ...facts().ip!, hosting: true }, state: busyNat.state }), true, 'ip.hosting 25 + ip_velocity 20');
    // A page with a token but no puzzle (or no Accept-Language) is no client without the widget: those count.
    assert.equal(trip({ evidence: { pow: 'missing', acceptLanguage: null }, state: busyNat.state }), true, 'pow.missing 5 + no_accept_language 5 + ip_velocity 20');
  });

  it('rate limits, cooldowns and pauses are no trips', () => {
    const base = { shadow: [], score: 0, powLevel: 'normal' as const };
    assert.equal(isRuleTrip({ decision: 'block', reasons: ['rate_limited.number'], ...base }, P), false);
    assert.equal(isRuleTrip({ decision: 'block', reasons: ['cooldown'], ...base }, P), false);
    assert.equal(isRuleTrip({ decision: 'block', reasons: ['paused'], ...base }, P), false);
    assert.equal(isRuleTrip({ decision: 'allow', reasons: [], ...base }, P), false);
  });
});

describe('quarantine renewal (pure)', () => {
  const cfg = DEFAULT_PUMPING;

  it('renews when the quarantine refused at least max(minRefused, factor × usual) numbers in its last hour', () => {
    // A range that usually sends 12 messages an hour, still hammered at 900 an hour.
    const r = judgeRenewal('conversion_drop', 900, 12, cfg);
    assert.ok(r);
    assert.equal(r.threshold, cfg.renew.factor * 12);
    assert.equal(judgeRenewal('conversion_drop', cfg.renew.factor * 12 - 1, 12, cfg), null, 'just below the threshold');
    // A quiet range: the floor applies.
    assert.equal(judgeRenewal('dense_numbers', cfg.renew.minRefused - 1, 0.5, cfg), null);
    assert.ok(judgeRenewal('attack_persists', cfg.renew.minRefused, 0.5, cfg), 'a renewal can be renewed');
  });

  it('a slow campaign in a busy range is not renewed: its new real users are refused along with it', () => {
    // 30 campaign numbers + 50 new real users refused an hour, in a range that usually sends 80.
    assert.equal(judgeRenewal('conversion_drop', 80, 80, cfg), null);
  });

  it('never for an admin’s quarantine, nor when renewal or the defense is off', () => {
    assert.equal(judgeRenewal('manual', 900, 12, cfg), null);
    assert.equal(judgeRenewal('drill', 900, 12, cfg), null);
    assert.equal(judgeRenewal('conversion_drop', 900, 12, { ...cfg, renew: { ...cfg.renew, enabled: false } }), null);
    assert.equal(judgeRenewal('conversion_drop', 900, 12, { ...cfg, enabled: false }), null);
  });

  it('the settings are validated', () => {
    assert.equal(parsePumpingConfig({ renew: { factor: 0.5 } }).ok, false);
    assert.equal(parsePumpingConfig({ renew: { minRefused: 0 } }).ok, false);
    assert.equal(parsePumpingConfig({ goodEvidence: 'allow' }).ok, false);
    const ok = parsePumpingConfig({ renew: { factor: 6 } });
    assert.ok(ok.ok && ok.config.renew.minRefused === DEFAULT_PUMPING.renew.minRefused, 'partial sections take the defaults');
  });
});

describe('rules only a CAPTCHA clears (warned about at start without a CAPTCHA provider)', () => {
  it('the default policy has four; goodEvidence: block, shadow or off take theirs out', () => {
    assert.deepEqual(captchaOnlyRules(P), ['number.unverified_sends', 'number.failed_checks', 'ip.many_countries', 'quarantine.captcha']);
    assert.deepEqual(captchaOnlyRules(policy({ pumping: { goodEvidence: 'block' } })), ['number.unverified_sends', 'number.failed_checks', 'ip.many_countries']);
    const off = { action: 'score', weight: 60, mode: 'off' };
    const shadow = { action: 'score', weight: 60, mode: 'shadow' };
    const rules = { 'number.unverified_sends': off, 'number.failed_checks': shadow, 'ip.many_countries': { action: 'score', weight: 0 } };
    assert.deepEqual(captchaOnlyRules(policy({ pumping: { goodEvidence: 'block' }, risk: { rules } })), []);
  });
});

describe('the policy enforced without a CAPTCHA provider', () => {
  it('number-history rules in shadow, quarantines block good evidence too; nothing else changes', () => {
    const w = withoutCaptcha(P);
    assert.equal(ruleConfig(w, 'number.unverified_sends').mode, 'shadow');
    assert.equal(ruleConfig(w, 'number.failed_checks').mode, 'shadow');
    assert.equal(ruleConfig(w, 'ip.many_countries').mode, 'shadow');
    assert.equal(w.pumping.goodEvidence, 'block');
    assert.deepEqual(captchaOnlyRules(w), []);
    assert.deepEqual({ ...w, risk: P.risk, pumping: P.pumping }, P);
    // A bombed number from new clients: challenged with the policy, allowed (shadow hit) without a CAPTCHA.
    const f = facts({ state: { unverifiedSends: N } });
    assert.equal(decideSend(f, P).decision, 'challenge');
    const d = decideSend(f, w);
    assert.equal(d.decision, 'allow');
    assert.ok(d.shadow.includes('number.unverified_sends'));
    // A good-evidence request in a block-mode prefix quarantine is refused, as before the CAPTCHA option.
    const q = facts({ state: { quarantine: { scope: 'prefix:+62812', mode: 'block' } } });
    assert.ok(decideSend(q, P).reasons.includes('quarantine.captcha'));
    assert.deepEqual(decideSend(q, w).reasons, ['quarantine.block']);
    // Nothing to change: the same object.
    const none = withoutCaptcha(w);
    assert.equal(none, w);
  });
});
