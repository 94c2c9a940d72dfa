/**
 * Bucketed sliding window: the rate-limit algorithm of every store.
 *
 * Why this one (docs/rate-limits.md has the long form):
 * - A fixed window lets 2× the limit through across a window edge; a token bucket (GCRA) lets
 *   `limit` through at once and then refills, so "3 per 10 minutes" would allow 5 in some 10 minutes.
 *   Users read "3 per 10 minutes" literally, and so do we: **at most `limit` events in any interval
 *   of length `windowMs`**, exactly, also under concurrency (the stores apply this atomically).
 * - A full sliding log is exact but stores one timestamp per event. We store counts per slot of
 *   `windowMs / SLOTS` instead, and count a slot as long as any part of it overlaps the window. That is
 *   conservative: a request can be refused up to one slot (1/60 of the window: 10 s for 10 minutes)
 *   earlier than a perfect log would, never later, and `retryAfter` is exact for this rule.
 *
 * State is a short array of `[slotStart, count]`, oldest first. Pure functions, no clock.
 * `src/store/redis-scripts.ts` implements the same rule in Lua; the store contract suite checks both.
 */

export const SLOTS = 60;

export type WindowState = Array<[slotStart: number, count: number]>;

export function slotMsFor(windowMs: number): number {
  return Math.max(1, Math.ceil(windowMs / SLOTS));
}

/** Drop slots that no longer overlap the window ending at `now`. */
export function prune(state: WindowState, windowMs: number, now: number): WindowState {
  const slotMs = slotMsFor(windowMs);
  const horizon = now - windowMs;
  let i = 0;
  while (i < state.length && state[i]![0] + slotMs <= horizon) i++;
  return i === 0 ? state : state.slice(i);
}

export function countOf(state: WindowState): number {
  let n = 0;
  for (const [, c] of state) n += c;
  return n;
}

/** Milliseconds until `cost` more events fit, given a pruned state. */
export function retryAfterMs(state: WindowState, limit: number, windowMs: number, cost: number, now: number): number {
  if (cost > limit) return windowMs;
  const slotMs = slotMsFor(windowMs);
  let total = countOf(state);
  for (const [start, c] of state) {
    if (total + cost <= limit) break;
    total -= c;
    const freeAt = start + slotMs + windowMs;
    if (total + cost <= limit) return Math.max(1, freeAt - now);
  }
  return total + cost <= limit ? 0 : windowMs;
}

/** Add `cost` events at `now` to a pruned state (mutates and returns it). */
export function add(state: WindowState, windowMs: number, cost: number, now: number): WindowState {
  const slotMs = slotMsFor(windowMs);
  const slot = Math.floor(now / slotMs) * slotMs;
  const last = state[state.length - 1];
  if (last && last[0] === slot) last[1] += cost;
  else state.push([slot, cost]);
  return state;
}

/** When the state can be forgotten entirely (epoch ms): its newest slot has left the window. */
export function expiresAt(state: WindowState, windowMs: number): number {
  const last = state[state.length - 1];
  if (!last) return 0;
  return last[0] + slotMsFor(windowMs) + windowMs;
}

export interface WindowSpec {
  limit: number;
  windowMs: number;
  cost: number;
}

export interface Evaluation {
  allowed: boolean;
  /** Count before this request. */
  count: number;
  retryAfterMs: number;
}

/** Evaluate one limit against a (possibly stale) state without changing it. */
export function evaluate(state: WindowState, spec: WindowSpec, now: number): { pruned: WindowState; result: Evaluation } {
  const pruned = prune(state, spec.windowMs, now);
  const count = countOf(pruned);
  const allowed = count + spec.cost <= spec.limit;
  return {
    pruned,
    result: { allowed, count, retryAfterMs: allowed ? 0 : retryAfterMs(pruned, spec.limit, spec.windowMs, spec.cost, now) },
  };
}
