/**
 * Daily spend counters and the budget circuit breaker.
 *
 * When any budget is configured, every sent message adds its price (micro-units) to two store counters,
 * `mon:spend:<day>:total` and `mon:spend:<day>:c:<CC>`, in one atomic `consumeLimits` call. Store counters
 * are shared by all instances and exact, so the breaker trips on the real fleet-wide spend, not on one
 * instance's share. Without budgets nothing is counted here (no extra store call per send).
 *
 * When a country's spend today reaches its budget the breaker pauses sends to it (`pause:country:XX`) until
 * the end of the UTC day, once per country and day across the fleet (a one-time token): if an admin resumes
 * the country by hand, that decision stands for the rest of the day.
 */
import type { LimitSpec, Store } from '../store/interface.ts';
import type { MonitoringPolicy } from './config.ts';
import { countryBudgetMicros } from './prices.ts';
import { pauseSends } from './pause.ts';
import { utcDay, type SpendSnapshot } from './alerts.ts';

const DAY_MS = 86_400_000;
/** Counters must never deny: the limit is far above any spend (1e9 currency units). */
const NO_LIMIT = 1e15;

export function endOfUtcDay(at: number): number {
  return Math.floor(at / DAY_MS) * DAY_MS + DAY_MS;
}

export interface BreakerTrip {
  country: string;
  spendMicros: number;
  budgetMicros: number;
  until: number;
}

export interface SpendOutcome {
  snapshot: SpendSnapshot;
  trip: BreakerTrip | null;
}

/**
 * Add one message's price to today's counters. Returns the counts after it and, when this send made the
 * country reach its budget (first time today, fleet-wide), the trip that was executed.
 */
export async function recordSpend(
  store: Store,
  policy: MonitoringPolicy,
  o: { country: string | null; priceMicros: number; now: number; by?: string },
): Promise<SpendOutcome | null> {
  const b = policy.budgets;
  // Counted with or without a budget: a budget set in the middle of a day must see the day's spend so far.
  // (The call shares the round trip of the send's other after-send writes.)
  if (o.priceMicros <= 0) return null;
  const day = utcDay(o.now);
  const window = 2 * DAY_MS; // the day is in the key; the window only has to cover it
  const specs: LimitSpec[] = [{ reason: 'spend.total', key: `mon:spend:${day}:total`, limit: NO_LIMIT, windowMs: window, cost: o.priceMicros }];
  const country = o.country && /^[A-Z]{2}$/.test(o.country) ? o.country : null;
  if (country) specs.push({ reason: 'spend.country', key: `mon:spend:${day}:c:${country}`, limit: NO_LIMIT, windowMs: window, cost: o.priceMicros });
  const out = await store.consumeLimits(specs, o.now);
  const totalMicros = out.counts[0] ?? 0;
  const countryMicros = country ? (out.counts[1] ?? 0) : 0;
  const snapshot: SpendSnapshot = { day, totalMicros, countries: new Map(country ? [[country, countryMicros]] : []) };

  const budget = country ? countryBudgetMicros(b, country) : null;
  if (!country || budget === null || !b.circuitBreaker || countryMicros < budget) return { snapshot, trip: null };
  const until = endOfUtcDay(o.now);
  // Once per country and day, fleet-wide: an admin who resumes a tripped country keeps it open until midnight.
  // The mark is taken after the pause is written, so a store failure at the moment of tripping leaves the
  // next send over budget to trip it (taken first, one failed pause write switched the breaker off for the
  // rest of the day). Instances tripping at the same moment may each write the pause (and its event); one
  // takes the mark and reports the trip.
  // A fixed window, as for the spend counters (the day is in the key): a window recomputed to midnight on each
  // call shrank through the day, and a later read no longer reached back to the mark.
  const tripped: LimitSpec = { reason: 'breaker', key: `mon:breaker:${day}:${country}`, limit: 1, windowMs: window };
  if (((await store.peekLimits([tripped], o.now))[0] ?? 0) >= 1) return { snapshot, trip: null };
  await pauseSends(store, { kind: 'country', country }, {
    now: o.now,
    by: o.by ?? 'budget',
    ttlMs: until - o.now,
    note: `daily budget of ${budget / 1e6} ${policy.prices.currency} reached (spent ${countryMicros / 1e6})`,
  });
  if (!(await store.consumeLimits([tripped], o.now)).allowed) return { snapshot, trip: null };
  return { snapshot, trip: { country, spendMicros: countryMicros, budgetMicros: budget, until } };
}

/** Today's counters without adding to them (dashboard, alerts after a restart). */
export async function spendToday(store: Store, countries: string[], now: number): Promise<SpendSnapshot> {
  const day = utcDay(now);
  const specs: LimitSpec[] = [
    { reason: 'spend.total', key: `mon:spend:${day}:total`, limit: NO_LIMIT, windowMs: 2 * DAY_MS },
    ...countries.map((c) => ({ reason: 'spend.country', key: `mon:spend:${day}:c:${c}`, limit: NO_LIMIT, windowMs: 2 * DAY_MS })),
  ];
  const counts = await store.peekLimits(specs, now);
  return { day, totalMicros: counts[0] ?? 0, countries: new Map(countries.map((c, i) => [c, counts[i + 1] ?? 0])) };
}
