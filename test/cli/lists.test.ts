/**
 * `otp-shield lists`: the real CLI in a child process against a SQLite store in a temp data dir, plus the
 * pure helpers of its import format. One test also runs the HTTP server on the same data dir, to show an
 * entry added from the command line reaches a running server without a restart.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseImportText, parseTtl, splitCsvLine } from '../../src/cli/commands/lists.ts';
import { cli, withDatabase } from '../helpers/cli.ts';
import { startTestApp } from '../helpers/app.ts';


async function json<T = any>(dataDir: string, args: string[]): Promise<T> {
  const r = await cli(dataDir, [...args, '--json']);
  assert.equal(r.code, 0, `otp-shield ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

describe('import file parsing', () => {
  it('splits CSV records with quotes', () => {
    assert.deepEqual(splitCsvLine('number,+62 812,"ring, batch ""A""",'), ['number', '+62 812', 'ring, batch "A"', '']);
    assert.deepEqual(splitCsvLine('a'), ['a']);
    assert.equal(splitCsvLine('a,"open'), null);
  });

  it('parses durations', () => {
    assert.equal(parseTtl('7d'), 7 * 86_400_000);
    assert.equal(parseTtl('30m'), 1_800_000);
    assert.equal(parseTtl('2W'), 14 * 86_400_000);
    for (const bad of ['7', 'd', '7x', '-1d', '0d', '1.5h', '99999w']) assert.equal(parseTtl(bad), null, bad);
  });

  it('recognises the CSV header in any column order, else one value per line', () => {
    const csv = parseImportText('\ufeff# exported\r\nValue,Kind,expires_at\r\n+6281234567001,number,\r\n\r\n,ip,\r\n');
    assert.equal(csv.format, 'csv');
    assert.deepEqual(csv.rows, [{ line: 3, kind: 'number', value: '+6281234567001', note: null, expiresAt: null }]);
    assert.deepEqual(csv.errors, [{ line: 5, message: 'empty value' }]);

    const lines = parseImportText('10.0.0.0/8\n# comment\n\n  dev#1  \n');
    assert.equal(lines.format, 'lines');
    assert.deepEqual(lines.rows.map((r) => [r.line, r.value]), [
      [1, '10.0.0.0/8'],
      [4, 'dev#1'],
    ]);

    const unknown = parseImportText('kind,value,comment\nnumber,+6281234567001,x\n');
    assert.equal(unknown.rows.length, 0);
    assert.match(unknown.errors[0]?.message ?? '', /unknown column comment/);
  });
});

describe('otp-shield lists (real CLI, SQLite in a temp data dir)', () => {
  // A fresh data dir per test, so each test sees only its own entries.
  let dir: string;
  beforeEach(async () => {
    dir = await withDatabase(mkdtempSync(join(tmpdir(), 'otps-cli-lists-')));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('add normalises the value, list shows it, remove deletes it', async () => {
    const a = await json(dir, ['lists', 'add', 'number', '+62 812-3456-7890', '--note', 'seen in a fraud ring']);
    assert.equal(a.list, 'block');
    assert.equal(a.kind, 'number');
    assert.equal(a.value, '+6281234567890');
    assert.equal(a.note, 'seen in a fraud ring');
    assert.equal(a.expiresAt, null);

    const before = Date.now();
    const b = await json(dir, ['lists', 'add', 'ip', ' 2001:DB8:0:0::1 ', '--allow', '--ttl', '7d']);
    const after = Date.now();
    assert.equal(b.list, 'allow');
    assert.equal(b.value, '2001:db8::1');
    const exp = Date.parse(b.expiresAt);
    assert.ok(exp >= before + 7 * 86_400_000 && exp <= after + 7 * 86_400_000, b.expiresAt);

    const c = await json(dir, ['lists', 'add', 'country', 'my', '--expires', '2099-01-01T00:00:00Z']);
    assert.equal(c.value, 'MY');
    assert.equal(c.expiresAt, '2099-01-01T00:00:00.000Z');

    const all = await json<any[]>(dir, ['lists', 'list']);
    assert.deepEqual(all.map((e) => e.id).sort(), [a.id, b.id, c.id].sort());
    const human = await cli(dir, ['lists', 'list']);
    assert.match(human.stdout, new RegExp(`${a.id}\\s+block\\s+number\\s+\\+6281234567890.*seen in a fraud ring`));

    const rm = await cli(dir, ['lists', 'remove', a.id]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, new RegExp(`removed ${a.id}`));
    const left = await json<any[]>(dir, ['lists', 'list']);
    assert.deepEqual(left.map((e) => e.id).sort(), [b.id, c.id].sort());
    const again = await cli(dir, ['lists', 'remove', a.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no such list entry/);
  });

  it('refuses bad input with a message and exit code 1, writing nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['lists', 'add', 'number', 'not a number'], /not a valid phone number/],
      [['lists', 'add', 'planet', 'mars'], /unknown kind "planet"/],
      [['lists', 'add', 'ip', '1.2.3.4', '--ttl', '7d', '--expires', '2099-01-01'], /either --ttl or --expires/],
      [['lists', 'add', 'ip', '1.2.3.4', '--ttl', '7x'], /not a duration/],
      [['lists', 'add', 'ip', '1.2.3.4', '--expires', '2001-01-01T00:00:00Z'], /in the future/],
      [['lists', 'list', '--list', 'maybe'], /block or allow/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(dir, args)));
    results.forEach((r, i) => {
      const [args, message] = cases[i]!;
      assert.equal(r.code, 1, `${args.join(' ')} → ${r.stdout}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'a message, not a stack trace');
    });
    assert.deepEqual(await json(dir, ['lists', 'list']), []);
  });

  it('imports a CSV: reports bad lines by number, imports the rest, skips what is already listed', async () => {
    const file = join(dir, 'entries.csv');
    writeFileSync(
      file,
      [
        'kind,value,note,expiresAt', // 1
        'number,+62 812 3456 7001,"ring, batch 1",', // 2
        'cidr,203.0.113.0/24,,2099-01-01T00:00:00Z', // 3
        'number,12345,,', // 4: not a number
        'planet,mars,,', // 5: unknown kind
        'country,id,,', // 6
        '', // 7
        '# a comment', // 8
        'ip,198.51.100.7,"unterminated', // 9: quotes
        'device,dev-1,,yesterday', // 10: bad date
        ',+62 812 3456 7002,,', // 11: no kind and no --kind
        'ip,198.51.100.8,a,b,c', // 12: too many fields
      ].join('\n'),
    );
    const r = await cli(dir, ['lists', 'import', file, '--json']);
    assert.equal(r.code, 1, 'exit code 1 when a line was rejected');
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.imported.map((e: any) => [e.kind, e.value, e.note]), [
      ['number', '+6281234567001', 'ring, batch 1'],
      ['cidr', '203.0.113.0/24', null],
      ['country', 'ID', null],
    ]);
    assert.equal(report.imported[1].expiresAt, '2099-01-01T00:00:00.000Z');
    assert.deepEqual(report.errors.map((e: any) => e.line), [4, 5, 9, 10, 11, 12]);
    assert.match(report.errors[0].message, /not a valid phone number/);
    assert.match(report.errors[1].message, /unknown kind/);
    assert.match(report.errors[4].message, /no kind/);
    const listed = await json<any[]>(dir, ['lists', 'list', '--list', 'block']);
    assert.equal(listed.length, 3);

    // Human output names file:line for each rejected line; a second import adds nothing.
    const again = await cli(dir, ['lists', 'import', file, '--kind', 'number']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: `));
    assert.doesNotMatch(again.stderr, /:11: /, 'with --kind, the row without a kind is a number');
    assert.match(again.stdout, /imported 1, skipped 3 already listed, rejected 5 lines/);
    assert.equal((await json<any[]>(dir, ['lists', 'list', '--list', 'block'])).length, 4);
  });

  it('imports one value per line with --kind, into the allow list', async () => {
    const file = join(dir, 'cidrs.txt');
    writeFileSync(file, '2001:db8:1::/48\n10.0.0.0/8\nnot-a-cidr\n\n# comment\n192.0.2.0/33\n');
    const noKind = await cli(dir, ['lists', 'import', file]);
    assert.equal(noKind.code, 1);
    assert.match(noKind.stderr, /needs --kind/);
    assert.deepEqual(await json(dir, ['lists', 'list', '--list', 'allow']), [], 'nothing imported without a kind');

    const r = await cli(dir, ['lists', 'import', file, '--kind', 'cidr', '--allow', '--ttl', '1d', '--json']);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.imported.map((e: any) => [e.list, e.value]), [
      ['allow', '2001:db8:1::/48'],
      ['allow', '10.0.0.0/8'],
    ]);
    assert.ok(report.imported.every((e: any) => e.expiresAt !== null));
    assert.deepEqual(report.errors.map((e: any) => e.line), [3, 6]);
    const allows = await json<any[]>(dir, ['lists', 'list', '--list', 'allow', '--kind', 'cidr']);
    assert.equal(allows.length, 2);
  });
});

describe('an entry added by the CLI reaches a running server', () => {
  it('blocks the next send within the refresh interval, and removing it unblocks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otps-cli-live-'));
    const t = await startTestApp({ keepDataDir: dir });
    try {
      const to = '+6281234567301';
      const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });
      const first = await t.request('POST', '/v1/verifications', { to, client: client('36.72.30.1') });
      assert.equal(first.status, 201, first.text);

      const added = await json(dir, ['lists', 'add', 'number', to, '--note', 'from the CLI']);
      // Instances reload lists when their snapshot is older than a second (by the server's own clock).
      t.clock.advance(1_001);
      const blocked = await t.request('POST', '/v1/verifications', { to, client: client('36.72.30.2') });
      assert.equal(blocked.status, 403, blocked.text);
      assert.equal(blocked.body.error.code, 'request_blocked');
      assert.deepEqual(blocked.body.error.reasons, ['list.block']);

      assert.equal((await cli(dir, ['lists', 'remove', added.id])).code, 0);
      t.clock.advance(31_000); // past the resend cooldown of the first send
      const again = await t.request('POST', '/v1/verifications', { to, client: client('36.72.30.3') });
      assert.equal(again.status, 201, again.text);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
