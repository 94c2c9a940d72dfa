/**
 * Real processes against one SQLite file: durability across `kill -9`, and exact counts when several
 * processes share the file.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '../../src/store/sqlite.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = path.join(root, 'test/fixtures/sqlite-writer.ts');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otps-crash-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('SQLite durability and multi-process exactness', () => {
  it('every id printed before SIGKILL is in the file afterwards', async () => {
    const file = path.join(dir, 'crash.db');
    const child = run([file, 'create']);
    let buf = '';
    let stderr = '';
    const ids: string[] = [];
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          ids.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
        // Kill mid-stream, while it keeps writing.
        if (ids.length >= 300 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => (ids.length >= 300 ? resolve() : reject(new Error(`writer exited early: ${stderr}`))));
    });
    assert.equal(await exited, 'SIGKILL');
    // Lines that arrive after the kill was sent were committed too: the data handler keeps collecting them
    // until the pipe ends (a trailing partial line stays in `buf` and is not counted).
    await new Promise<void>((r) => (child.stdout.readableEnded ? r() : child.stdout.on('end', () => r())));
    assert.ok(ids.length >= 300);

    const store = new SqliteStore(file);
    try {
      const missing: string[] = [];
      for (const id of ids) if (!(await store.getVerification(id))) missing.push(id);
      assert.deepEqual(missing, [], `${missing.length} of ${ids.length} committed ids lost`);
      const last = await store.getVerification(ids[ids.length - 1]!);
      assert.equal(last!.codes.length, 1);
    } finally {
      await store.close();
    }
  });

  it('three processes sharing one file allow exactly `limit` in total (3 x 600 requests, limit 1000)', async () => {
    const file = path.join(dir, 'shared.db');
    await new SqliteStore(file).close(); // create + migrate once up front
    const startAt = Date.now() + 2500; // after every child has loaded tsx
    const children = [0, 1, 2].map(() => run([file, 'consume', '600', '1000', String(startAt)]));
    const outputs = await Promise.all(
      children.map(
        (c) =>
          new Promise<string>((resolve, reject) => {
            let out = '';
            let err = '';
            c.stdout.on('data', (d: Buffer) => (out += d.toString()));
            c.stderr.on('data', (d: Buffer) => (err += d.toString()));
            c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child failed (${code}): ${err}`))));
          }),
      ),
    );
    const allowed = outputs.map((o) => Number(/allowed (\d+)/.exec(o)?.[1] ?? NaN));
    assert.equal(allowed.reduce((a, b) => a + b, 0), 1000, `per process: ${allowed.join(', ')}`);
    if (process.env.OTPSHIELD_TEST_VERBOSE) console.log(`# allowed per process: ${allowed.join(', ')}`);
    const store = new SqliteStore(file);
    assert.deepEqual(await store.peekLimits([{ reason: 'r', key: 'shared', limit: 1000, windowMs: 3_600_000 }], 1_700_000_000_000), [1000]);
    await store.close();
  });
});
