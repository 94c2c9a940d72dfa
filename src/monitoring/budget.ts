/**
 * Daily spend counters and the budget circuit breaker.
 *
 * Every sent message adds its price (micro-units) to two store counters, `mon:spend:<day>:total` and
 * `mon:spend:<day>:c:<CC>`, in one atomic `consumeLimits` call that shares the round trip of the send's other
 * after-send writes, with or without a budget (a budget set during the day sees the whole day). Store
 * counters are shared by all instances and exact: the spend the alerts, the stats and the breaker see is the
 * fleet's, not one instance's share.
 *
 * The budget itself is enforced before a message leaves: each send reserves its price in the send's atomic
 * limits step (`reservationSpec`, the counter `mon:reserved:<day>:c:<CC>`), which refuses the message that
 * would take the country past its budget, exactly, across instances and concurrent requests (a multi-instance
 * review measured 16 times the budget sent when the breaker acted only after each send, through a pause the
 * other instances saw a second later). Reservations count messages that then fail to go out too: the budget
 * errs on the side of sending less.
 *
 * When a country's spend reaches its budget, or its budget refuses a send, the breaker pauses sends to it
 * (`pause:country:XX`) until the end of the UTC day, once per country and day across the fleet (a one-time
 * mark, taken before the pause is written, so exactly one pause and one alert): the pause is what the
 * dashboard, the alert and `pauses` show. If an admin resumes the country by hand (`breaker-off:XX`, written by
 * the resume), its budget refuses nothing more that day.
 */
import type { LimitSpec, Store } from '../store/interface.ts';
import type { MonitoringPolicy } from './config.ts';
import { countryBudgetMicros } from './prices.ts';
import { pauseSends } from './pause.ts';
import { utcDay, type SpendSnapshot } from './alerts.ts';

const DAY_MS = 86_400_000;
/** Counters must never deny: the limit is far above any spend (1e9 currency units). */
const NO_LIMIT = 1e15;

/** The reason a send refused by its country's budget carries (a block, like a pause: 403). */
export const BUDGET_REASON = 'budget.country';

/**
 * One message's price reserved against its country's budget today, for the send's limits step. Counted
 * whether or not a budget is set (a budget set during the day then sees the day's reservations); it refuses
 * only with a budget, the breaker on, and no admin resume today (`breakerOff`). Null without a price or a
 * country.
 */
export function reservationSpec(policy: MonitoringPolicy, o: { country: string | null; priceMicros: number; now: number; breakerOff: boolean }): LimitSpec | null {
  if (o.priceMicros <= 0 || !o.country || !/^[A-Z]{2}$/.test(o.country)) return null;
  const budget = countryBudgetMicros(policy.budgets, o.country);
  const limit = budget !== null && policy.budgets.circuitBreaker && !o.breakerOff ? budget : NO_LIMIT;
  return { reason: BUDGET_REASON, key: `mon:reserved:${utcDay(o.now)}:c:${o.country}`, limit, windowMs: 2 * DAY_MS, cost: o.priceMicros };
}

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
  return { snapshot, trip: await tripBreaker(store, policy, { country, spendMicros: countryMicros, now: o.now, ...(o.by !== undefined ? { by: o.by } : {}) }) };
}

/**
 * Pause a country whose budget is spent, until the end of the UTC day: once per country and day, fleet-wide.
 * The day's mark is taken first, atomically, so that of the sends and instances that reach the budget at the
 * same moment one writes the pause and reports the trip (a review counted 8 pauses and `pause` events for one
 * trip when the mark came after the pause). A pause write that fails gives the mark back, so the next send over
 * the budget tries again (meanwhile the budget refuses every send over it: `reservationSpec`). Returns the
 * trip when this call made it, else null.
 */
export async function tripBreaker(
  store: Store,
  policy: MonitoringPolicy,
  o: { country: string; spendMicros: number; now: number; by?: string },
): Promise<BreakerTrip | null> {
  const budget = countryBudgetMicros(policy.budgets, o.country);
  if (budget === null || !policy.budgets.circuitBreaker) return null;
  const day = utcDay(o.now);
  const until = endOfUtcDay(o.now);
  // A fixed window, as for the spend counters (the day is in the key): a window recomputed to midnight on each
  // call shrank through the day, and a later read no longer reached back to the mark.
  const tripped: LimitSpec = { reason: 'breaker', key: `mon:breaker:${day}:${o.country}`, limit: 1, windowMs: 2 * DAY_MS };
  if (!(await store.consumeLimits([tripped], o.now)).allowed) return null;
  try {
    await pauseSends(store, { kind: 'country', country: o.country }, {
      now: o.now,
      by: o.by ?? 'budget',
      ttlMs: until - o.now,
      note: `daily budget of ${budget / 1e6} ${policy.prices.currency} reached (spent ${o.spendMicros / 1e6})`,
    });
  } catch (err) {
    // The mark goes back, so that the next send over the budget writes the pause (and its alert) instead.
    await store.resetLimits([tripped.key]).catch(() => {});
    throw err;
  }
  return { country: o.country, spendMicros: o.spendMicros, budgetMicros: budget, until };
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
