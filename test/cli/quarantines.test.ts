/**
 * `otp-shield quarantines` and `quarantines lift <scope>`: on call, the quarantines in force and lifting one
 * without curl and an admin key (an on-call review), with the real CLI in a child process on the data dir of a
 * running server (SQLite).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from '../helpers/cli.ts';
import { startTestApp, testClock } from '../helpers/app.ts';

describe('otp-shield quarantines', () => {
  it('lists the quarantines in force and lifts one, recorded as the API records it', async () => {
    // Real time: the CLI reads quarantines at the wall clock.
    const t = await startTestApp({ clock: testClock(Date.now()) });
    try {
      const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
      assert.equal((await admin('POST', '/v1/admin/quarantines', { scope: 'prefix:+62812', mode: 'block', minutes: 30, reason: 'drill' })).status, 201);
      const list = await cli(t.dataDir, ['quarantines']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /^prefix:\+62812\s+block\s+drill\s+until \S+ \(30 min\)/);
      const json = JSON.parse((await cli(t.dataDir, ['quarantines', '--json'])).stdout);
      assert.deepEqual(json.quarantines.map((q: { scope: string; mode: string }) => [q.scope, q.mode]), [['prefix:+62812', 'block']]);

      const lifted = await cli(t.dataDir, ['quarantines', 'lift', 'prefix:+62812']);
      assert.equal(lifted.code, 0, lifted.stderr);
      assert.match(lifted.stdout, /^lifted prefix:\+62812; no automatic quarantine of it before \S+/);
      assert.deepEqual((await admin('GET', '/v1/admin/quarantines')).body.quarantines, []);
      const [end] = (await admin('GET', '/v1/admin/events?type=quarantine.end')).body.events;
      assert.deepEqual([end.reasons, end.data.by], [['lifted'], 'cli']);

      const again = await cli(t.dataDir, ['quarantines', 'lift', 'prefix:+62812']);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /no quarantine of prefix:\+62812 is in force/);
      const bad = await cli(t.dataDir, ['quarantines', 'lift', 'everything']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /"everything" is not a quarantine scope/);
      assert.match((await cli(t.dataDir, ['quarantines'])).stdout, /^no quarantines in force/);
    } finally {
      await t.close();
    }
  });
});
