/**
 * Attack: one victim number written many ways, hoping each spelling is a new key with a fresh budget
 * (sends) or a fresh attempt counter (checks). Every spelling either normalises to the same E.164 key or
 * is refused; the per-number limits hold across all of them, on sends and on checks.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { deliveries } from './support.ts';

const ID = '+6281234567890';
const US = '+16502530000';
const WINDOW_MS = 10 * 60_000;
const PER_NUMBER = 3; // DEFAULT_POLICY.limits.number: 3 per 10 minutes

/** [spelling, defaultRegion?] — all the same subscriber. */
const ID_SPELLINGS: [string, string?][] = [
  ['+6281234567890'],
  ['+62 812-3456-7890'],
  ['0062 812 3456 7890'],
  ['+62 (0)812 3456 7890'],
  ['+62 0812 3456 7890'],
  ['0812-3456-7890', 'ID'],
  ['812 3456 7890', 'ID'],
  ['011 62 812 3456 7890', 'US'],
  ['＋６２８１２３４５６７８９０'], // full-width
  ['+٦٢٨١٢٣٤٥٦٧٨٩٠'], // Arabic-Indic
  ['+۶۲۸۱۲۳۴۵۶۷۸۹۰'], // Persian
  ['+६२८१२३४५६७८९०'], // Devanagari
  ['+62\u200b812\u200b3456\u200b7890'], // zero-width spaces
  ['\u202e+6281234567890'], // right-to-left override
  ['\u2066+62\u00a0812\u00ad34567890\u2069'], // isolates, no-break space, soft hyphen
  ['+62.812.3456.7890'],
  ['tel:+62-812-3456-7890'],
];
/** Spellings that must be refused rather than become a different key. */
const REFUSED = ['+62 812 3456 7890 ext. 1', '+62 812 3456 7890;ext=1', '+62 812-3456-7890 x1', '+62 812 3456 7890 #1', '00062 812 3456 7890', '+062 812 3456 7890', '+62812345678901234567'];
const US_SPELLINGS: [string, string?][] = [['+1 650 253 0000'], ['001 650 253 0000'], ['+1 (650) 253-0000'], ['+１ ６５０ ２５３ ００００'], ['(650) 253-0000', 'US'], ['1-650-253-0000', 'US']];

describe('one number in many spellings', () => {
  let t: TestApp;
  /** Delivery times by the injected clock, recorded by the fake provider as messages arrive. */
  const arrivals = new Map<string, number[]>();
  before(async () => {
    t = await startTestApp();
    t.receiver.setHandler((req) => {
      const to = (req.json as { to?: string } | undefined)?.to;
      if (to) arrivals.set(to, [...(arrivals.get(to) ?? []), t.clock()]);
      return { status: 200, json: { ok: true } };
    });
  });
  after(async () => t.close());

  // No client.ip: only per-number limits can stop these, so the test isolates them.
  const send = (to: string, defaultRegion?: string, lang = 'id-ID') =>
    t.request('POST', '/v1/verifications', { to, ...(defaultRegion ? { defaultRegion } : {}), client: { userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: lang, elapsedMs: 4000 } });

  it('a burst of every spelling sends exactly one message', async () => {
    const statuses: number[] = [];
    for (const [s, region] of ID_SPELLINGS) {
      const r = await send(s, region);
      statuses.push(r.status);
      if (r.status === 201) assert.equal(r.body.to, ID, JSON.stringify(s));
      else assert.ok(r.status === 429 || r.status === 403, `${JSON.stringify(s)} → ${r.text}`);
    }
    for (const s of REFUSED) {
      const r = await send(s);
      assert.equal(r.status, 422, `${JSON.stringify(s)} → ${r.text}`);
      assert.equal(r.body.error.code, 'invalid_phone_number');
    }
    // A NUL is refused before any route looks at the body (src/http/storable-text.ts).
    const nul = await send('+6281234567890\u0000');
    assert.equal(nul.status, 400, nul.text);
    assert.equal(nul.body.error.code, 'invalid_request');
    assert.equal(statuses.filter((s) => s === 201).length, 1, statuses.join(','));
    assert.equal(deliveries(t, ID).length, 1);
    assert.ok(t.receiver.requests.every((r) => (r.json as { to?: string }).to === ID), 'no spelling became another number');
  });

  it('checks in every spelling share one attempt budget', async () => {
    const code = t.lastCode(ID)!;
    const wrong = code === '000000' ? '111111' : '000000';
    let evaluated = 0;
    for (const [s] of ID_SPELLINGS.filter(([, region]) => region === undefined)) {
      const r = await t.request('POST', '/v1/verifications/check', { to: s, code: wrong });
      if (r.status === 200) evaluated++;
      else assert.ok([404, 423, 429].includes(r.status), `${JSON.stringify(s)} → ${r.text}`);
    }
    assert.equal(evaluated, 5, 'codes.maxAttempts across all spellings');
  });

  it('spread over time, no 10-minute window gets more than the per-number limit', async () => {
    for (let i = 0; i < 14; i++) {
      t.clock.advance(130_000); // past every cooldown of a fresh verification, inside the 10-minute window
      const [s, region] = US_SPELLINGS[i % US_SPELLINGS.length]!;
      const r = await send(s, region, 'en-US');
      assert.ok([201, 403, 429].includes(r.status), r.text);
      if (r.status === 201) assert.equal(r.body.to, US);
    }
    const at = arrivals.get(US) ?? [];
    assert.equal(at.length, deliveries(t, US).length);
    assert.ok(at.length >= 2, `the limit, not something else, stopped sends (${at.length} delivered)`);
    for (const t0 of at) {
      const inWindow = at.filter((x) => x >= t0 && x < t0 + WINDOW_MS).length;
      assert.ok(inWindow <= PER_NUMBER, `${inWindow} messages in the 10 minutes from ${new Date(t0).toISOString()}`);
    }
  });
});
