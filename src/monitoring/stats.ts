/**
 * Stats from hourly documents (pure): totals plus rows grouped by country, prefix, channel, reason, sender or hour.
 *
 * Definitions (docs/monitoring.md):
 * - conversion = approved / verifications started (first sends), null when nothing was started;
 * - deliveryRate = delivered / (delivered + undelivered + failed receipts), null without receipts;
 * - spend = price × messages sent; unverifiedSpend = spend − spend of verifications approved in the range
 *   (codes sent but never, or not yet, verified);
 * - savings = price × requests blocked or tarpitted (what they would have cost).
 */
import { CELL_FIELDS, type Cell, type HourDoc } from './aggregate.ts';
import { fromMicros } from './prices.ts';

export const GROUP_BY = ['country', 'prefix', 'channel', 'reason', 'sender', 'hour'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export interface StatsNumbers {
  requests: number;
  allowed: number;
  challenged: number;
  blocked: number;
  tarpitted: number;
  sends: number;
  verifications: number;
  approved: number;
  conversion: number | null;
  deliveryFailures: number;
  receipts: { delivered: number; undelivered: number; failed: number };
  deliveryRate: number | null;
  spend: number;
  unverifiedSpend: number;
  savings: number;
}

/**
 * A row. Rows by `sender` have no approvals or failed deliveries (an approval is of a verification, whose
 * messages may have left through several senders; a failed delivery may have tried several): those figures,
 * and what is computed from them, are null there rather than a misleading 0.
 */
export interface StatsRow extends Omit<StatsNumbers, 'approved' | 'conversion' | 'unverifiedSpend' | 'deliveryFailures'> {
  approved: number | null;
  conversion: number | null;
  unverifiedSpend: number | null;
  deliveryFailures: number | null;
  key: string;
  /** Blocked + tarpitted by reason: in totals and in `hour` rows. */
  blocksByReason?: Record<string, number>;
}

export interface StatsResult {
  from: string;
  to: string;
  groupBy: GroupBy | null;
  currency: string;
  totals: StatsNumbers & { blocksByReason: Record<string, number>; checks: Record<string, number> };
  rows: StatsRow[];
  /** Rows left out by `limit` (groups are sorted by requests, then sends, then key). */
  omitted: number;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 10_000) / 10_000 : null);

export function numbers(c: Cell): StatsNumbers {
  const g = (k: (typeof CELL_FIELDS)[number]) => c[k] ?? 0;
  const receipts = { delivered: g('dlv'), undelivered: g('undl'), failed: g('rfail') };
  const receiptTotal = receipts.delivered + receipts.undelivered + receipts.failed;
  return {
    requests: g('req'),
    allowed: g('allow'),
    challenged: g('chal'),
    blocked: g('block'),
    tarpitted: g('tarpit'),
    sends: g('sent'),
    verifications: g('ver'),
    approved: g('appr'),
    conversion: ratio(g('appr'), g('ver')),
    deliveryFailures: g('dfail'),
    receipts,
    deliveryRate: ratio(receipts.delivered, receiptTotal),
    spend: fromMicros(g('spend')),
    unverifiedSpend: fromMicros(Math.max(0, g('spend') - g('vspend'))),
    savings: fromMicros(g('save')),
  };
}

function add(into: Cell, from: Cell): void {
  for (const k of CELL_FIELDS) {
    const v = from[k];
    if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
  }
}

function blocksByReason(reasons: Record<string, Cell>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [r, c] of Object.entries(reasons)) {
    const n = (c.block ?? 0) + (c.tarpit ?? 0);
    if (n > 0) out[r] = n;
  }
  return out;
}

export function computeStats(
  docs: HourDoc[],
  q: { from: number; to: number; groupBy: GroupBy | null; currency: string; limit: number },
): StatsResult {
  const total: Cell = {};
  const allReasons: Record<string, Cell> = {};
  const checks: Record<string, number> = {};
  for (const d of docs) {
    add(total, d.total);
    for (const [r, c] of Object.entries(d.reasons)) add((allReasons[r] ??= {}), c);
    for (const [k, n] of Object.entries(d.checks)) checks[k] = (checks[k] ?? 0) + n;
  }

  let rows: StatsRow[] = [];
  if (q.groupBy === 'hour') {
    // Every hour of the range, zeros included, so charts get an evenly spaced series.
    const byHour = new Map(docs.map((d) => [d.hour, d]));
    for (let h = Math.floor(q.from / 3_600_000) * 3_600_000; h < q.to; h += 3_600_000) {
      const d = byHour.get(h);
      rows.push({ key: new Date(h).toISOString(), ...numbers(d?.total ?? {}), blocksByReason: d ? blocksByReason(d.reasons) : {} });
    }
  } else if (q.groupBy) {
    const field = ({ country: 'countries', prefix: 'prefixes', channel: 'channels', reason: 'reasons', sender: 'senders' } as const)[q.groupBy];
    const groups: Record<string, Cell> = {};
    for (const d of docs) for (const [k, c] of Object.entries(d[field] ?? {})) add((groups[k] ??= {}), c);
    const unknown = q.groupBy === 'sender' ? ({ approved: null, conversion: null, unverifiedSpend: null, deliveryFailures: null } as const) : {};
    rows = Object.entries(groups).map(([key, c]) => ({ key, ...numbers(c), ...unknown }));
    const weight = (r: StatsRow) => (q.groupBy === 'reason' ? r.blocked + r.tarpitted + r.challenged : r.requests + r.sends);
    rows.sort((a, b) => weight(b) - weight(a) || b.spend - a.spend || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
  const omitted = q.groupBy === 'hour' ? 0 : Math.max(0, rows.length - q.limit);
  if (q.groupBy !== 'hour') rows = rows.slice(0, q.limit);

  return {
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    groupBy: q.groupBy,
    currency: q.currency,
    totals: { ...numbers(total), blocksByReason: blocksByReason(allReasons), checks },
    rows,
    omitted,
  };
}
