/**
 * The effectiveness score: how sessions of real users are classified from a replay's output, in particular
 * the users who could finish only by passing a CAPTCHA (stuck where no CAPTCHA provider is configured).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { scoreRun } from '../../src/sim/score.ts';
import { smsPrices } from '../../src/sim/prices.ts';
import type { Label } from '../../src/sim/scenarios.ts';

const send = (to: string) => JSON.stringify({ at: '2026-11-23T08:00:00.000Z', type: 'send', to, channel: 'sms', client: {} });
const check = (to: string) => JSON.stringify({ at: '2026-11-23T08:01:00.000Z', type: 'check', to, code: 'correct' });
const legit = (session: string): Label => ({ scenario: 'legit.daily', fraud: false, actor: session, session, intent: 'verify', country: 'ID' });

describe('effectiveness score', () => {
  it('separates real users stuck on a CAPTCHA-only challenge from other challenged-only, failed and completed users', () => {
    const lines = [send('+1'), check('+1'), send('+2'), send('+3'), send('+4'), send('+5'), send('+5')];
    const labels = [legit('done'), legit('done'), legit('pow'), legit('captcha'), legit('blocked'), legit('retry'), legit('retry')];
    const outputs = [
      { decision: 'allow', reasons: [] },
      { result: 'approved' },
      { decision: 'challenge', reasons: ['throttled'] },
      { decision: 'challenge', reasons: ['number.unverified_sends', 'score'] },
      { decision: 'block', reasons: ['quarantine.block'] },
      { decision: 'challenge', reasons: ['quarantine.captcha'] },
      { decision: 'allow', reasons: [] },
    ];
    const { scenarios, totals } = scoreRun(lines, labels, outputs, smsPrices());
    const s = scenarios.find((x) => x.scenario === 'legit.daily')!;
    assert.equal(s.sessions, 5);
    assert.equal(s.completed, 1);
    // 'retry' was sent a code later and never checked it: failed, not challenged-only.
    assert.equal(s.failed, 2);
    assert.equal(s.challengedOnly, 2);
    assert.equal(s.captchaOnly, 1);
    assert.equal(totals.legitCaptchaOnly, 1);
    assert.equal(totals.legitChallengedOnly, 2);
  });
});
