import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Replayer, replayLines } from '../../src/replay/driver.ts';
import { parseTraceLine } from '../../src/replay/format.ts';
import { exportEvents, numberMasker } from '../../src/service/audit-export.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { solvePow } from '../attacks/support.ts';
import { formatSummary } from '../../src/cli/commands/replay.ts';
import { parsePolicy, type Policy } from '../../src/engine/policy.ts';

function parsed(doc: Record<string, unknown>): Policy {
  const r = parsePolicy(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.policy;
}

const T0 = Date.parse('2026-11-23T08:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const browser = {
  ip: '36.72.10.5',
  userAgent: 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36',
  deviceId: 'dev-9f2c01',
  formToken: 'valid',
  pow: 'solved',
  captcha: 'missing',
  honeypot: false,
  elapsedMs: 5400,
  headless: false,
  acceptLanguage: 'id-ID',
};
const send = (at: number, to: string, client: Record<string, unknown> = browser) => JSON.stringify({ at: iso(at), type: 'send', to, channel: 'sms', client });
const check = (at: number, to: string, code: string) => JSON.stringify({ at: iso(at), type: 'check', to, code });

async function run(lines: string[]): Promise<{ out: any[]; summary: Awaited<ReturnType<typeof replayLines>> }> {
  const out: any[] = [];
  const summary = await replayLines(
    async function* () {
      yield* lines;
    },
    (l) => {
      out.push(JSON.parse(l));
    },
  );
  return { out, summary };
}

describe('replay trace format', () => {
  it('accepts the documented send and check lines and rejects malformed ones with a reason', () => {
    assert.equal(parseTraceLine(send(T0, '+6281234567890')).kind, 'send');
    assert.equal(parseTraceLine(check(T0, '+6281234567890', 'correct')).kind, 'check');
    assert.equal(parseTraceLine('{"at":1795420800000,"type":"check","to":"+6281234567890","code":"123456"}').kind, 'check');
    const bad = [
      'not json',
      '{"type":"send","to":"+6281234567890"}',
      '{"at":"2026-11-23 08:00","type":"send","to":"+6281234567890"}',
      '{"at":"2026-11-23T08:00:00Z","type":"send","to":"+6281234567890","client":{"formToken":"maybe"}}',
      '{"at":"2026-11-23T08:00:00Z","type":"send","to":"+6281234567890","client":{"formtoken":"valid"}}',
      '{"at":"2026-11-23T08:00:00Z","type":"check","to":"+6281234567890"}',
      // The server answers 400 to a client IP that does not parse; a trace cannot carry one either.
      '{"at":"2026-11-23T08:00:00Z","type":"send","to":"+6281234567890","client":{"ip":"1.2.3.4.5"}}',
      '{"at":"2026-11-23T08:00:00Z","type":"check","to":"+6281234567890","code":"correct","client":{"ip":"zzz"}}',
    ];
    const withIp = (ip: string | null) => `{"at":"2026-11-23T08:00:00Z","type":"send","to":"+6281234567890","client":{"ip":${JSON.stringify(ip)}}}`;
    for (const ip of ['36.72.10.5', '2001:db8::1', null]) assert.equal(parseTraceLine(withIp(ip)).kind, 'send', String(ip));
    for (const line of bad) {
      const p = parseTraceLine(line);
      assert.equal(p.kind, 'invalid', line);
      assert.ok(p.kind === 'invalid' && p.message.length > 0);
    }
  });

  it('says what a bad field should be, in the trace format\'s terms (not the validator\'s)', () => {
    const message = (line: string) => {
      const p = parseTraceLine(line);
      return p.kind === 'invalid' ? p.message : `valid ${p.kind}`;
    };
    const at = '"at":"2026-11-23T08:00:00Z"';
    assert.equal(message(`{${at},"type":"send","to":"+6281234567890","client":{"formToken":"maybe"}}`), '/client/formToken must be one of valid, invalid, expired, reused, missing');
    assert.equal(message(`{${at},"type":"send","to":"+6281234567890","channel":"fax"}`), '/channel must be one of sms, whatsapp, voice, email');
    assert.equal(message(`{${at},"type":"send","to":"+6281234567890","client":{"powLevel":"huge"}}`), '/client/powLevel must be one of normal, elevated, high, null');
    assert.equal(message(`{${at},"type":"send","to":"+6281234567890","client":{"elapsedMs":"5"}}`), '/client/elapsedMs must be a number or null');
    assert.equal(message(`{${at},"type":"send","to":"+6281234567890","client":{"formtoken":"valid","foo":1}}`), '/client has unknown fields formtoken, foo');
    assert.equal(message(`{${at},"type":"check","to":"+6281234567890"}`), '/ misses code');
    // The right type but out of bounds: the bound, not the other branch of a nullable field (a review's find).
    assert.match(message(`{${at},"type":"send","to":"+6281234567890","client":{"userAgent":"${'x'.repeat(600)}"}}`), /^\/client\/userAgent must NOT have more than 512 characters|^\/client\/userAgent .*512/);
    assert.match(message(`{${at},"type":"send","to":"+6281234567890","client":{"elapsedMs":-1}}`), /^\/client\/elapsedMs .*0/);
  });
});

describe('replay driver', () => {
  it('writes exactly one line per input line, in order, with decisions and check results', async () => {
    const a = '+6281234567890';
    const bot = '+6281234567891';
    const lines = [
      send(T0, a),
      check(T0 + 30_000, a, 'wrong'),
      check(T0 + 41_000, a, 'correct'),
      check(T0 + 42_000, a, 'correct'), // already approved
      send(T0 + 60_000, bot, { ip: '36.72.10.9', formToken: 'missing', pow: 'missing', honeypot: true }),
      check(T0 + 90_000, bot, 'correct'), // tarpit: no code was ever delivered, so nothing can match
      JSON.stringify({ at: iso(T0 + 91_000), type: 'quarantine.start', data: {} }),
      'garbage',
      check(T0 + 100_000, '+6281299999999', 'correct'),
      send(T0 + 110_000, 'not a number'),
    ];
    const { out, summary } = await run(lines);
    assert.equal(out.length, lines.length);
    assert.equal(out[0].decision, 'allow');
    assert.ok(Array.isArray(out[0].reasons) && typeof out[0].score === 'number');
    assert.deepEqual(out.slice(1, 4), [{ result: 'denied' }, { result: 'approved' }, { result: 'not_found' }]);
    assert.equal(out[4].decision, 'tarpit');
    assert.ok(out[4].reasons.includes('honeypot'));
    assert.deepEqual(out[5], { result: 'denied' });
    assert.deepEqual(out[6], { ignored: 'quarantine.start' });
    assert.equal(out[7].error, 'invalid_line');
    assert.deepEqual(out[8], { result: 'not_found' });
    assert.deepEqual(out[9], { decision: 'block', reasons: ['invalid_phone_number'], score: 0 });
    assert.equal(summary.delivered, 1, 'only the allowed send reached the (recording) sender');
    assert.equal(summary.invalid, 1);
    assert.equal(summary.sends.allow + summary.sends.tarpit + summary.sends.block, 3);
    assert.equal(summary.auditEvents.send, 2, 'both decided sends were audited (the unparsable number is refused before a decision)');
  });

  it('a number with a verification per channel: each check goes to its own channel\'s verification and code', async () => {
    const r = await Replayer.create({ config: { channels: ['sms', 'whatsapp'] } });
    try {
      const a = '+6281234567892';
      const on = (at: number, channel: string, type: 'send' | 'check', extra: Record<string, unknown>) => JSON.stringify({ at: iso(at), type, to: a, channel, ...extra });
      const out = [];
      out.push(await r.line(on(T0, 'sms', 'send', { client: browser })));
      out.push(await r.line(on(T0 + 1_000, 'whatsapp', 'send', { client: browser })));
      out.push(await r.line(on(T0 + 30_000, 'sms', 'check', { code: 'correct' })));
      out.push(await r.line(on(T0 + 31_000, 'whatsapp', 'check', { code: 'correct' })));
      assert.deepEqual(out.map((o) => (o as { decision?: string; result?: string }).decision ?? (o as { result: string }).result), ['allow', 'allow', 'approved', 'approved']);
    } finally {
      await r.close();
    }
  });

  it("runs the server's background tasks on trace time: an idle tightened scope relaxes at a minute boundary, not at the next line", async () => {
    const r = await Replayer.create({ policy: parsed({ throttle: { floors: { global: 5, country: 5, prefix: 5 }, minTightenedMinutes: 30 } }) });
    try {
      let i = 0;
      const next = (at: number) => send(at, `+6281634${String(500_000 + i * 7_919).padStart(6, '0')}`, { ...browser, ip: `36.76.${(i >> 8) & 255}.${i++ & 255}` });
      let at = T0;
      for (let k = 0; k < 8; k++, at += 10 * 60_000) await r.line(next(at));
      for (let k = 0; k < 10; k++) await r.line(next(at + k * 1000));
      const tightenedAt = r.notableEvents().find((e) => e.type === 'throttle.tightened')?.at;
      assert.ok(tightenedAt !== undefined, 'the burst tightened a scope');
      const late = at + 60 * 60_000;
      await r.line(next(late)); // the next line, an hour later
      const relaxed = r.notableEvents().filter((e) => e.type === 'throttle.normal');
      assert.ok(relaxed.length > 0);
      for (const e of relaxed) {
        // When a server's minute timer would: the first boundary past 30 minutes tightened (the burst left the
        // 10-minute window long before), not the end of the gap.
        assert.ok(e.at >= tightenedAt! + 30 * 60_000 && e.at <= tightenedAt! + 31 * 60_000, `relaxed at ${new Date(e.at).toISOString()}, tightened at ${new Date(tightenedAt!).toISOString()}`);
        assert.equal(e.at % 60_000, 0, 'at a minute boundary');
      }
    } finally {
      await r.close();
    }
  });

  it('drives time from the events: codes expire and cooldowns pass on trace time, not wall time', async () => {
    const a = '+6281234567892';
    const { out } = await run([
      send(T0, a),
      send(T0 + 1_000, a), // resend inside the 30 s cooldown
      check(T0 + 11 * 60_000, a, 'correct'), // past the 10-minute code lifetime
      send(T0 + 12 * 60_000, a),
      check(T0 + 12 * 60_000 + 20_000, a, 'correct'),
    ]);
    assert.equal(out[0].decision, 'allow');
    assert.equal(out[1].decision, 'block');
    assert.ok(out[1].reasons.includes('cooldown'), JSON.stringify(out[1]));
    assert.deepEqual(out[2], { result: 'expired' });
    assert.equal(out[3].decision, 'allow');
    assert.deepEqual(out[4], { result: 'approved' });
  });

  it('a literal guess is compared like a typed code, and brute force locks the verification', async () => {
    const a = '+6281234567893';
    const r = await Replayer.create();
    try {
      await r.line(send(T0, a));
      const real = r.delivery.lastCode(a)!;
      assert.match(real, /^\d{6}$/);
      const guesses: string[] = [];
      for (let i = 0; guesses.length < 6; i++) {
        const g = String(i).padStart(6, '0');
        if (g !== real) guesses.push(g);
      }
      // A guess the server would refuse as malformed (400 invalid_code) is an invalid line and costs no attempt,
      // as live (it used to replay as `denied`).
      for (const bad of ['12345', '1234567', '12a456']) {
        const out = await r.line(check(T0 + 500, a, bad));
        assert.ok(out && 'error' in out && out.error === 'invalid_line' && /invalid_code/.test(out.message), JSON.stringify(out));
      }
      const results = [];
      for (const [i, g] of guesses.entries()) results.push(await r.line(check(T0 + 1000 * (i + 1), a, g)));
      assert.deepEqual(results.slice(0, 5), [{ result: 'denied' }, { result: 'denied' }, { result: 'denied' }, { result: 'denied' }, { result: 'denied' }]);
      assert.deepEqual(results[5], { result: 'locked' });
      assert.deepEqual(await r.line(check(T0 + 10_000, a, real)), { result: 'locked' }, 'the right code is useless once locked');
    } finally {
      await r.close();
    }
  });

  it('counts lines that go back in time and replays them at the latest time seen', async () => {
    const { out, summary } = await run([send(T0 + 60_000, '+6281234567894'), send(T0, '+6281234567895')]);
    assert.equal(summary.outOfOrder, 1);
    assert.equal(out.length, 2);
    assert.equal(summary.firstAt, iso(T0 + 60_000));
    assert.equal(summary.lastAt, iso(T0 + 60_000));
  });
});

describe('replay trace format, check lines', () => {
  it('a check\'s client accepts ip and deviceId only: a typo is an invalid line, as in a send\'s client', () => {
    const line = (client: Record<string, unknown>) => parseTraceLine(JSON.stringify({ at: iso(T0), type: 'check', to: '+6281234567890', code: 'correct', client }));
    assert.equal(line({ ip: '36.72.10.9', deviceId: 'dev-1' }).kind, 'check');
    const typo = line({ ip: '36.72.10.9', deviceID: 'dev-1' });
    assert.equal(typo.kind, 'invalid');
  });
});

describe('replay summary', () => {
  it('warns when sends had masked numbers (an export without --no-mask), and counts quarantine and throttle events', async () => {
    const { summary } = await run([send(T0, '+62812*****890'), send(T0 + 1000, '+6281234567890')]);
    assert.equal(summary.maskedNumbers, 1);
    const text = formatSummary(summary);
    assert.match(text, /warning: 1 sends had masked numbers/);
    assert.match(text, /quarantines started 0, ended 0; throttling tightened 0, relaxed 0/);
    assert.doesNotMatch(formatSummary((await run([send(T0, '+6281234567891')])).summary), /warning/);
  });
});

describe('replay runs the server engine: an audit export replays to the same decisions', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('recorded decisions, scores and check results equal the replayed ones', async () => {
    // Evidence without tokens verifies the same way live and in replay (missing), so the server's own
    // decisions are the reference. Varied IPs, agents and numbers exercise score, block, tarpit and limits.
    const agents = ['Mozilla/5.0 (Linux; Android 14) Chrome/130', 'curl/8.5.0', 'Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0'];
    const ips = ['36.72.10.5', '36.72.10.5', '159.89.1.7', '8.8.4.4', '36.72.11.9'];
    const numbers = ['+6281234560001', '+6281234560002', '+6281234560003', '+447400123456', '+6281234560001'];
    for (let i = 0; i < 24; i++) {
      const to = numbers[i % numbers.length]!;
      const client: Record<string, unknown> = { ip: ips[i % ips.length], userAgent: agents[i % agents.length], elapsedMs: i % 4 === 0 ? 800 : 4000 };
      if (i % 3 !== 0) client.acceptLanguage = 'id-ID';
      if (i % 7 === 0) client.honeypot = 'filled';
      if (i % 5 === 0) client.deviceId = `dev-${i % 2}`;
      const res = await t.request('POST', '/v1/verifications', { to, client });
      if (res.status === 201 && i % 2 === 0) {
        t.clock.advance(20_000);
        const code = t.lastCode(to);
        await t.request('POST', '/v1/verifications/check', { id: res.body.id, code: i % 4 === 0 ? code : '000000' });
      }
      t.clock.advance(7_000);
    }
    const lines: string[] = [];
    for await (const l of exportEvents(t.ctx.store, { types: ['send', 'check'], mask: numberMasker('none') })) lines.push(l);
    assert.ok(lines.length >= 26, `exported ${lines.length}`);
    const recorded = lines.map((l) => JSON.parse(l));
    const decisions = new Set(recorded.filter((e) => e.type === 'send').map((e) => e.decision));
    assert.ok(decisions.size >= 3, `the traffic should produce several kinds of decision, got ${[...decisions]}`);

    const { out } = await run(lines);
    assert.equal(out.length, recorded.length);
    for (const [i, rec] of recorded.entries()) {
      if (rec.type === 'send') assert.deepEqual(out[i], { decision: rec.decision, reasons: rec.reasons, score: rec.score }, `line ${i}: ${lines[i]}`);
      else assert.deepEqual(out[i], { result: rec.result }, `line ${i}: ${lines[i]}`);
    }
  });

  it("an export's list changes, pauses and resumes are applied in the replay, so the sends after them decide as they did live", async () => {
    t.clock.advance(3_600_000);
    const start = t.clock();
    const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
    const client = { ip: '36.72.70.1', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 4000 };
    const sendTo = async (to: string) => {
      t.clock.advance(40_000);
      return t.request('POST', '/v1/verifications', { to, client: { ...client, ip: `36.72.70.${(start / 1000) % 200 | 0}` } });
    };
    const blocked = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281234570001' });
    assert.equal(blocked.status, 201, blocked.text);
    assert.equal((await admin('POST', '/v1/admin/pause', { prefix: '+6281377' })).status, 200);
    const live = [await sendTo('+6281234570001'), await sendTo('+6281377000002'), await sendTo('+6281234570003')];
    assert.deepEqual(live.map((r) => r.status), [403, 403, 201], live.map((r) => r.text).join('\n'));
    assert.equal((await admin('DELETE', `/v1/admin/lists/${blocked.body.id}`)).status, 200);
    assert.equal((await admin('POST', '/v1/admin/resume', { prefix: '+6281377' })).status, 200);
    const after = [await sendTo('+6281234570001'), await sendTo('+6281377000004')];
    assert.deepEqual(after.map((r) => r.status), [201, 201], after.map((r) => r.text).join('\n'));

    const lines: string[] = [];
    for await (const l of exportEvents(t.ctx.store, { from: start, types: ['send', 'check', 'list.add', 'list.remove', 'pause', 'resume'], mask: numberMasker('none') })) lines.push(l);
    const recorded = lines.map((l) => JSON.parse(l));
    assert.deepEqual(recorded.map((e) => e.type), ['list.add', 'pause', 'send', 'send', 'send', 'list.remove', 'resume', 'send', 'send']);
    const { out, summary } = await run(lines);
    for (const [i, rec] of recorded.entries()) {
      if (rec.type === 'send') assert.deepEqual(out[i], { decision: rec.decision, reasons: rec.reasons, score: rec.score }, `line ${i}: ${lines[i]}`);
      else assert.deepEqual(out[i], { applied: rec.type }, `line ${i}`);
    }
    assert.equal(summary.applied, 4);
    // A masked export's number entry cannot be applied (it would never match): said so, not applied.
    const masked: string[] = [];
    for await (const l of exportEvents(t.ctx.store, { from: start, types: ['list.add'], mask: numberMasker('mask') })) masked.push(l);
    assert.deepEqual((await run(masked)).out, [{ ignored: 'list.add' }]);
  });

  it("an export's unlock is applied in the replay: the send after it is allowed as it was live", async () => {
    t.clock.advance(3_600_000);
    const start = t.clock();
    const to = '+6281234571001';
    const client = { ip: '36.72.71.1', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 4000 };
    for (let round = 0; round < 2; round++) {
      t.clock.advance(40_000);
      const s = await t.request('POST', '/v1/verifications', { to, client: { ...client, ip: `36.72.71.${round + 1}` } });
      assert.equal(s.status, 201, s.text);
      const wrong = t.lastCode(to) === '000000' ? '000001' : '000000';
      for (let i = 0; i < 5; i++) assert.equal((await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong })).status, 200);
    }
    t.clock.advance(40_000);
    const locked = await t.request('POST', '/v1/verifications', { to, client: { ...client, ip: '36.72.71.9' } });
    assert.deepEqual([locked.status, locked.body.error?.reasons], [429, ['locked.number']]);
    assert.equal((await t.request('POST', '/v1/admin/unlock', { target: to }, { key: t.adminKey })).status, 200);
    t.clock.advance(1_000);
    assert.equal((await t.request('POST', '/v1/verifications', { to, client: { ...client, ip: '36.72.71.10' } })).status, 201);

    const lines: string[] = [];
    for await (const l of exportEvents(t.ctx.store, { from: start, types: ['send', 'check', 'unlock'], mask: numberMasker('none') })) lines.push(l);
    const recorded = lines.map((l) => JSON.parse(l));
    assert.deepEqual(recorded.map((e) => e.type).filter((x) => x !== 'check'), ['send', 'send', 'send', 'unlock', 'send']);
    const { out } = await run(lines);
    for (const [i, rec] of recorded.entries()) {
      if (rec.type === 'send') assert.deepEqual(out[i], { decision: rec.decision, reasons: rec.reasons, score: rec.score }, `line ${i}: ${lines[i]}`);
      else if (rec.type === 'unlock') assert.deepEqual(out[i], { applied: 'unlock' });
    }
    // Masked, the unlock names no one: not applied, and said so.
    const masked: string[] = [];
    for await (const l of exportEvents(t.ctx.store, { from: start, types: ['unlock'], mask: numberMasker('mask') })) masked.push(l);
    assert.deepEqual((await run(masked)).out, [{ ignored: 'unlock' }]);
  });

  it('a delivery that failed live fails in the replay too: same decision and score, nothing counted as sent', async () => {
    const live = await startTestApp();
    try {
      const client = { ip: '36.72.40.1', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };
      live.receiver.setHandler(() => ({ status: 500, json: { error: 'provider down' } }));
      const failed = await live.request('POST', '/v1/verifications', { to: '+6281388810001', client });
      assert.equal(failed.status, 502, failed.text);
      live.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
      assert.equal((await live.request('POST', '/v1/verifications', { to: '+6281388810002', client: { ...client, ip: '36.72.40.2' } })).status, 201);
      const lines: string[] = [];
      for await (const l of exportEvents(live.ctx.store, { types: ['send', 'send.failed'], mask: numberMasker('none') })) lines.push(l);
      const recorded = lines.map((l) => JSON.parse(l));
      assert.deepEqual(recorded.map((r) => r.deliveryFailed ?? false), [true, false]);
      assert.equal(typeof recorded[0].score, 'number', 'the failed send keeps its score');
      const { out, summary } = await run(lines);
      for (const [i, rec] of recorded.entries()) assert.deepEqual(out[i], { decision: rec.decision, reasons: rec.reasons, score: rec.score });
      assert.equal(summary.delivered, 1, 'only the send delivered live counts as sent');
    } finally {
      await live.close();
    }
  });

  it('the solved puzzle\'s level travels through the export: an escalated client\'s small puzzle replays as the challenge it got live', async () => {
    const live = await startTestApp();
    try {
      const ua = 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36';
      // Three rule trips escalate 127.0.0.1 (the test's own address, which /v1/challenges binds tokens to).
      for (let i = 0; i < 3; i++) await live.request('POST', '/v1/verifications', { to: `+62813777${i}0001`, client: { ip: '127.0.0.1', userAgent: 'curl/8.5.0' } });
      const c = (await live.request('POST', '/v1/challenges', {}, { key: null, headers: { 'user-agent': ua } })).body;
      const r = await live.request('POST', '/v1/verifications', { to: '+6281377790002', client: { ip: '127.0.0.1', userAgent: ua, acceptLanguage: 'id-ID', elapsedMs: 6000, formToken: c.formToken, pow: solvePow(c.pow) } });
      assert.equal(r.status, 403, r.text);
      const lines: string[] = [];
      for await (const l of exportEvents(live.ctx.store, { types: ['send'], mask: numberMasker('none') })) lines.push(l);
      const last = JSON.parse(lines.at(-1)!);
      assert.equal(last.client.powLevel, 'normal', lines.at(-1));
      assert.equal(last.decision, 'challenge');
      const { out } = await run(lines);
      assert.deepEqual(out.at(-1), { decision: last.decision, reasons: last.reasons, score: last.score });
    } finally {
      await live.close();
    }
  });
});
