/**
 * Admin read APIs of the monitoring layer: stats (cost analytics), the live protective state (pauses,
 * quarantines, throttles, spend against budgets) and recent alerts. (Event search is `GET /v1/admin/events`.)
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import type { EventQuery } from '../../store/interface.ts';
import { ApiError } from '../../service/errors.ts';
import { monitoringOf } from '../../monitoring/monitor.ts';
import { GROUP_BY, type GroupBy } from '../../monitoring/stats.ts';
import { listPauses } from '../../monitoring/pause.ts';
import { spendToday } from '../../monitoring/budget.ts';
import { countryBudgetMicros, fromMicros } from '../../monitoring/prices.ts';
import { authenticate } from '../auth.ts';
import { errorResponses, Loose, NoQuery } from '../schemas.ts';
import { inEffect } from '../../service/quarantine-view.ts';

const Stats = Type.Object(
  {
    from: Type.String({ format: 'date-time' }),
    to: Type.String({ format: 'date-time' }),
    groupBy: Type.Union([Type.String(), Type.Null()]),
    currency: Type.String(),
    totals: Loose('Requests, decisions, sends, approvals, conversion, delivery rate, spend and savings over the range (docs/monitoring.md)'),
    rows: Type.Array(Loose('The same figures for one group (country, prefix, channel, sender or hour)')),
    omitted: Type.Integer({ description: 'Groups beyond `limit`' }),
  },
  { additionalProperties: true },
);
const MonitoringState = Type.Object(
  {
    now: Type.String({ format: 'date-time' }),
    pauses: Type.Array(Loose('An active pause')),
    quarantines: Type.Array(Loose('An active SMS-pumping quarantine')),
    throttles: Type.Array(Loose('A scope whose throttling is tightened')),
    spendToday: Loose('Spend today per country against the daily budgets'),
  },
  { additionalProperties: true },
);
const Alerts = Type.Object({ alerts: Type.Array(Loose('An alert as it was dispatched (docs/monitoring.md), with its `seq` and `at`')) });
import { parseTime } from '../time.ts';
import { maskedForRead, maskedScope, seesInFull } from '../../service/read-masking.ts';

const Time = Type.String({ maxLength: 40, description: 'ISO 8601 date-time or epoch milliseconds' });

const StatsQuery = Type.Object(
  {
    from: Type.Optional(Time),
    to: Type.Optional(Time),
    groupBy: Type.Optional(Type.Union(GROUP_BY.map((g) => Type.Literal(g)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);

export function adminStatsRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function adminStats(app) {
    const mon = monitoringOf(ctx);
    if (!mon) return;
    app.addHook('preHandler', authenticate(ctx));
    // Reads need the `read` scope (admin keys have it: service/api-keys.ts grants).
    const reading = { config: { scope: 'read' as const } };
    const security = [{ apiKey: [] }];

    app.get<{ Querystring: Static<typeof StatsQuery> }>(
      '/v1/admin/stats',
      {
        ...reading,
        schema: {
          operationId: 'getStats',
          tags: ['admin', 'monitoring'],
          summary: 'Requests, sends, blocks by reason, conversion, delivery rate, spend and savings',
          description: 'Hourly resolution: an hour is counted when it overlaps [from, to). Defaults to the last 24 hours including the current one. Amounts are in the price table currency.',
          security,
          querystring: StatsQuery,
          response: { 200: Stats, ...errorResponses(400, 401, 403) },
        },
      },
      async (req) => {
        const now = ctx.clock();
        // Default: the last 24 whole hours, the current (partial) hour included.
        const to = req.query.to ? parseTime(req.query.to, 'to') : Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000;
        const from = req.query.from ? parseTime(req.query.from, 'from') : to - 86_400_000;
        if (!(from < to)) throw new ApiError('invalid_request', { message: 'from must be before to' });
        const maxDays = mon.config().stats.retentionDays;
        if (to - from > maxDays * 86_400_000) throw new ApiError('invalid_request', { message: `the range may span at most ${maxDays} days (stats retention)` });
        return mon.stats({ from, to, groupBy: (req.query.groupBy as GroupBy | undefined) ?? null, limit: req.query.limit ?? 50 });
      },
    );

    app.get(
      '/v1/admin/monitoring/state',
      { ...reading, schema: { operationId: 'getMonitoringState', tags: ['admin', 'monitoring'], summary: 'Active pauses, quarantines, throttles and spend against budgets', security, querystring: NoQuery, response: { 200: MonitoringState, ...errorResponses(401, 403) } } },
      async (req) => {
        const now = ctx.clock();
        const full = seesInFull(req.apiKey);
        await ctx.state.fresh();
        const p = mon.policy();
        const budgetCountries = await mon.budgetedCountries(now);
        const spend = await spendToday(ctx.store, budgetCountries, now);
        const iso = (t: number | null | undefined) => (typeof t === 'number' ? new Date(t).toISOString() : null);
        return {
          now: iso(now),
          pauses: (await listPauses(ctx.store, now)).map((x) =>
            full
              ? { scope: x.scope, since: iso(x.record.since), note: x.record.note, by: x.record.by, until: iso(x.record.until) }
              : { scope: maskedScope(x.scope), since: iso(x.record.since), note: maskedForRead(x.record.note), by: x.record.by, until: iso(x.record.until) },
          ),
          quarantines: [...ctx.state.quarantines]
            .filter(([, q]) => q.until > now)
            .map(([scope, q]) => ({ scope, mode: q.mode, reason: q.reason, since: iso(q.since), until: iso(q.until), inEffect: inEffect(scope, ctx.policy().limits.prefixDigits) })),
          throttles: [...ctx.state.throttles]
            .filter(([, s]) => s.tightenedSince !== null)
            .map(([scope, s]) => ({ scope, tightenedSince: iso(s.tightenedSince), baseline: s.baseline })),
          spendToday: {
            day: spend.day,
            currency: p.prices.currency,
            total: fromMicros(spend.totalMicros),
            dailyBudget: p.budgets.dailyTotal,
            countries: budgetCountries.map((c) => ({ country: c, spend: fromMicros(spend.countries.get(c) ?? 0), budget: fromMicros(countryBudgetMicros(p.budgets, c) ?? 0) })),
            circuitBreaker: p.budgets.circuitBreaker,
          },
        };
      },
    );

    app.get<{ Querystring: { limit?: number; before?: number } }>(
      '/v1/admin/monitoring/alerts',
      {
        ...reading,
        schema: {
          operationId: 'listAlerts',
          tags: ['admin', 'monitoring'],
          summary: 'Recent alerts, newest first',
          security,
          querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), before: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) }, { additionalProperties: false }),
          response: { 200: Alerts, ...errorResponses(400, 401, 403) },
        },
      },
      async (req) => {
        const q: EventQuery = { type: 'alert', order: 'desc', limit: req.query.limit ?? 50, ...(req.query.before !== undefined ? { before: req.query.before } : {}) };
        const events = await ctx.store.queryEvents(q);
        const full = seesInFull(req.apiKey);
        return { alerts: events.map((e) => ({ ...(full ? (e.data ?? {}) : maskedForRead(e.data ?? {})), seq: e.seq ?? null, at: new Date(e.at).toISOString() })) };
      },
    );
  };
}
