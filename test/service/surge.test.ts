/**
 * Dynamic throttling through the real verification service (the code path of the server), with an
 * injected clock: a legitimate 5× campaign surge from one country is challenged at worst, never blocked;
 * the throttle state changes are events with their figures; and it relaxes by itself when traffic calms.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.ts';
import { buildContext } from '../../src/service/context.ts';
import { ApiError } from '../../src/service/errors.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { testClock } from '../helpers/app.ts';

const ID_PREFIXES = ['811', '812', '813', '814', '815', '816', '817', '818', '819', '821', '822', '823', '851', '852', '853', '855', '856', '857', '858', '859', '877', '878', '881', '882', '883', '895', '896', '897', '898', '899'];

describe('dynamic throttling in the service', () => {
  it('a 5× marketing surge from one country ends up challenged at worst, never blocked, and relaxes afterwards', async () => {
    const clock = testClock(Date.parse('2026-11-23T00:00:00Z'));
    const store = new MemoryStore({ clock });
    let delivered = 0;
    const codes = new Map<string, string>();
    const cfg = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { dataDir: '.tmp/surge', secrets: { codeSecret: 'surge-test-secret-0123456789abcdefghij', previousCodeSecrets: [] } } });
    const ctx = await buildContext(cfg, {
      store,
      clock,
      delivery: { deliver: async (m) => ((delivered += 1), codes.set(m.verificationId, m.code), { ok: true, sender: 'count', providerId: null }) },
    });
    let n = 0;
    const outcomes = { sent: 0, challenged: 0, blocked: 0, limited: 0 };
    const phase = { surge: { ...outcomes }, calm: { ...outcomes } };
    async function request(bucket: typeof outcomes) {
      const i = n++;
      // Subscribers are spread over the number space, not sequential (sequential ranges look like pumping).
      const to = `+62${ID_PREFIXES[i % ID_PREFIXES.length]}${10_000_000 + ((i * 2_654_435_761) % 89_999_989)}`;
      try {
        // a server-to-server integration: the end user's IP and browser headers, no widget evidence
        const r = await ctx.verifications.send({ to, channel: 'sms', client: { ip: `36.${72 + (i % 50)}.${(i >> 8) & 255}.${(i & 255) || 1}`, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID' } });
        bucket.sent++;
        // Real users: 4 in 5 enter their code (the SMS-pumping defense watches exactly this conversion).
        if (Math.floor(i / ID_PREFIXES.length) % 5 !== 0) await ctx.verifications.check({ id: r.verification.id, code: codes.get(r.verification.id)! });
      } catch (err) {
        assert.ok(err instanceof ApiError, String(err));
        if (err.code === 'challenge_required') bucket.challenged++;
        else if (err.code === 'rate_limited') bucket.limited++;
        else bucket.blocked++;
      }
    }
    // 12 hours of normal traffic: 12 sends a minute (120 per 10 minutes) from Indonesia.
    const base = { ...outcomes };
    for (let minute = 0; minute < 12 * 60; minute++) {
      for (let k = 0; k < 12; k++) await request(base);
      clock.advance(60_000);
    }
    const refused = await store.queryEvents({ type: 'send', decision: 'block', limit: 3, order: 'asc' });
    assert.equal(base.sent, 12 * 60 * 12, `normal traffic all sent: ${JSON.stringify(base)} ${JSON.stringify(refused.map((e) => e.reasons))}`);

    // One hour of a campaign at 5× the usual rate.
    for (let minute = 0; minute < 60; minute++) {
      for (let k = 0; k < 60; k++) await request(phase.surge);
      clock.advance(60_000);
    }
    assert.equal(phase.surge.blocked, 0, 'a legitimate surge is never blocked');
    assert.equal(phase.surge.limited, 0, 'nor rate limited by the static ceilings');
    assert.ok(phase.surge.challenged > 0, 'the surging country was tightened (challenge)');
    assert.ok(phase.surge.sent > 0, 'requests before the tightening were sent');

    const events = await store.queryEvents({ type: 'throttle.tightened', limit: 10 });
    const scopes = events.map((e) => (e.data as { scope: string }).scope);
    assert.ok(scopes.includes('country:ID'), `tightened scopes: ${scopes.join(', ')}`);
    const tightened = events.find((e) => (e.data as { scope: string }).scope === 'country:ID')!.data as { count: number; baseline: number; threshold: number };
    assert.ok(tightened.count > tightened.threshold && tightened.threshold >= 4 * tightened.baseline, JSON.stringify(tightened));

    // Calm again: back to normal, the throttle relaxes by itself.
    for (let minute = 0; minute < 40; minute++) {
      for (let k = 0; k < 12; k++) await request(phase.calm);
      clock.advance(60_000);
    }
    const relaxed = await store.queryEvents({ type: 'throttle.normal', limit: 10 });
    assert.ok(relaxed.some((e) => (e.data as { scope: string }).scope === 'country:ID'), 'relaxed after the surge');
    assert.equal(phase.calm.blocked + phase.calm.limited, 0);
    assert.ok(phase.calm.sent >= 12 * 25, `normal sending resumed (${phase.calm.sent} sent while calm)`);
    assert.equal(delivered, base.sent + phase.surge.sent + phase.calm.sent, 'every allowed send was delivered once');
    await ctx.close();
  });
});

describe('throttle bookkeeping', () => {
  it('the per-scope write times an instance remembers are bounded (requests to ever new prefixes)', async () => {
    const clock = testClock(Date.parse('2026-11-23T00:00:00Z'));
    const store = new MemoryStore({ clock });
    const cfg = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { dataDir: '.tmp/surge-bound', secrets: { codeSecret: 'surge-test-secret-0123456789abcdefghij', previousCodeSecrets: [] } } });
    const ctx = await buildContext(cfg, { store, clock, delivery: { deliver: async () => ({ ok: true, sender: 'count', providerId: null }) } });
    try {
      const svc = ctx.verifications as unknown as {
        keepThrottle(scope: string, prev: unknown, state: unknown, change: null, p: unknown, now: number): Promise<string>;
        throttlePersistedAt: Map<string, number>;
      };
      for (let i = 0; i < 50_010; i++) await svc.keepThrottle(`prefix:+1${i}`, null, { baseline: 1, sampledAt: clock(), tightenedSince: null }, null, ctx.policy(), clock());
      assert.equal(svc.throttlePersistedAt.size, 50_000);
      assert.ok(svc.throttlePersistedAt.has('prefix:+150009') && !svc.throttlePersistedAt.has('prefix:+10'), 'the oldest went');
    } finally {
      await ctx.close();
    }
  });
});
