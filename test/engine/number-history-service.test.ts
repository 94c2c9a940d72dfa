/**
 * The number's history and quarantine renewal end to end, through the real service (the replay driver builds
 * the server's own context and VerificationService): counters written by sends and checks, read back by the
 * observation step, reset by an approval; a quarantine renewed while its campaign goes on and ended after.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Replayer } from '../../src/replay/driver.ts';
import { DEFAULT_POLICY } from '../../src/engine/policy.ts';
import { seededUniform } from '../../src/sim/random.ts';
import { browser, H, iso, MIN, send, T0, WITH_CAPTCHA } from '../helpers/trace.ts';


const rng = seededUniform;

const check = (at: number, to: string, code: string, ip: string, deviceId: string) => JSON.stringify({ at: iso(at), type: 'check', to, code, client: { ip, deviceId } });

describe('the number’s history through the service', () => {
  it('bombing one number from rotating clients delivers at most unverifiedSendsPerNumber messages; its owner keeps getting codes', async () => {
    const r = await Replayer.create(WITH_CAPTCHA);
    const victim = '+6281298765432';
    let delivered = 0;
    r.delivery.onDeliver = (to) => void (to === victim && delivered++);
    try {
      // The owner verified a week ago from their phone on their home network.
      let t = T0;
      assert.equal(((await r.line(send(t, victim, browser('36.72.10.5', 'owner-phone')))) as { decision: string }).decision, 'allow');
      assert.equal(((await r.line(check(t + 30_000, victim, 'correct', '36.72.10.5', 'owner-phone'))) as { result: string }).result, 'approved');
      delivered = 0;
      t += 7 * 24 * H;
      const decisions: string[] = [];
      const reasons = new Set<string>();
      for (let i = 0; i < 30; i++) {
        t += 61_000; // slower than any cooldown, from another address and device every time
        const o = (await r.line(send(t, victim, browser(`114.124.${i}.${10 + i}`, `bot-${i}`)))) as { decision: string; reasons: string[] };
        decisions.push(o.decision);
        o.reasons.forEach((x) => reasons.add(x));
      }
      assert.equal(delivered, DEFAULT_POLICY.risk.unverifiedSendsPerNumber, `messages delivered to the victim: ${decisions.join(' ')}`);
      assert.ok(reasons.has('number.unverified_sends'));
      assert.ok(!decisions.includes('block'), 'a number’s own history challenges, it never blocks');

      // The owner, from the device and network that verified before, still gets a code (separate budget, no CAPTCHA).
      t += 11 * MIN;
      const owner = (await r.line(send(t, victim, browser('36.72.10.77', 'owner-phone')))) as { decision: string };
      assert.equal(owner.decision, 'allow');
      assert.equal(((await r.line(check(t + 30_000, victim, 'correct', '36.72.10.77', 'owner-phone'))) as { result: string }).result, 'approved');
      // The approval resets the count: a new device (a new phone) is served again.
      const fresh = (await r.line(send(t + 2 * MIN, victim, browser('182.1.3.4', 'new-phone')))) as { decision: string };
      assert.equal(fresh.decision, 'allow');
    } finally {
      await r.close();
    }
  });

  it('asking for a new code after wrong guesses needs a CAPTCHA; a typo or two does not', async () => {
    const r = await Replayer.create(WITH_CAPTCHA);
    try {
      const victim = '+6281311112222';
      let t = T0;
      await r.line(send(t, victim, browser('114.124.1.1', 'dev-a')));
      for (let g = 0; g < DEFAULT_POLICY.risk.failedChecksPerNumber; g++) await r.line(check((t += 5000), victim, String(100000 + g), '114.124.1.1', 'dev-a'));
      const again = (await r.line(send((t += 2 * MIN), victim, browser('182.0.9.9', 'dev-b')))) as { decision: string; reasons: string[] };
      assert.equal(again.decision, 'challenge');
      assert.ok(again.reasons.includes('number.failed_checks'), again.reasons.join());

      const user = '+6281333334444';
      await r.line(send((t += MIN), user, browser('114.124.2.2', 'dev-u')));
      await r.line(check((t += 20_000), user, 'wrong', '114.124.2.2', 'dev-u'));
      const resend = (await r.line(send((t += 2 * MIN), user, browser('114.124.2.2', 'dev-u')))) as { decision: string };
      assert.equal(resend.decision, 'allow', 'one typo, then a new code');
    } finally {
      await r.close();
    }
  });
});

describe('quarantine renewal (replay of the real service)', () => {
  it('a quarantine is renewed while its campaign goes on, and ends once it has stopped', async (t) => {
    const r0 = rng(7);
    const lines: { at: number; line: string; campaign?: boolean }[] = [];
    const num = (prefix: string) => `${prefix}${String(Math.floor(r0() * 1e8)).padStart(8, '0')}`;
    const ip = () => `114.124.${Math.floor(r0() * 64)}.${1 + Math.floor(r0() * 254)}`;
    // Eight hours of real users on the prefix, 40 an hour, 85 % typing their code.
    for (let at = T0; at < T0 + 8 * H; at += Math.round((-Math.log(1 - r0()) * H) / 40)) {
      const n = num('+62812');
      const c = ip();
      lines.push({ at, line: send(at, n, browser(c, `u-${at}`)) });
      if (r0() < 0.85) lines.push({ at: at + 40_000, line: check(at + 40_000, n, 'correct', c, `u-${at}`) });
    }
    // A campaign at 600/h from hour 3 to hour 4.5, never typing a code.
    const attackAt = T0 + 3 * H;
    const attackEnd = attackAt + 90 * MIN;
    for (let at = attackAt; at < attackEnd; at += Math.max(1, Math.round((-Math.log(1 - r0()) * H) / 600))) {
      lines.push({ at, line: send(at, num('+62812'), browser(ip(), `b-${at}`)), campaign: true });
    }
    lines.sort((a, b) => a.at - b.at);
    const r = await Replayer.create(WITH_CAPTCHA);
    let campaignSent = 0;
    try {
      for (const l of lines) {
        const o = (await r.line(l.line)) as { decision?: string };
        if (l.campaign && o.decision === 'allow') campaignSent++;
      }
      const starts = await r.ctx.store.queryEvents({ type: 'quarantine.start', order: 'asc', limit: 100 });
      const ends = await r.ctx.store.queryEvents({ type: 'quarantine.end', order: 'asc', limit: 100 });
      const px = starts.filter((e) => e.data?.scope === 'prefix:+62812');
      t.diagnostic(`campaign messages sent: ${campaignSent}; starts ${px.map((e) => `${((e.at - T0) / MIN).toFixed(0)}m ${e.reasons?.[0]}`).join(', ')}; ends ${ends.map((e) => `${((e.at - T0) / MIN).toFixed(0)}m ${e.reasons?.[0]}`).join(', ')}`);
      assert.ok(px.length >= 2, 'quarantined, then renewed');
      assert.notEqual(px[0]!.reasons?.[0], 'attack_persists');
      const renewed = px.find((e) => e.reasons?.[0] === 'attack_persists');
      assert.ok(renewed && renewed.at < attackEnd, 'renewed while the campaign was still going');
      assert.ok((renewed.data?.figures as { refused: number }).refused >= DEFAULT_POLICY.pumping.renew.minRefused);
      assert.ok(ends.some((e) => e.reasons?.[0] === 'renewed'));
      // Nothing slipped through at the renewal: all the campaign's messages were sent before the first quarantine.
      const firstAt = px[0]!.at;
      assert.ok(campaignSent <= 50, `${campaignSent} campaign messages sent`);
      assert.ok(firstAt > attackAt);
      const last = ends.filter((e) => e.data?.scope === 'prefix:+62812').at(-1);
      assert.ok(last && last.reasons?.[0] === 'expired' && last.at > attackEnd, 'the quarantine ended by itself after the campaign');
      assert.ok(!px.some((e) => e.at > attackEnd + H), 'not started again once the campaign had stopped');
    } finally {
      await r.close();
    }
  });
});

describe('without a CAPTCHA provider', () => {
  it('the number-history rules run in shadow (nobody could pass their challenge): hits are recorded, codes are sent', async () => {
    // keepAuditEvents: the replay stores per-request events only on request (their shadow hits are read below).
    const r = await Replayer.create({ keepAuditEvents: true });
    const victim = '+6281298765433';
    let delivered = 0;
    r.delivery.onDeliver = (to) => void (to === victim && delivered++);
    try {
      let t = T0;
      const shadowHits: string[] = [];
      for (let i = 0; i < 6; i++) {
        t += 11 * MIN; // past the number's 3-per-10-minutes limit and every cooldown
        const o = (await r.line(send(t, victim, browser(`114.125.${i}.${10 + i}`, `user-${i}`)))) as { decision: string; reasons: string[] };
        assert.equal(o.decision, 'allow', JSON.stringify(o));
      }
      for (const e of await r.ctx.store.queryEvents({ type: 'send', limit: 100 })) shadowHits.push(...((e.data as { shadow?: string[] } | undefined)?.shadow ?? []));
      assert.equal(delivered, 6);
      assert.ok(shadowHits.includes('number.unverified_sends'), `shadow hits: ${shadowHits.join(',')}`);
    } finally {
      await r.close();
    }
  });
});
