/**
 * The cooldown grows with each resend (30 s before the second message, 60 s before the third …) and holds on
 * every store. The `cd:` limit's stored state expires with the cooldown it was written under, so before the
 * check against the verification's own last send the third message got through 30–60 s after the second: at
 * once on the memory store (which drops an expired counter when it reads it), after a sweep on SQLite (the
 * send-limit property test found it there), and by key TTL on Redis.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/interface.ts';
import { startTestApp } from '../helpers/app.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const body = { to: '+6281234567001', client: { ip: '36.72.10.5', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5000 } };

async function third(store: Store, sweep: (now: number) => Promise<unknown>) {
  const t = await startTestApp({ store });
  try {
    const first = await t.request('POST', '/v1/verifications', body);
    assert.equal(first.status, 201);
    t.clock.advance(31_000);
    const second = await t.request('POST', '/v1/verifications', body);
    assert.equal(second.status, 201, second.text);
    assert.equal(second.body.sends, 2);
    assert.equal(Date.parse(second.body.resendAfter) - t.clock(), 60_000, 'the next cooldown is 60 s');
    t.clock.advance(46_800);
    await sweep(t.clock());
    const early = await t.request('POST', '/v1/verifications', body);
    assert.equal(early.status, 429, `a third message 46.8 s after the second: ${early.text}`);
    assert.deepEqual(early.body.error.reasons, ['cooldown']);
    assert.equal(early.body.error.verificationId, first.body.id, 'the pending verification: a retry after a lost answer can find it');
    assert.equal(early.headers.get('retry-after'), '14');
    t.clock.advance(13_200);
    const onTime = await t.request('POST', '/v1/verifications', body);
    assert.equal(onTime.status, 201, onTime.text);
    assert.equal(onTime.body.sends, 3);
  } finally {
    await t.close();
  }
}

describe('the growing cooldown between resends', () => {
  it('holds on the memory store', async () => {
    const store = new MemoryStore();
    await third(store, async (now) => store.sweep(now));
  });

  it('holds on SQLite after a sweep removed the expired counter rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otps-cooldown-'));
    const store = new SqliteStore(join(dir, 'otp-shield.db'));
    try {
      await third(store, async (now) => store.sweep(now));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the cooldown's 429 names the pending verification only where reasons are shown", () => {
  it('not with responses.exposeReasons off, and never from the public demo backend', async () => {
    const t = await startTestApp();
    try {
      // A policy the demo page's bare requests pass (no widget evidence), with reasons hidden.
      const open = { risk: { rules: { 'form_token.missing': { mode: 'off' }, 'pow.missing': { mode: 'off' }, no_accept_language: { mode: 'off' } } } };
      assert.equal((await t.request('PUT', '/v1/admin/policy', { ...open, responses: { exposeReasons: false } }, { key: t.adminKey })).status, 200);
      assert.equal((await t.request('POST', '/v1/verifications', body)).status, 201);
      const hidden = await t.request('POST', '/v1/verifications', body);
      assert.equal(hidden.status, 429);
      assert.deepEqual(Object.keys(hidden.body.error).sort(), ['code', 'message']);

      assert.equal((await t.request('PUT', '/v1/admin/policy', open, { key: t.adminKey })).status, 200);
      const demo = (to: string) => t.request('POST', '/demo/api/send', { to, client: { elapsedMs: 5000 } }, { key: null, headers: { 'user-agent': 'Mozilla/5.0 (Linux; Android 14) Chrome/130', 'accept-language': 'id-ID' } });
      const first = await demo('+6281234567077');
      assert.equal(first.status, 201, first.text);
      const again = await demo('+6281234567077');
      assert.equal(again.status, 429, again.text);
      assert.deepEqual(again.body.error.reasons, ['cooldown']);
      assert.equal('verificationId' in again.body.error, false, 'the demo page gets no id');
      const wrong = t.lastCode('+6281234567077') === '000000' ? '111111' : '000000';
      const checked = await t.request('POST', '/demo/api/check', { to: '+6281234567077', code: wrong }, { key: null });
      assert.deepEqual(checked.body, { status: 'denied', attemptsLeft: 4 }, 'nor from a check: the outcome only, not the verification');
    } finally {
      await t.close();
    }
  });
});
