/**
 * Price per SMS by destination country, for "fraud spend". The monitoring layer's illustrative list prices
 * (USD; src/monitoring/config.ts) are the single source, so the benchmark and the dashboard agree.
 */
import { DEFAULT_MONITORING_POLICY } from '../monitoring/config.ts';

export interface PriceTable {
  currency: string;
  default: number;
  countries: Record<string, number>;
}

export function smsPrices(): PriceTable {
  const p = DEFAULT_MONITORING_POLICY.prices;
  const countries: Record<string, number> = {};
  for (const [c, v] of Object.entries(p.countries)) if (typeof v.sms === 'number') countries[c] = v.sms;
  return { currency: p.currency, default: p.default.sms, countries };
}

export function priceOf(t: PriceTable, country: string | null): number {
  return (country ? t.countries[country] : undefined) ?? t.default;
}
