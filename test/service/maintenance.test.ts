import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { runMaintenance } from '../../src/service/maintenance.ts';

describe('maintenance', () => {
  it('purges events past the retention period and sweeps expired counters', async () => {
    const day = 86_400_000;
    let now = Date.parse('2026-11-01T00:00:00Z');
    const store = new SqliteStore(':memory:', { clock: () => now });
    await store.appendEvents([
      { id: 'old', at: now, type: 'send' },
      { id: 'new', at: now + 10 * day, type: 'send' },
    ]);
    await store.consumeLimits([{ reason: 'x', key: 'k1', limit: 5, windowMs: 60_000 }], now);
    now += 11 * day;
    const r = await runMaintenance({ store, clock: () => now, log: pino({ level: 'silent' }), retentionDays: 7 });
    assert.equal(r.purged, 1);
    assert.ok(r.swept >= 1, `swept ${r.swept}`);
    const left = await store.queryEvents({ limit: 10 });
    assert.deepEqual(left.map((e) => e.id), ['new']);
    await store.close();
  });
});

describe('maintenance, when the journal cannot be read', () => {
  it('still sweeps and purges', async () => {
    const day = 86_400_000;
    let now = Date.parse('2026-11-01T00:00:00Z');
    const store = new SqliteStore(':memory:', { clock: () => now });
    await store.appendEvents([{ id: 'old', at: now, type: 'send' }]);
    store.listJournal = async () => {
      throw new Error('injected: the journal is unreadable');
    };
    now += 8 * day;
    const r = await runMaintenance({ store, clock: () => now, log: pino({ level: 'silent' }), retentionDays: 7 });
    assert.equal(r.purged, 1);
    assert.equal(r.recovered, 0);
    await store.close();
  });
});

describe('maintenance, when the sweep fails', () => {
  it('still purges (a sweep that timed out after a backlog skipped the purge too)', async () => {
    const day = 86_400_000;
    let now = Date.parse('2026-11-01T00:00:00Z');
    const store = new SqliteStore(':memory:', { clock: () => now });
    await store.appendEvents([{ id: 'old', at: now, type: 'send' }]);
    store.sweep = () => {
      throw new Error('injected: canceling statement due to statement timeout');
    };
    now += 8 * day;
    const r = await runMaintenance({ store, clock: () => now, log: pino({ level: 'silent' }), retentionDays: 7 });
    assert.equal(r.purged, 1);
    assert.equal(r.swept, 0);
    await store.close();
  });
});
