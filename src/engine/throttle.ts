/**
 * Dynamic throttling: each scope (global, a country, a number prefix) keeps a baseline of its request
 * rate — an exponentially weighted moving average of its 10-minute request count, sampled at most once a
 * minute — and tightens when the current count runs far above it:
 *
 *   tighten when count > max(floor, factor × baseline)
 *   relax   when count < max(floor, relaxFactor × baseline) and it has been tightened ≥ minTightenedMinutes
 *
 * While a scope is tightened its baseline is frozen, so an attack does not teach the baseline that the attack
 * is normal. Tightened means "challenge every send of this scope and raise proof-of-work difficulty" — never
 * block: a legitimate surge (a campaign) is slowed by a challenge a real browser solves, not refused.
 * Pure: the caller stores `ThrottleState` and passes the clock.
 */
import type { Policy } from './policy.ts';

export interface ThrottleState {
  /** EWMA of the 10-minute count; null until the first sample. */
  baseline: number | null;
  sampledAt: number;
  tightenedSince: number | null;
  /** End of the cold-start learning period. */
  learningUntil?: number;
}

export interface ThrottleChange {
  scope: string;
  from: 'normal' | 'tightened';
  to: 'normal' | 'tightened';
  count: number;
  baseline: number;
  threshold: number;
}

export const SAMPLE_EVERY_MS = 60_000;
export const LEARNING_MS = 60 * 60_000;

export function floorFor(p: Policy, scope: string): number {
  if (scope === 'global') return p.throttle.floors.global;
  if (scope.startsWith('country:')) return p.throttle.floors.country;
  return p.throttle.floors.prefix;
}

/**
 * Advance one scope's state with the current 10-minute count. Returns the new state (the same object when
 * nothing changed, so callers can skip a write) and a change record when the scope flipped.
 */
export function stepThrottle(
  scope: string,
  prev: ThrottleState | null,
  count: number,
  p: Policy,
  now: number,
): { state: ThrottleState; change: ThrottleChange | null } {
  const t = p.throttle;
  const s: ThrottleState = prev ?? { baseline: null, sampledAt: 0, tightenedSince: null };
  if (!t.enabled) {
    return s.tightenedSince === null ? { state: s, change: null } : { state: { ...s, tightenedSince: null }, change: null };
  }
  // Cold start: a scope learns for its first hour, taking the highest 10-minute count seen as its baseline
  // and never tightening. Meanwhile the static ceilings of the policy (prefix, country, global limits) are
  // its only protection; a baseline learned from one request would tighten on any normal morning.
  if (s.baseline === null) return { state: { baseline: count, sampledAt: now, tightenedSince: null, learningUntil: now + LEARNING_MS }, change: null };
  if (s.learningUntil !== undefined && now < s.learningUntil) {
    if (count <= s.baseline) return { state: s, change: null };
    return { state: { ...s, baseline: count, sampledAt: now }, change: null };
  }
  const floor = floorFor(p, scope);
  const baseline = s.baseline;
  const tightenAt = Math.max(floor, t.factor * baseline);
  const relaxAt = Math.max(floor, t.relaxFactor * baseline);

  if (s.tightenedSince === null && count > tightenAt) {
    const state = { ...s, tightenedSince: now };
    return { state, change: { scope, from: 'normal', to: 'tightened', count, baseline, threshold: tightenAt } };
  }
  if (s.tightenedSince !== null) {
    const longEnough = now - s.tightenedSince >= t.minTightenedMinutes * 60_000;
    if (longEnough && count < relaxAt) {
      const state = { ...s, tightenedSince: null, sampledAt: now };
      return { state, change: { scope, from: 'tightened', to: 'normal', count, baseline, threshold: relaxAt } };
    }
    return { state: s, change: null }; // baseline frozen while tightened
  }
  if (now - s.sampledAt < SAMPLE_EVERY_MS) return { state: s, change: null };
  const alpha = 1 - Math.pow(2, -(now - s.sampledAt) / (t.baselineHalfLifeMinutes * 60_000));
  const next = s.baseline + alpha * (count - s.baseline);
  return { state: { ...s, baseline: next, sampledAt: now, tightenedSince: null }, change: null };
}
