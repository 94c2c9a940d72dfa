/**
 * `otp-shield subject show|erase`: one person's data (GDPR access and erasure requests), with the real CLI in a
 * child process on a data dir a real server wrote to (SQLite). A privacy review found no way to answer either,
 * and erased rows still readable in the database file's free pages.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli.ts';
import { startTestApp, outcome } from '../helpers/app.ts';

const A = '+4915112345678';
const OTHER = '+4915112345699';
const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0', acceptLanguage: 'de-DE', elapsedMs: 5000 });

/** How often `s` occurs in the data dir's database files (the database, its WAL). */
function occurrences(dataDir: string, s: string): number {
  let n = 0;
  for (const f of readdirSync(dataDir).filter((x) => x.startsWith('otp-shield.db'))) n += readFileSync(join(dataDir, f)).toString('latin1').split(s).length - 1;
  return n;
}

describe('otp-shield subject', () => {
  it('shows every record naming a number, erases them (and their bytes), and records the erasure without the number', async () => {
    const t = await startTestApp();
    const dataDir = t.dataDir;
    try {
      const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
      const sent = await t.request('POST', '/v1/verifications', { to: A, client: client('84.17.30.1') });
      assert.equal(sent.status, 201, sent.text);
      const code = t.lastCode(A)!;
      assert.deepEqual(outcome((await t.request('POST', '/v1/verifications/check', { id: sent.body.id, code })).body), { status: 'approved' });
      assert.equal((await t.request('POST', '/v1/verifications', { to: OTHER, client: client('84.17.30.2') })).status, 201);
      assert.equal((await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '198.51.100.9', note: `abuse against ${A}` })).status, 201);
    } finally {
      await t.app.close();
      await t.ctx.close();
      await t.receiver.close();
    }
    assert.ok(occurrences(dataDir, A) > 0);

    const show = await cli(dataDir, ['subject', 'show', '+49 151 12345678']);
    assert.equal(show.code, 0, show.stderr);
    const found = JSON.parse(show.stdout);
    assert.equal(found.destination, A);
    assert.equal(found.found.verifications, 1);
    // The verification is handed out with its evidence, its codes without their stored hashes.
    assert.equal(found.verifications[0].client.ip, '84.17.30.1');
    assert.deepEqual(Object.keys(found.verifications[0].codes[0]).sort(), ['expiresAt', 'kid']);
    assert.ok(found.events.length >= 3, 'the send, the check and the list entry\'s event');
    assert.ok(found.events.every((e: { to?: string; type: string }) => e.to === A || e.type === 'list.add'));
    assert.deepEqual(found.listEntries.map((e: { value: string }) => e.value), ['198.51.100.9']);
    assert.ok(found.keys.some((k: string) => k.startsWith(`n:${A}`)), found.keys.join());
    assert.ok(found.keys.some((k: string) => k.startsWith(`vn:${A}`)), 'the verified-number counter');

    const refused = await cli(dataDir, ['subject', 'erase', A]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /--yes/);

    const erase = await cli(dataDir, ['subject', 'erase', A, '--yes', '--note', 'DSR-1234']);
    assert.equal(erase.code, 0, erase.stderr);
    assert.match(erase.stdout, /erased \+4915112345678: 1 verifications, \d+ events, 1 list entries/);
    const after = JSON.parse((await cli(dataDir, ['subject', 'show', A])).stdout);
    assert.deepEqual(after.found, { verifications: 0, events: 0, listEntries: 0, keys: 0, journal: 0 });
    // Not left in free pages or the WAL: the bytes are gone. The other number's stay.
    assert.equal(occurrences(dataDir, A), 0);
    assert.ok(occurrences(dataDir, OTHER) > 0);
    // The erasure is recorded, without the number.
    const events = await cli(dataDir, ['events', 'export', '--type', 'subject.erase', '--no-mask']);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /"subject\.erase"/);
    assert.match(events.stdout, /DSR-1234/);
    assert.doesNotMatch(events.stdout, /4915112345678/);
    // Each access request served, and the export in full above, is recorded with the number masked.
    const reads = await cli(dataDir, ['events', 'export', '--type', 'data.read']);
    const recorded = reads.stdout.trim().split('\n').map((l) => JSON.parse(l).data);
    assert.deepEqual(recorded.map((d: { what: string; by: string }) => [d.what, d.by]), [['subject', 'cli'], ['subject', 'cli'], ['events.export', 'cli']]);
    assert.deepEqual(recorded[0].filters, { number: '+49151*****678' });
    assert.ok(recorded[0].count >= 5, 'the records handed out');
    assert.deepEqual(recorded[1].filters, { number: '+49151*****678' });
    assert.equal(recorded[1].count, 0);
    assert.deepEqual(recorded[2].filters, { type: 'subject.erase' });

    const bad = await cli(dataDir, ['subject', 'show', 'not a number']);
    assert.notEqual(bad.code, 0);
    assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/, 'no stack trace');
    rmSync(dataDir, { recursive: true, force: true });
  });
});
