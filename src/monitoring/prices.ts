/**
 * Price table lookups. Amounts are kept as integer micro-units (1e-6 of the currency) everywhere in the
 * aggregates and counters: sums of floats drift, and store counters add integers exactly.
 */
import type { Channel } from '../store/interface.ts';
import type { MonitoringPolicy } from './config.ts';

export const MICROS = 1_000_000;

/** Price of one message to `country` over `channel`, in micro-units. */
export function priceMicros(prices: MonitoringPolicy['prices'], country: string | null | undefined, channel: Channel): number {
  const own = country ? prices.countries[country]?.[channel] : undefined;
  return Math.round((own ?? prices.default[channel]) * MICROS);
}

export function fromMicros(micros: number): number {
  // Two decimals more than cents: small per-message prices (0.0083) stay visible in sums.
  return Math.round(micros / 100) / 10_000;
}

export function toMicros(amount: number): number {
  return Math.round(amount * MICROS);
}

/** The budget of one country (its own, else the default), in micro-units, or null when none applies. */
export function countryBudgetMicros(budgets: MonitoringPolicy['budgets'], country: string): number | null {
  const b = budgets.countries[country] ?? budgets.defaultCountry;
  return b === null || b === undefined ? null : toMicros(b);
}
