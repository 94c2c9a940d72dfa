/**
 * How the CLI fails on bad input: usage and file-system errors are one line and exit 1, never a stack;
 * bad values are refused before they are stored or replayed. Real child processes (test/helpers/cli.ts).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, withDatabase, type Run } from '../helpers/cli.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { keyView } from '../../src/service/api-keys.ts';
import { parseTraceLine } from '../../src/replay/format.ts';
import { formatCliError, isFileSystemError } from '../../src/cli/errors.ts';
import { ConfigError } from '../../src/config/load.ts';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

const made: string[] = [];
const fresh = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `otps-err-${name}-`));
  made.push(dir);
  return dir;
};
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** rc 1, exactly one line on stderr matching `re`, and no stack frame. */
function assertOneLine(r: Run, re: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: exit code (stderr: ${r.stderr})`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace (stderr: ${r.stderr})`);
  assert.doesNotMatch(r.stderr, /Unhandled 'error' event/, what);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line (stderr: ${r.stderr})`);
  assert.match(r.stderr, re, what);
}

describe('CLI errors', () => {
  it('keys create refuses an out-of-range --expires-in-days; keys list survives a stored out-of-range expiry', async () => {
    const dir = fresh('keys');
    const bad = ['1e10', '0', '-1', '1.5', '36501', 'soon'];
    const runs = await Promise.all(bad.map((d) => cli(dir, ['keys', 'create', '--expires-in-days', d])));
    runs.forEach((r, i) => assertOneLine(r, /^otp-shield: --expires-in-days must be a whole number of days from 1 to 36500/, `--expires-in-days ${bad[i]}`));
    const ok = await cli(dir, ['keys', 'create', '--expires-in-days', '36500', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match((JSON.parse(ok.stdout) as { expiresAt: string }).expiresAt, /^21\d\d-/);

    // A key written by an older version, whose expiry no Date can hold (1e10 days), revoked or not.
    const store = new SqliteStore(join(dir, 'otp-shield.db'));
    const base = { name: 'old', secretHash: '0'.repeat(64), scopes: ['verify' as const], createdAt: Date.now(), revokedAt: null, lastUsedAt: null };
    await store.putApiKey({ ...base, id: 'oldkeyAAAAAA', expiresAt: Date.now() + 1e10 * 86_400_000 });
    await store.putApiKey({ ...base, id: 'oldkeyBBBBBB', expiresAt: Date.now() + 1e10 * 86_400_000 });
    await store.revokeApiKey('oldkeyBBBBBB', Date.now());
    await store.close();
    const [json, text] = await Promise.all([cli(dir, ['keys', 'list', '--json']), cli(dir, ['keys', 'list'])]);
    assert.equal(json.code, 0, json.stderr);
    const list = JSON.parse(json.stdout) as { id: string; expiresAt: string | null; revokedAt: string | null }[];
    const a = list.find((k) => k.id === 'oldkeyAAAAAA');
    const b = list.find((k) => k.id === 'oldkeyBBBBBB');
    assert.equal(a?.expiresAt, null);
    assert.equal(b?.expiresAt, null);
    assert.ok(b?.revokedAt);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /oldkeyAAAAAA .*active/);
    assert.match(text.stdout, /oldkeyBBBBBB .*revoked/);
  });

  it('keyView shows a time no Date can hold as null instead of throwing', () => {
    const v = keyView({ id: 'x', name: null, secretHash: '', scopes: ['admin'], createdAt: 0, expiresAt: 8.64e17, revokedAt: 8.64e15 + 1, lastUsedAt: Number.NaN });
    assert.deepEqual(v, { id: 'x', name: null, scopes: ['admin'], createdAt: '1970-01-01T00:00:00.000Z', expiresAt: null, revokedAt: null, lastUsedAt: null });
  });

  it('a trace line whose at is outside 1970..9999 is an invalid line (parse), not an exception', () => {
    for (const at of [1e308, 8_640_000_000_000_001, 253_402_300_800_000, -1, '"1969-12-31T23:59:59Z"']) {
      const t = parseTraceLine(`{"type":"send","at":${at},"to":"+447911123456"}`);
      assert.equal(t.kind, 'invalid', `at ${at}`);
    }
    for (const at of [0, 253_402_300_799_999, '"9999-12-31T23:59:59.999Z"', '"1970-01-01T00:00:00Z"']) {
      assert.equal(parseTraceLine(`{"type":"send","at":${at},"to":"+447911123456"}`).kind, 'send', `at ${at}`);
    }
  });

  it('replay reports an out-of-range at as an invalid line and goes on', async () => {
    const dir = fresh('replay-at');
    const lines = [
      '{"type":"send","at":"2026-11-23T08:00:00Z","to":"+447911123456"}',
      '{"type":"send","at":1e308,"to":"+447911123456"}',
      '{"type":"send","at":8640000000000001,"to":"+447911123456"}',
      '{"type":"send","at":-1,"to":"+447911123456"}',
      '{"type":"check","at":"2026-11-23T08:00:30Z","to":"+447911123456","code":"correct"}',
    ];
    writeFileSync(join(dir, 't.ndjson'), lines.join('\n') + '\n');
    const r = await cli(dir, ['replay', '--input', 't.ndjson']);
    assert.equal(r.code, 1, r.stderr); // invalid lines make the exit status 1
    assert.doesNotMatch(r.stderr, /RangeError|\n\s+at /, r.stderr);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(out.length, 5);
    assert.ok('decision' in out[0]!);
    for (const i of [1, 2, 3]) assert.equal(out[i]!.error, 'invalid_line', `line ${i + 1}`);
    assert.deepEqual(out[4], { result: 'approved' });
    assert.match(r.stderr, /invalid 3/);
  });

  it('unwritable outputs fail at once with one line: replay --output, --summary-json, events export --output', async () => {
    const dir = fresh('out');
    writeFileSync(join(dir, 't.ndjson'), '{"type":"send","at":"2026-11-23T08:00:00Z","to":"+447911123456"}\n');
    mkdirSync(join(dir, 'adir'));
    const cases: [string[], RegExp][] = [
      [['replay', '--input', 't.ndjson', '--output', '/nonexistent/dir/x'], /^otp-shield: cannot write \/nonexistent\/dir\/x: ENOENT/],
      [['replay', '--input', 't.ndjson', '--output', 'adir'], /^otp-shield: cannot write adir: EISDIR/],
      [['events', 'export', '--output', '/nonexistent/dir/x'], /^otp-shield: cannot write \/nonexistent\/dir\/x: ENOENT/],
      [['replay', '--input', 't.ndjson', '--output', 'd.ndjson', '--summary-json', '/nonexistent/x.json'], /^otp-shield: cannot write \/nonexistent\/x\.json: ENOENT/],
      [['replay', '--input', 't.ndjson', '--output', 'd.ndjson', '--summary-json', 'adir'], /^otp-shield: cannot write adir: it is a directory/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(dir, args)));
    runs.forEach((r, i) => assertOneLine(r, cases[i]![1], cases[i]![0].join(' ')));
    // The summary path is checked before the replay runs: the output was not even created.
    assert.equal(existsSync(join(dir, 'd.ndjson')), false);
  });

  it('replay refuses to write over its input, and fails a trace that is empty or whose numbers are masked', async () => {
    const dir = fresh('same');
    const trace = '{"type":"send","at":"2026-11-23T08:00:00Z","to":"+447911123456"}\n';
    writeFileSync(join(dir, 't.ndjson'), trace);
    symlinkSync(join(dir, 't.ndjson'), join(dir, 'link.ndjson'));
    for (const args of [['--output', 't.ndjson'], ['--output', 'link.ndjson'], ['--output', 'd.ndjson', '--summary-json', './t.ndjson']]) {
      const r = await cli(dir, ['replay', '--input', 't.ndjson', ...args]);
      assertOneLine(r, /^otp-shield: --(output|summary-json) \S+ is the input file: it would be overwritten before it is read/, args.join(' '));
      assert.equal(readFileSync(join(dir, 't.ndjson'), 'utf8'), trace, 'the trace is intact');
    }
    writeFileSync(join(dir, 'empty.ndjson'), '\n');
    const empty = await cli(dir, ['replay', '--input', 'empty.ndjson']);
    assert.equal(empty.code, 1, empty.stderr);
    assert.match(empty.stderr, /error: the trace has no lines/);
    writeFileSync(join(dir, 'masked.ndjson'), '{"type":"send","at":"2026-11-23T08:00:00Z","to":"+62812*****890"}\n');
    const masked = await cli(dir, ['replay', '--input', 'masked.ndjson']);
    assert.equal(masked.code, 1, masked.stderr);
    assert.match(masked.stderr, /warning: 1 sends had masked numbers/);
    const ok = await cli(dir, ['replay', '--input', 't.ndjson', '--output', 'd.ndjson']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('a full disk is one line naming the file, not a stream error with a stack (events export, replay)', async () => {
    const dir = fresh('full');
    const store = new SqliteStore(join(dir, 'otp-shield.db'));
    const at = Date.parse('2026-11-23T08:00:00Z');
    await store.appendEvents(Array.from({ length: 3000 }, (_, i) => ({ id: `ev_full_${i}`, at: at + i, type: 'send', to: '+6281234567890', decision: 'allow', reasons: [], data: {} })));
    await store.close();
    writeFileSync(join(dir, 't.ndjson'), '{"type":"send","at":"2026-11-23T08:00:00Z","to":"+447911123456"}\n');
    const [exported, replayed] = await Promise.all([
      cli(dir, ['events', 'export', '--output', '/dev/full']),
      cli(dir, ['replay', '--input', 't.ndjson', '--output', '/dev/full']),
    ]);
    assertOneLine(exported, /^otp-shield: cannot write \/dev\/full: ENOSPC/, 'events export to a full disk');
    assertOneLine(replayed, /^otp-shield: cannot write \/dev\/full: ENOSPC/, 'replay to a full disk');
  });

  it('a directory or file where the other is expected is one line: lookup --policy, config check --config, replay --input, simulate --out', async () => {
    const dir = await withDatabase(fresh('paths'));
    mkdirSync(join(dir, 'adir'));
    writeFileSync(join(dir, 'afile'), 'x\n');
    const cases: [string[], RegExp][] = [
      [['lookup', '+447911123456', '--policy', 'adir'], /^otp-shield: cannot read policy file adir: it is a directory/],
      [['config', 'check', '--config', 'adir'], /^otp-shield: cannot read adir: EISDIR/],
      [['--config', 'adir', 'replay', '--input', 'afile'], /^otp-shield: cannot read adir: EISDIR/],
      [['replay', '--input', 'adir'], /^otp-shield: cannot read input adir: it is a directory/],
      [['replay', '--policy', 'adir', '--input', 'afile'], /^otp-shield: cannot read policy file adir: it is a directory/],
      [['simulate', '--out', 'afile', '--scale', '0.01'], /^otp-shield: --out must be a folder: afile is a file/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(dir, args)));
    runs.forEach((r, i) => assertOneLine(r, cases[i]![1], cases[i]![0].join(' ')));
  });

  it('a command pointed at a data dir without a database says so instead of reading or writing a new empty one', async () => {
    const dir = fresh('nodb');
    for (const args of [['events', 'export'], ['lists', 'add', 'prefix', '+62812999'], ['lists', 'list'], ['keys', 'list'], ['pause', '--country', 'ID'], ['lookup', '+6281234567890']]) {
      const r = await cli(dir, args);
      assertOneLine(r, /^otp-shield: no database at \S+otp-shield\.db \(data directory \S+, relative to the working directory \S+\): run the command where the server runs/, args.join(' '));
      assert.equal(existsSync(join(dir, 'otp-shield.db')), false, `${args.join(' ')} created nothing`);
    }
    // keys create is the first step of a new install: it creates the database, and says where.
    const created = await cli(dir, ['keys', 'create', '--scope', 'verify']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /created a new database at \S+otp-shield\.db/);
    const listed = await cli(dir, ['lists', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
  });

  it('serve and the store commands: a bad port, a port in use and a file that is not a database are one line', async () => {
    const dir = fresh('serve');
    const bad = await cli(dir, ['serve', '--port', 'abc']);
    assertOneLine(bad, /^otp-shield: --port must be a port number 0\.\.65535, got "abc"/, 'serve --port abc');
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (taken.address() as AddressInfo).port;
      writeFileSync(join(dir, 'c.json'), JSON.stringify({ server: { host: '127.0.0.1' } }));
      const inUse = await cli(dir, ['--config', 'c.json', 'serve', '--port', String(port)]);
      assertOneLine(inUse, new RegExp(`^otp-shield: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use \\(EADDRINUSE\\)`), 'serve on a port in use');
    } finally {
      taken.close();
    }
    writeFileSync(join(dir, 'otp-shield.db'), 'this is not a database, it is a note\n'.repeat(200));
    assertOneLine(await cli(dir, ['lists', 'list']), /^otp-shield: cannot open the sqlite store at \S+otp-shield\.db: file is not a database \(SQLITE_NOTADB\)/, 'lists list on a file that is not a database');
    assertOneLine(await cli(dir, ['serve', '--port', '0']), /^otp-shield: cannot open the sqlite store at \S+: file is not a database/, 'serve on a file that is not a database');
  });

  it('near-miss arguments are refused in one line instead of being read some other way', async () => {
    const dir = await withDatabase(fresh('nearmiss'));
    writeFileSync(join(dir, 't.ndjson'), '{"type":"send","at":"2026-11-23T08:00:00Z","to":"+447911123456"}\n');
    const cases: [string[], RegExp][] = [
      [['simulate', '--out', 'sim', '--day', '2026-02-30', '--scale', '0.01'], /^otp-shield: --day must be a date like 2026-11-23/],
      [['lists', 'add', 'ip', '198.51.100.9', '--expires', '12/31/2030'], /--expires "12\/31\/2030" is not a date/],
      [['lists', 'add', 'ip', '198.51.100.9', '--expires', '2030'], /--expires "2030" is not a date/],
      [['events', 'export', '--mask', '--pseudonymize'], /^otp-shield: use one of --mask, --no-mask or --pseudonymize/],
      [['events', 'export', '--no-mask', '--pseudonymize'], /^otp-shield: use one of --mask, --no-mask or --pseudonymize/],
      [['replay', '--input', 't.ndjson', '--summary-json', '-'], /^otp-shield: --summary-json - writes to stdout/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(dir, args);
      assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim().split('\n')[0] ?? '', re, args.join(' '));
    }
    assert.equal(existsSync(join(dir, '-')), false);
    const summary = await cli(dir, ['replay', '--input', 't.ndjson', '--output', 'd.ndjson', '--summary-json', '-']);
    assert.equal(summary.code, 0, summary.stderr);
    assert.equal(JSON.parse(summary.stdout).lines, 1, 'the summary on stdout');
    assert.equal(existsSync(join(dir, '-')), false, 'no file named -');
    const dated = await cli(dir, ['lists', 'add', 'ip', '198.51.100.9', '--expires', '2030-12-31', '--json']);
    assert.equal(dated.code, 0, dated.stderr);
    assert.equal(JSON.parse(dated.stdout).expiresAt, '2030-12-31T00:00:00.000Z');
    const keys = await cli(dir, ['keys', 'list']);
    assert.match(keys.stdout, /^no keys/);
  });

  it('config check fails where serve would: a policy file that is missing or invalid, TLS files that cannot be read', async () => {
    const dir = fresh('check');
    writeFileSync(join(dir, 'typo.yaml'), 'risk:\n  challengeAtt: 40\n');
    writeFileSync(join(dir, 'good.yaml'), 'risk:\n  challengeAt: 40\n');
    const cfg = (name: string, doc: Record<string, unknown>) => {
      writeFileSync(join(dir, name), JSON.stringify(doc));
      return name;
    };
    const cases: [string, RegExp][] = [
      [cfg('a.json', { policyFile: 'typo.yaml' }), /^otp-shield: invalid policy typo\.yaml: .*challengeAtt/],
      [cfg('b.json', { policyFile: 'missing.yaml' }), /^otp-shield: policy file not found: missing\.yaml/],
      [cfg('c.json', { server: { tls: { certFile: 'nope.pem', keyFile: 'nope.key' } } }), /^otp-shield: cannot read server\.tls\.certFile nope\.pem: ENOENT/],
    ];
    for (const [file, re] of cases) assertOneLine(await cli(dir, ['config', 'check', '--config', file]), re, file);
    const good = await cli(dir, ['config', 'check', '--config', cfg('d.json', { policyFile: 'good.yaml' })]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^configuration is valid/);
    assert.doesNotMatch(good.stderr, /warning/);
    // Valid but cannot work: an enabled channel no sender supports (serve only logged it).
    const voice = await cli(dir, ['config', 'check', '--config', cfg('e.json', { channels: ['sms', 'voice'], senders: [{ type: 'webhook', url: 'http://127.0.0.1:9/deliver', secret: 'a-webhook-secret-of-32-characters!!', channels: ['sms'] }] })]);
    assert.equal(voice.code, 0, voice.stderr);
    assert.match(voice.stderr, /^warning: channel voice is enabled but no configured sender supports it/m);
  });

  it('events export refuses a type that cannot be an event type and an inverted --from/--to', async () => {
    const dir = await withDatabase(fresh('export'));
    const cases: [string[], RegExp][] = [
      [['events', 'export', '--type', 'BAD TYPE!'], /^otp-shield: --type: not an event type: "BAD TYPE!"/],
      [['events', 'export', '--type', 'send,Check'], /^otp-shield: --type: not an event type: "Check"/],
      [['events', 'export', '--from', '2026-11-24', '--to', '2026-11-23'], /^otp-shield: --from \(2026-11-24\) must be before --to \(2026-11-23\)/],
      [['events', 'export', '--from', '2026-11-23T08:00:00Z', '--to', '2026-11-23T08:00:00Z'], /^otp-shield: --from .* must be before --to/],
    ];
    const [good, ...runs] = await Promise.all([
      cli(dir, ['events', 'export', '--type', 'send,check,quarantine.start,throttle.tightened', '--from', '2026-11-23', '--to', '2026-11-24']),
      ...cases.map(([args]) => cli(dir, args)),
    ]);
    assert.equal(good!.code, 0, good!.stderr);
    assert.match(good!.stderr, /exported 0 events/);
    // Epoch milliseconds, as GET /v1/admin/events takes them.
    const epoch = await cli(dir, ['events', 'export', '--from', String(Date.parse('2026-11-23T00:00:00Z')), '--to', String(Date.parse('2026-11-24T00:00:00Z'))]);
    assert.equal(epoch.code, 0, epoch.stderr);
    runs.forEach((r, i) => assertOneLine(r, cases[i]![1], cases[i]![0].join(' ')));
  });

  it('formatCliError: usage and file-system errors are one line, anything else keeps its stack', () => {
    assert.equal(formatCliError(new ConfigError('bad option')), 'bad option');
    const fsErr = Object.assign(new Error("EISDIR: illegal operation on a directory, read"), { code: 'EISDIR', errno: -21, syscall: 'read' });
    assert.ok(isFileSystemError(fsErr));
    assert.equal(formatCliError(fsErr), 'EISDIR: illegal operation on a directory, read');
    const bug = new TypeError('x is undefined');
    assert.equal(formatCliError(bug), bug.stack);
    assert.match(formatCliError(bug), /\n\s+at /);
    // A code alone (no syscall) is not a file-system error: it keeps its stack.
    const coded = Object.assign(new Error('odd'), { code: 'ENOENT' });
    assert.equal(isFileSystemError(coded), false);
    assert.equal(formatCliError(coded), coded.stack);
  });
  it('config check refuses what serve would refuse, in one line naming the key', async () => {
    const dir = fresh('cfgcheck');
    const cases: [string, RegExp][] = [
      ['senders:\n  - type: webhook\n    url: http://127.0.0.1:9/x\n    secret: short\n', /invalid configuration at "senders": sender "webhook": secret must be at least 16 characters/],
      ['testNumbers:\n  - number: "+44 7700 900123"\n    code: "424242"\n', /invalid configuration at "testNumbers": \+44 7700 900123 is not a valid number/],
      ['testNumbers:\n  - number: "qa@@example.com"\n    code: "424242"\n', /invalid configuration at "testNumbers": qa@@example\.com is not a valid email address/],
      ['templates:\n  en: "hello"\n', /invalid configuration at "templates": .*\{code\}/],
      ['server:\n  trustedProxies: [garbage]\n', /invalid configuration at "server\.trustedProxies": invalid CIDR "garbage"/],
      ['admin:\n  ipAllowlist: [zzz]\n', /invalid configuration at "admin\.ipAllowlist": invalid CIDR "zzz"/],
      ['captcha:\n  provider: nope\n  secret: s\n', /invalid configuration at "captcha\.provider"/],
    ];
    for (const [yaml, re] of cases) {
      writeFileSync(join(dir, 'otp-shield.yaml'), yaml);
      assertOneLine(await cli(dir, ['config', 'check']), re, yaml);
    }
    writeFileSync(join(dir, 'otp-shield.yaml'), 'testNumbers:\n  - number: "+44 7400 123456"\n    code: "424242"\n');
    const ok = await cli(dir, ['config', 'check']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration is valid/);
    assert.match(ok.stdout, /metrics side port: +off/);
  });
  it('a reader that closes the pipe early (otp-shield … | head) ends the command quietly, rc 0', async () => {
    const dir = fresh('epipe');
    const { spawn } = await import('node:child_process');
    const env: NodeJS.ProcessEnv = { ...process.env, OTPSHIELD_DATA_DIR: dir, NODE_ENV: 'test' };
    delete env.NODE_TEST_CONTEXT;
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), new URL('../../src/cli/main.ts', import.meta.url).pathname, 'config', 'check'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // closed before the command writes anything
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
});
