/**
 * SQLite batches the writes of one event-loop turn and makes them durable at the group commit's fdatasync
 * after it; until then they are visible to this process's reads. A read that answers the outside world
 * waits for that flush, so nobody is told of a state a crash could still take back
 * (Store.settled; docs/security.md). The flush is held here by an injected fdatasync.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { startTestApp } from '../helpers/app.ts';

const TO = '+6281234567890';
const client = { ip: '36.72.10.5', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };

describe('reads that answer clients wait for the disk (SQLite)', () => {
  it('GET /v1/verifications/{id} does not report an approval before it is on disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otps-readdur-'));
    let hold = false;
    let id = '';
    const held: (() => void)[] = [];
    // Held: the flush that would make the approval durable (the check's journal entry is flushed before it).
    const approvedInFile = () => id !== '' && store.db.prepare('SELECT status FROM verifications WHERE id = ?').pluck().get(id) === 'approved';
    const store: SqliteStore = new SqliteStore(join(dir, 'otp-shield.db'), {
      fdatasync: (fd, cb) => (hold && approvedInFile() ? held.push(() => cb(null)) : setImmediate(() => cb(null))),
    });
    const t = await startTestApp({ store });
    try {
      const sent = await t.request('POST', '/v1/verifications', { to: TO, channel: 'sms', client });
      assert.equal(sent.status, 201, sent.text);
      id = sent.body.id as string;
      hold = true;
      let checked: { status: number; body: any } | null = null;
      const check = t.request('POST', '/v1/verifications/check', { id, code: t.lastCode(TO) }).then((r) => (checked = r));
      for (let i = 0; i < 500 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(held.length > 0, 'the approval waits for a flush');
      // Committed, not yet on disk: the store itself already reads it as approved.
      assert.equal((await store.getVerification(id))?.status, 'approved');
      let read: { status: number; body: any } | null = null;
      const get = t.request('GET', `/v1/verifications/${id}`).then((r) => (read = r));
      // While the flush is held nothing may answer "approved" (the old code answered within milliseconds).
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(read, null, `answered before the approval was on disk: ${JSON.stringify(read)}`);
      assert.equal(checked, null);
      hold = false;
      for (const release of held.splice(0)) release();
      await Promise.all([check, get]);
      assert.equal(checked!.status, 200);
      assert.equal(checked!.body.status, 'approved');
      assert.equal(read!.status, 200);
      assert.equal(read!.body.status, 'approved');
      // With nothing waiting for the disk a read answers at once (no flush of its own).
      const flushes = store.flushes;
      const again = await t.request('GET', `/v1/verifications/${id}`);
      assert.equal(again.body.status, 'approved');
      assert.equal(store.flushes, flushes);
    } finally {
      hold = false;
      for (const release of held.splice(0)) release();
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
