/**
 * Attack: get a code accepted without receiving it, or get more guesses than the limits allow.
 * Code reuse, cross-verification reuse, a resend to reset the attempt counter, guessing across many
 * verifications of one number, the long game against NIST's "no more than 100 consecutive failures",
 * and codes issued before a secret rotation (they must keep working, and only while the old secret is kept).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, testClock, type TestApp, outcome } from '../helpers/app.ts';
import { parsePolicy } from '../../src/engine/policy.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { client, deliveries, freshNumber, ipFor } from './support.ts';

const HOUR = 3_600_000;
const wrongFor = (code: string, i = 0) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0');

/**
 * By default a new code after three wrong guesses, or a third code nobody typed, needs a CAPTCHA
 * (`number.failed_checks`, `number.unverified_sends`; asserted below and in test/engine/number-history*.test.ts).
 * The tests of the attempt and failure limits behind them turn those rules off — as for a guesser who pays a
 * CAPTCHA-solving service for each new code — so that they still show what those limits do on their own.
 */
async function withoutNumberHistoryRules(t: TestApp, fn: () => Promise<void>): Promise<void> {
  const original = t.ctx.policy();
  const version = t.ctx.policyVersion();
  const off = { action: 'score', weight: 60, mode: 'off' } as const;
  const p = parsePolicy({ ...original, risk: { ...original.risk, rules: { ...original.risk.rules, 'number.failed_checks': off, 'number.unverified_sends': off } } });
  assert.ok(p.ok, JSON.stringify(p));
  t.ctx.setPolicy(p.policy, version);
  try {
    await fn();
  } finally {
    t.ctx.setPolicy(original, version);
  }
}

describe('code reuse and guessing', () => {
  let t: TestApp;
  let ipN = 0;
  before(async () => {
    // With a CAPTCHA provider (loopback, never called: no request here carries a CAPTCHA token), so that the
    // rules only a CAPTCHA clears are enforced (without one they run in shadow, docs/policy.md).
    t = await startTestApp({ config: { captcha: { provider: 'turnstile', secret: 'test-never-called', verifyUrl: 'http://127.0.0.1:9/' } } });
  });
  after(async () => t.close());

  const send = (to: string) => t.request('POST', '/v1/verifications', { to, client: client(ipFor(ipN++)) });
  const check = (body: Record<string, unknown>) => t.request('POST', '/v1/verifications/check', body);

  it('an approved code cannot be used again, nor on the next verification of the same number', async () => {
    const to = freshNumber();
    const a = await send(to);
    const codeA = t.lastCode(to)!;
    assert.deepEqual(outcome((await check({ id: a.body.id, code: codeA })).body), { status: 'approved' });
    const replay = await check({ id: a.body.id, code: codeA });
    assert.equal(replay.status, 409);
    assert.equal((await check({ to, code: codeA })).status, 404, 'no pending verification to replay it on');

    t.clock.advance(31_000);
    const b = await send(to);
    assert.equal(b.status, 201, b.text);
    assert.notEqual(b.body.id, a.body.id);
    const codeB = t.lastCode(to)!;
    if (codeB !== codeA) {
      // The old code is bound (HMAC) to verification A; on B it is just a wrong guess.
      assert.deepEqual(outcome((await check({ id: b.body.id, code: codeA })).body), { status: 'denied', attemptsLeft: 4 });
    }
    assert.deepEqual(outcome((await check({ id: b.body.id, code: codeB })).body), { status: 'approved' });
  });

  it('code look-alikes are refused without costing an attempt; the typed code in another script is the code', async () => {
    const to = freshNumber();
    const s = await send(to);
    const code = t.lastCode(to)!;
    const variants = [`0x${Number(code).toString(16)}`, `${code[0]}.${code.slice(1)}e5`, `+${code}`, `${code}abc`, code.slice(1), `${code}0`, ` ${code.slice(0, 3)}x${code.slice(3)}`];
    for (const v of variants) {
      const r = await check({ id: s.body.id, code: v });
      assert.equal(r.status, 422, `${JSON.stringify(v)}: ${r.text}`);
      assert.equal(r.body.error.code, 'invalid_code');
    }
    // A NUL is refused before any route looks at the body (src/http/storable-text.ts): 400, and no attempt either.
    const nul = await check({ id: s.body.id, code: `${code}\u0000` });
    assert.equal(nul.status, 400, nul.text);
    assert.equal(nul.body.error.code, 'invalid_request');
    assert.equal((await t.request('GET', `/v1/verifications/${s.body.id}`)).body.attemptsLeft, 5);
    const fullWidth = [...code].map((d) => String.fromCodePoint(0xff10 + Number(d))).join('');
    assert.deepEqual(outcome((await check({ id: s.body.id, code: `${fullWidth.slice(0, 3)} ${fullWidth.slice(3)}` })).body), { status: 'approved' });
  });

  it('a code lives exactly codes.ttlSeconds (600 s): valid 1 ms before, expired at the limit', async () => {
    const [a, b] = [freshNumber(), freshNumber()];
    const sa = await send(a);
    const sb = await send(b);
    const [ca, cb] = [t.lastCode(a)!, t.lastCode(b)!];
    t.clock.advance(600_000 - 1);
    assert.deepEqual(outcome((await check({ id: sa.body.id, code: ca })).body), { status: 'approved' });
    t.clock.advance(1);
    const late = await check({ id: sb.body.id, code: cb });
    assert.equal(late.status, 410, late.text);
  });

  it("a bot's tarpitted request for someone's number does not hide their verification from a check by number", async () => {
    const to = freshNumber();
    const mine = await send(to);
    assert.equal(mine.status, 201, mine.text);
    const code = t.lastCode(to)!;
    // The bot fills the honeypot: tarpitted, it looks sent, and no send limit is spent on it.
    const bot = await t.request('POST', '/v1/verifications', { to, client: { ...client(ipFor(ipN++)), honeypot: true } });
    assert.equal(bot.status, 201, bot.text);
    const [ev] = await t.ctx.store.queryEvents({ type: 'send', number: to, limit: 1 });
    assert.equal(ev!.decision, 'tarpit');
    assert.deepEqual(outcome((await check({ to, code })).body), { status: 'approved' });
    // The bot's own verification still answers like a real one.
    assert.deepEqual(outcome((await check({ id: bot.body.id, code })).body), { status: 'denied', attemptsLeft: 4 });
  });

  it('a resend does not reset the attempts: the budget belongs to the verification', async () => {
    const to = freshNumber();
    const s = await send(to);
    const first = t.lastCode(to)!;
    for (let i = 0; i < 4; i++) await check({ id: s.body.id, code: wrongFor(first, i) });
    t.clock.advance(31_000);
    // A new code after wrong guesses needs a CAPTCHA first (the request carries none).
    const challenged = await send(to);
    assert.equal(challenged.status, 403, challenged.text);
    assert.equal(challenged.body.error.code, 'challenge_required');
    assert.ok(challenged.body.error.reasons.includes('number.failed_checks'), challenged.text);
    let resend!: Awaited<ReturnType<typeof send>>;
    await withoutNumberHistoryRules(t, async () => {
      resend = await send(to);
    });
    assert.equal(resend.status, 201, resend.text);
    assert.equal(resend.body.id, s.body.id, 'same verification');
    assert.equal(resend.body.attemptsLeft, 1);
    const second = t.lastCode(to)!;
    const last = await check({ id: s.body.id, code: second === '999999' ? '999998' : wrongFor(second, 500) });
    assert.deepEqual(outcome(last.body), { status: 'denied', attemptsLeft: 0 });
    const locked = await check({ id: s.body.id, code: second });
    assert.equal(locked.status, 423, 'the fresh code does not unlock it');
  });

  it('guessing across many verifications of one number: 10 failures per hour in total, then no new code and even the right code is refused', async () => {
    const to = freshNumber();
    let evaluated = 0;
    let lockedWithCode: string | null = null;
    let lastId = '';
    let refusedSend = false;
    await withoutNumberHistoryRules(t, async () => {
      for (let round = 0; round < 5 && lockedWithCode === null; round++) {
        const s = await send(to);
        if (s.status === 429) {
          // The number's checks are locked: a new code could not be checked, so none is sent.
          assert.deepEqual(s.body.error.reasons, ['locked.number'], s.text);
          refusedSend = true;
          lockedWithCode = t.lastCode(to);
          break;
        }
        assert.equal(s.status, 201, `round ${round}: ${s.text}`);
        lastId = s.body.id;
        const code = t.lastCode(to)!;
        for (let i = 0; i < 5; i++) {
          const r = await check({ to, code: wrongFor(code, i) });
          if (r.status === 200) evaluated++;
          else {
            assert.equal(r.status, 429, r.text);
            lockedWithCode = code;
            break;
          }
        }
        t.clock.advance(4 * 60_000); // a new verification every 4 minutes stays within 3 sends per 10 minutes
      }
    });
    assert.equal(evaluated, 10, 'DEFAULT_POLICY.limits.check.failuresPerNumber');
    assert.ok(refusedSend, 'the send after the tenth failure was refused');
    assert.ok(lockedWithCode);
    const right = await check({ id: lastId, code: lockedWithCode });
    assert.equal(right.status, 429, 'the lock does not tell a right guess from a wrong one');
  });

  it('with the default policy, guessing gets one code: the next one needs a CAPTCHA', async () => {
    const to = freshNumber();
    const s = await send(to);
    assert.equal(s.status, 201, s.text);
    const code = t.lastCode(to)!;
    for (let i = 0; i < 5; i++) assert.equal((await check({ to, code: wrongFor(code, i) })).status, 200);
    for (let round = 0; round < 3; round++) {
      t.clock.advance(4 * 60_000);
      const again = await send(to);
      assert.equal(again.status, 403, again.text);
      assert.ok(again.body.error.reasons.includes('number.failed_checks'), again.text);
    }
    assert.equal(deliveries(t, to).length, 1, 'one code reached the number');
  });

  it(
    'the long game: no more than 100 consecutive failures on one number, however slowly they come (NIST SP 800-63B §5.2.2)',
    async () => {
      const to = freshNumber();
      let failures = 0;
      // Without the CAPTCHA for new codes after wrong guesses, which would otherwise end this game early.
      await withoutNumberHistoryRules(t, async () => {
        for (let hour = 0; hour < 72; hour++) {
          const s = await send(to);
          if (s.status === 201) {
            const code = t.lastCode(to)!;
            for (let i = 0; i < 12; i++) {
              const r = await check({ to, code: wrongFor(code, i) });
              if (r.status !== 200) break;
              failures++;
            }
          }
          t.clock.advance(HOUR);
        }
      });
      assert.ok(failures <= 100, `${failures} consecutive failed checks on one number over 3 days`);
    },
  );
});

describe('code secret rotation', () => {
  const OLD = 'old-code-secret-0123456789abcdefghijklmn';
  const NEW = 'new-code-secret-0123456789abcdefghijklmn';
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'otps-rotate-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('a code issued under the old secret still verifies after rotation, and stops once the old secret is dropped', async () => {
    const clock = testClock();
    const before = await startTestApp({ keepDataDir: dataDir, clock, config: { secrets: { codeSecret: OLD, previousCodeSecrets: [] } } });
    const [a, b] = [freshNumber(), freshNumber()];
    let ids: string[];
    let codes: string[];
    try {
      ids = [(await before.request('POST', '/v1/verifications', { to: a, client: client(ipFor(1)) })).body.id, (await before.request('POST', '/v1/verifications', { to: b, client: client(ipFor(2)) })).body.id];
      codes = [before.lastCode(a)!, before.lastCode(b)!];
    } finally {
      await before.close();
    }

    const rotated = await startTestApp({ keepDataDir: dataDir, clock, config: { secrets: { codeSecret: NEW, previousCodeSecrets: [OLD] } } });
    try {
      assert.deepEqual(outcome((await rotated.request('POST', '/v1/verifications/check', { id: ids[0], code: codes[0] })).body), { status: 'approved' });
      // New codes are made with the new secret: verify one end to end.
      const c = freshNumber();
      const s = await rotated.request('POST', '/v1/verifications', { to: c, client: client(ipFor(3)) });
      assert.deepEqual(outcome((await rotated.request('POST', '/v1/verifications/check', { id: s.body.id, code: rotated.lastCode(c) })).body), { status: 'approved' });
    } finally {
      await rotated.close();
    }

    const retired = await startTestApp({ keepDataDir: dataDir, clock, config: { secrets: { codeSecret: NEW, previousCodeSecrets: [] } } });
    try {
      const r = await retired.request('POST', '/v1/verifications/check', { id: ids[1], code: codes[1] });
      assert.equal(r.body.status, 'denied', 'the old secret is gone, so its codes are dead');
    } finally {
      await retired.close();
    }
  });

  it('a fleet rotates in two phases (docs/security.md): the new secret is accepted everywhere before any instance issues with it', async () => {
    // Two instances on one store mid-rollout of phase 2: `a` still issues with the old secret and accepts the
    // new one (phase 1), `b` already issues with the new one. Codes and form tokens of each pass on the other.
    const store = new MemoryStore();
    const clock = testClock();
    const a = await startTestApp({ store, clock, config: { secrets: { codeSecret: OLD, previousCodeSecrets: [NEW] } } });
    const b = await startTestApp({ store, clock, config: { secrets: { codeSecret: NEW, previousCodeSecrets: [OLD] } } });
    try {
      for (const [from, to] of [[a, b], [b, a]] as const) {
        const n = freshNumber();
        const s = await from.request('POST', '/v1/verifications', { to: n, client: client(ipFor(40)) });
        assert.equal(s.status, 201, s.text);
        assert.deepEqual(outcome((await to.request('POST', '/v1/verifications/check', { id: s.body.id, code: from.lastCode(n) })).body), { status: 'approved' });
        // The token is bound to the browser's address and user agent: here the test process on loopback.
        const ua = client('127.0.0.1').userAgent;
        const ch = await from.request('POST', '/v1/challenges', undefined, { key: null, headers: { 'user-agent': ua } });
        assert.equal(ch.status, 201, ch.text);
        const uses = await to.request('POST', '/v1/verifications', { to: freshNumber(), client: client('127.0.0.1', { formToken: ch.body.formToken }) });
        const [ev] = await to.ctx.store.queryEvents({ limit: 1, type: 'send' });
        assert.equal((ev!.data as { evidence: { formToken: string } }).evidence.formToken, 'valid', `${uses.status} ${uses.text}`);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('probing numbers for a pending code', () => {
  it('a malformed code gets the same answer whether or not the number has a code pending', async () => {
    const t = await startTestApp();
    try {
      const pending = freshNumber();
      assert.equal((await t.request('POST', '/v1/verifications', { to: pending, client: client(ipFor(1)) })).status, 201);
      for (const to of [pending, freshNumber()]) {
        const r = await t.request('POST', '/v1/verifications/check', { to, code: 'x' });
        assert.equal(r.status, 422, `${to}: ${r.text}`);
        assert.equal(r.body.error.code, 'invalid_code');
      }
    } finally {
      await t.close();
    }
  });

  it("checks that find nothing count against the address's failed-check budget (30 an hour): the 31st is refused like a guess", async () => {
    const t = await startTestApp();
    try {
      const prober = '84.17.30.9';
      for (let i = 0; i < 30; i++) {
        const r = await t.request('POST', '/v1/verifications/check', { to: freshNumber(), code: '123456', client: { ip: prober } });
        assert.equal(r.status, 404, `probe ${i + 1}: ${r.text}`);
      }
      const refused = await t.request('POST', '/v1/verifications/check', { to: freshNumber(), code: '123456', client: { ip: prober } });
      assert.equal(refused.status, 429, refused.text);
      assert.deepEqual(refused.body.error.reasons, ['locked.ip']);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      // The lock is the one guessing meets: a pending verification checked from there is refused too.
      const to = freshNumber();
      assert.equal((await t.request('POST', '/v1/verifications', { to, client: client(ipFor(2)) })).status, 201);
      const real = await t.request('POST', '/v1/verifications/check', { to, code: t.lastCode(to), client: { ip: prober } });
      assert.equal(real.status, 429, real.text);
      const [ev] = await t.ctx.store.queryEvents({ type: 'check', ip: prober, limit: 1 });
      assert.equal(ev?.decision, 'locked', 'the refused probe is in the audit log');
      // Locked, a check answers the same whether or not the number has a code pending: status, Retry-After and
      // body (the time left against the whole window told them apart), however long after the lock.
      t.clock.advance(5 * 60_000); // within the code's 10 minutes: still pending
      const answer = async (number: string) => {
        const r = await t.request('POST', '/v1/verifications/check', { to: number, code: '123456', client: { ip: prober } });
        return { status: r.status, retryAfter: r.headers.get('retry-after'), body: r.body };
      };
      const pending = await answer(to);
      assert.equal(pending.status, 429);
      assert.deepEqual(await answer(freshNumber()), pending);
      // Another address is not affected.
      const other = await t.request('POST', '/v1/verifications/check', { to: freshNumber(), code: '123456', client: { ip: '84.17.30.10' } });
      assert.equal(other.status, 404);
    } finally {
      await t.close();
    }
  });
});
