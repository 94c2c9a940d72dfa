/**
 * GET /v1/admin/stats over HTTP after real traffic: totals, grouping, spend on codes never verified and
 * estimated savings from the price table (defaults overridable), time ranges, and input validation.
 * Plus the monitoring state and alert list the dashboard reads.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { monitoringOf } from '../../src/monitoring/monitor.ts';
import { client } from './support.ts';

describe('GET /v1/admin/stats', () => {
  let t: TestApp;
  let ip = 0;
  const send = (to: string) => t.request('POST', '/v1/verifications', { to, client: client(`36.72.50.${++ip}`) });
  const stats = async (qs = '') => {
    const r = await t.request('GET', `/v1/admin/stats${qs}`, undefined, { key: t.adminKey });
    assert.equal(r.status, 200, r.text);
    return r.body;
  };

  before(async () => {
    t = await startTestApp();
    // Overridable price table: GB at 0.05 instead of the default 0.04.
    monitoringOf(t.ctx)!.setOverrides({ policy: { prices: { countries: { GB: { sms: 0.05 } } } } });
    const a = await send('+6281234560001');
    await t.request('POST', '/v1/verifications/check', { id: a.body.id, code: t.lastCode('+6281234560001') });
    await send('+6281234560002'); // never verified
    await send('+447400123401');
    await t.request('POST', '/v1/admin/pause', { country: 'NG' }, { key: t.adminKey });
    await send('+2348031234567'); // blocked: paused
    t.clock.advance(3_600_000);
    await send('+6281234560003');
  });
  after(async () => t.close());

  it('totals with conversion, spend, unverified spend and savings', async () => {
    const s = await stats();
    const x = s.totals;
    assert.equal(x.requests, 5);
    assert.equal(x.sends, 4);
    assert.equal(x.blocked, 1);
    assert.deepEqual(x.blocksByReason, { paused: 1 });
    assert.equal(x.verifications, 4);
    assert.equal(x.approved, 1);
    assert.equal(x.conversion, 0.25);
    assert.equal(x.spend, 1.25, '3 × ID 0.40 + GB 0.05');
    assert.equal(x.unverifiedSpend, 0.85);
    assert.equal(x.savings, 0.25, 'the blocked NG request at its default price');
    assert.equal(s.currency, 'USD');
    assert.deepEqual(x.checks, { approved: 1 });
  });

  it('groups by country, prefix, reason and hour', async () => {
    const c = await stats('?groupBy=country');
    assert.deepEqual(c.rows.map((r: { key: string; requests: number }) => [r.key, r.requests]), [['ID', 3], ['GB', 1], ['NG', 1]]);
    const p = await stats('?groupBy=prefix&limit=1');
    assert.deepEqual(p.rows.map((r: { key: string }) => r.key), ['+62812']);
    assert.equal(p.omitted, 2);
    const r = await stats('?groupBy=reason');
    assert.deepEqual(r.rows.map((x: { key: string; blocked: number; savings: number }) => [x.key, x.blocked, x.savings]), [['paused', 1, 0.25]]);
    // A sender's row has its sends and spend; approvals are of verifications, not of a sender: null, not a
    // conversion of 0 with every cent "never verified" (the ID row shows one approval for the same traffic).
    const bySender = await stats('?groupBy=sender');
    assert.equal(bySender.rows.length, 1);
    const w = bySender.rows[0];
    assert.deepEqual([w.key, w.sends, w.spend], ['webhook', 4, 1.25]);
    assert.deepEqual([w.approved, w.conversion, w.unverifiedSpend, w.deliveryFailures], [null, null, null, null]);
    const h = await stats('?groupBy=hour');
    assert.equal(h.rows.length, 24);
    assert.deepEqual(h.rows.slice(-2).map((x: { requests: number }) => x.requests), [4, 1]);
    assert.equal(h.rows.at(-1).key, '2026-11-23T09:00:00.000Z');
  });

  it('honours from and to', async () => {
    const s = await stats('?from=2026-11-23T09:00:00Z&to=2026-11-23T10:00:00Z');
    assert.equal(s.totals.requests, 1);
    const ms = await stats(`?from=${Date.parse('2026-11-23T08:00:00Z')}&to=${Date.parse('2026-11-23T09:00:00Z')}`);
    assert.equal(ms.totals.requests, 4);
  });

  it('refuses bad input', async () => {
    // Date.parse alone reads most of these as dates (2001, 2003); a time without a zone is ambiguous.
    // Epoch milliseconds beyond what a date can hold (8.64e15) were a 500.
    const junk = ['?to=hello%201', '?to=Tuesday%205', '?to=-5', '?to=1%2F2%2F3', '?from=1.5', '?to=2026-11-23T09:00:00', '?from=9999999999000000&to=9999999999999999', '?to=8640000000000001'];
    for (const qs of ['?groupBy=city', '?from=yesterday', '?from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z', '?from=2026-01-01T00:00:00Z', '?limit=0', ...junk]) {
      const r = await t.request('GET', `/v1/admin/stats${qs}`, undefined, { key: t.adminKey });
      assert.equal(r.status, 400, qs);
    }
    assert.equal((await t.request('GET', '/v1/admin/stats', undefined, { key: t.verifyKey })).status, 403);
  });

  it('the monitoring state lists pauses and spend against budgets', async () => {
    monitoringOf(t.ctx)!.setOverrides({ policy: { budgets: { countries: { ID: 100 } } } });
    await send('+6281234560004');
    const r = await t.request('GET', '/v1/admin/monitoring/state', undefined, { key: t.adminKey });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.pauses.map((p: { scope: string }) => p.scope), ['country:NG']);
    // The budget was set just now: the day's spend includes the 3 ID sends before it (1.20) and this one (0.40).
    assert.deepEqual(r.body.spendToday.countries, [{ country: 'ID', spend: 1.6, budget: 100 }], 'the whole day counts, also before the budget existed');
    assert.deepEqual(r.body.quarantines, []);
    const alerts = await t.request('GET', '/v1/admin/monitoring/alerts', undefined, { key: t.adminKey });
    assert.deepEqual(alerts.body, { alerts: [] });
    // A cursor beyond any sequence number is a client mistake (400), not a store error (500 on PostgreSQL and
    // Redis, found by a hostile-input review).
    for (const before of ['9223372036854775807', '1e300', 'Infinity']) {
      const r = await t.request('GET', `/v1/admin/monitoring/alerts?before=${before}`, undefined, { key: t.adminKey });
      assert.equal(r.status, 400, `${before}: ${r.text}`);
    }
    assert.equal((await t.request('GET', `/v1/admin/monitoring/alerts?before=${Number.MAX_SAFE_INTEGER}`, undefined, { key: t.adminKey })).status, 200);

    // A budget for every other country (`defaultCountry`): each country with spend today is shown against it,
    // not only those with a budget of their own (the one its breaker pauses would otherwise be missing).
    monitoringOf(t.ctx)!.setOverrides({ policy: { budgets: { countries: { NG: 50 }, defaultCountry: 100 } } });
    const d = await t.request('GET', '/v1/admin/monitoring/state', undefined, { key: t.adminKey });
    assert.deepEqual(d.body.spendToday.countries, [{ country: 'GB', spend: 0.05, budget: 100 }, { country: 'ID', spend: 1.6, budget: 100 }, { country: 'NG', spend: 0, budget: 50 }]);
  });
});
