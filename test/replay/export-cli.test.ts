/**
 * `otp-shield events export` and `otp-shield replay` as real child processes on a SQLite data dir: the
 * export of a running server's traffic is replay input, masks protect numbers, pseudonyms stay replayable.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizePhone, prefixOf } from '../../src/signals/phone.ts';
import { numberMasker } from '../../src/service/audit-export.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function cli(dataDir: string, args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTPSHIELD_') && k !== 'NODE_TEST_CONTEXT' && k !== 'NODE_OPTIONS') env[k] = v;
  env.OTPSHIELD_DATA_DIR = dataDir;
  env.NODE_ENV = 'test';
  Object.assign(env, extraEnv);
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: dataDir, env, timeout: 90_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('number masks', () => {
  it('mask hides the middle digits; pseudonyms are stable, distinct, keep the prefix and still parse', () => {
    const mask = numberMasker('mask');
    assert.equal(mask('+6281234567890'), '+62812*****890');
    assert.equal(mask('not a number'), 'not a number');
    const p = numberMasker('pseudonymize', 'k1');
    const nums = ['+6281234567890', '+6281234567891', '+447400123456', '+14155550123'];
    const out = nums.map(p);
    assert.deepEqual(nums.map(numberMasker('pseudonymize', 'k1')), out, 'same key, same pseudonyms');
    assert.notDeepEqual(nums.map(numberMasker('pseudonymize', 'k2')), out, 'another key, other pseudonyms');
    assert.equal(new Set(out).size, nums.length);
    for (const [i, n] of nums.entries()) {
      assert.notEqual(out[i], n);
      assert.equal(out[i]!.length, n.length);
      assert.equal(prefixOf(out[i]!, 3), prefixOf(n, 3));
    }
    assert.ok(normalizePhone(out[0]).ok && normalizePhone(out[1]).ok, 'an Indonesian mobile pseudonym is still a valid number');
  });
});

describe('events export → replay (CLI)', () => {
  let t: TestApp;
  const to = '+6281234567800';
  before(async () => {
    t = await startTestApp();
    const res = await t.request('POST', '/v1/verifications', { to, client: { ip: '36.72.10.5', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 4000 } });
    assert.equal(res.status, 201, res.text);
    t.clock.advance(20_000);
    await t.request('POST', '/v1/verifications/check', { id: res.body.id, code: t.lastCode(to) });
    t.clock.advance(60_000);
    await t.request('POST', '/v1/verifications', { to: '+6281234567801', client: { ip: '159.89.1.7', userAgent: 'python-requests/2.31' } });
    // A delivery the provider refused (a send.failed event): exported as a send line with deliveryFailed.
    t.clock.advance(60_000);
    t.receiver.setHandler(() => ({ status: 400, json: { error: 'rejected' } }));
    const failed = await t.request('POST', '/v1/verifications', { to: '+6281234567802', client: { ip: '36.72.10.6', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 4000 } });
    assert.equal(failed.status, 502, failed.text);
    t.receiver.setHandler(() => ({ status: 200, json: { ok: true } }));
  });
  after(async () => t.close());

  it('exports masked by default, in full with --no-mask, and the full export replays to the recorded decisions', async () => {
    const masked = await cli(t.dataDir, ['events', 'export']);
    assert.equal(masked.code, 0, masked.stderr);
    const mlines = masked.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(mlines.length >= 3);
    assert.ok(!masked.stdout.includes(to), 'masked by default');

    const full = await cli(t.dataDir, ['events', 'export', '--no-mask', '--type', 'send,check', '-o', 'trace.ndjson']);
    assert.equal(full.code, 0, full.stderr);
    assert.doesNotMatch(full.stderr, /warning/, 'both types matched');
    // A type nothing matched may be a typo: said so, without failing.
    const typo = await cli(t.dataDir, ['events', 'export', '--no-mask', '--type', 'sends,check']);
    assert.equal(typo.code, 0, typo.stderr);
    assert.match(typo.stderr, /warning: no events of type "sends" in the range/);
    const lines = readFileSync(join(t.dataDir, 'trace.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    // `--type send` includes the failed delivery (a send line): the attempt counted against the limits.
    assert.deepEqual(lines.map((l) => l.type), ['send', 'check', 'send', 'send']);
    assert.equal(lines[3].deliveryFailed, true);
    assert.equal(lines[0].to, to);
    assert.equal(lines[1].code, 'correct');

    writeFileSync(join(t.dataDir, 'policy.yaml'), 'name: replay-test\n');
    const rep = await cli(t.dataDir, ['replay', '--policy', 'policy.yaml', '--input', 'trace.ndjson', '--output', 'decisions.ndjson']);
    assert.equal(rep.code, 0, rep.stderr);
    assert.match(rep.stderr, /replayed 4 lines/);
    const out = readFileSync(join(t.dataDir, 'decisions.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(out[0], { decision: lines[0].decision, reasons: lines[0].reasons, score: lines[0].score });
    assert.deepEqual(out[1], { result: 'approved' });
    assert.deepEqual(out[2], { decision: lines[2].decision, reasons: lines[2].reasons, score: lines[2].score });
  });

  it('refuses an empty or short pseudonym key, and a masking switch it cannot read, instead of leaking numbers', async () => {
    for (const key of ['', 'short']) {
      const r = await cli(t.dataDir, ['events', 'export', '--pseudonymize', '--pseudonym-key', key]);
      assert.equal(r.code, 1, `key ${JSON.stringify(key)}: ${r.stderr}`);
      assert.match(r.stderr, /--pseudonym-key must be at least 16 characters/);
      assert.equal(r.stdout, '', 'nothing exported');
    }
    const typo = await cli(t.dataDir, ['events', 'export'], { OTPSHIELD_MASK_NUMBERS: 'flase' });
    assert.notEqual(typo.code, 0, typo.stderr);
    assert.match(typo.stderr, /OTPSHIELD_MASK_NUMBERS: expected 1\/0, true\/false/);
    assert.equal(typo.stdout, '', 'nothing exported');
    const off = await cli(t.dataDir, ['events', 'export'], { OTPSHIELD_MASK_NUMBERS: 'off' });
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stderr, /numbers: in full/);
  });

  it('replay refuses an invalid policy and reports bad trace lines with a non-zero exit', async () => {
    writeFileSync(join(t.dataDir, 'bad-policy.yaml'), 'risk:\n  challengeAt: "high"\n');
    writeFileSync(join(t.dataDir, 'bad.ndjson'), 'nope\n');
    const bad = await cli(t.dataDir, ['replay', '--policy', 'bad-policy.yaml', '--input', 'bad.ndjson']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid policy/);
    const lines = await cli(t.dataDir, ['replay', '--input', 'bad.ndjson']);
    assert.equal(lines.code, 1);
    assert.equal(JSON.parse(lines.stdout.trim()).error, 'invalid_line');
  });
});
