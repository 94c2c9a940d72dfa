/**
 * A quarantine's end is recorded when it happens, not when the next request to its scope happens to come:
 * each instance's timer looks for ended quarantines every minute, also those it never saw (a restart, after
 * which the quarantine's own setting has lapsed). Real HTTP server on SQLite; the service clock is the test's.
 */
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, testClock, type TestApp } from '../helpers/app.ts';
import { END_CHECK_MS, pumpingDefenseOf } from '../../src/service/pumping.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const MIN = 60_000;
type EndEvent = { at: string; reasons: string[]; data: { scope: string; since: number; until: number; endedAt: number } };

async function ends(t: TestApp): Promise<EndEvent[]> {
  const r = await t.request('GET', '/v1/admin/events?type=quarantine.end', undefined, { key: t.adminKey });
  assert.equal(r.status, 200, r.text);
  return r.body.events as EndEvent[];
}

async function quarantine(t: TestApp, scope: string, minutes: number): Promise<void> {
  const r = await t.request('POST', '/v1/admin/quarantines', { scope, minutes, mode: 'challenge' }, { key: t.adminKey });
  assert.equal(r.status, 201, r.text);
}

describe('quarantine ends', () => {
  it('with no traffic to the scope, the timer records the end within a minute, ended at its `until`', async () => {
    // Only setInterval is mocked (the servers' own timers start at listen), so the test moves it by hand.
    mock.timers.enable({ apis: ['setInterval'] });
    let t: TestApp | undefined;
    try {
      t = await startTestApp();
      await quarantine(t, 'country:PH', 5);
      t.clock.advance(5 * MIN + 30_000);
      assert.deepEqual(await ends(t), [], 'not recorded before the timer runs');
      mock.timers.tick(END_CHECK_MS);
      let got: EndEvent[] = [];
      for (let i = 0; i < 200 && got.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
        got = await ends(t);
      }
      assert.equal(got.length, 1, 'the end is recorded without any send');
      assert.deepEqual(got[0]!.reasons, ['expired']);
      assert.equal(got[0]!.data.scope, 'country:PH');
      assert.equal(got[0]!.data.endedAt, got[0]!.data.until, 'it ended at its until, not when it was noticed');
      mock.timers.tick(END_CHECK_MS);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await ends(t)).length, 1, 'recorded once');
    } finally {
      mock.timers.reset();
      await t?.close();
    }
  });

  it('a new quarantine of a scope whose last one ran out unrecorded does not swallow that end', async () => {
    const t = await startTestApp();
    try {
      await quarantine(t, 'country:PH', 5);
      t.clock.advance(6 * MIN); // ran out; nothing has recorded its end yet
      await quarantine(t, 'country:PH', 30); // e.g. the detector fires again on the first send after it
      await pumpingDefenseOf(t.ctx)!.endExpired(t.clock(), true);
      const got = await ends(t);
      assert.equal(got.length, 1, JSON.stringify(got));
      assert.deepEqual(got[0]!.reasons, ['expired']);
      assert.equal(got[0]!.data.until - got[0]!.data.since, 5 * MIN, 'the first one');
    } finally {
      await t.close();
    }
  });

  it('on a memory store (one process: the replay, tests) too, a replaced quarantine that ran out gets its end', async () => {
    const clock = testClock();
    const t = await startTestApp({ store: new MemoryStore({ clock }), clock });
    try {
      await quarantine(t, 'country:PH', 5);
      t.clock.advance(6 * MIN);
      await quarantine(t, 'country:PH', 30);
      const got = await ends(t);
      assert.deepEqual(got.map((e) => [e.reasons[0], e.data.until - e.data.since]), [['expired', 5 * MIN]]);
    } finally {
      await t.close();
    }
  });

  it('after a restart, a quarantine whose setting lapsed meanwhile still gets its end (and a lifted one no second one)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otps-qend-'));
    const clock = testClock();
    try {
      const first = await startTestApp({ keepDataDir: dir, clock });
      await quarantine(first, 'prefix:+62896', 10);
      await quarantine(first, 'country:NG', 10);
      const lift = await first.request('DELETE', `/v1/admin/quarantines/${encodeURIComponent('country:NG')}`, undefined, { key: first.adminKey });
      assert.equal(lift.status, 200, lift.text);
      await first.close();

      clock.advance(30 * MIN); // down for half an hour: the quarantine's setting (10 min TTL) is gone
      const second = await startTestApp({ keepDataDir: dir, clock });
      try {
        assert.deepEqual((await second.request('GET', '/v1/admin/quarantines', undefined, { key: second.adminKey })).body.quarantines, []);
        const defense = pumpingDefenseOf(second.ctx)!;
        await defense.endExpired(clock(), true);
        await defense.endExpired(clock(), true);
        const got = await ends(second);
        const byScope = Object.fromEntries(got.map((e) => [e.data.scope, e]));
        assert.equal(got.length, 2, JSON.stringify(got));
        assert.deepEqual(byScope['country:NG']?.reasons, ['lifted']);
        assert.deepEqual(byScope['prefix:+62896']?.reasons, ['expired']);
        assert.equal(byScope['prefix:+62896']!.data.endedAt, byScope['prefix:+62896']!.data.until);
        assert.equal(Date.parse(byScope['prefix:+62896']!.at), clock(), 'recorded when it was found');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
