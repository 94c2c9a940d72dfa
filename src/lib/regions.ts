/**
 * Country codes that can match: a phone number's region is one of libphonenumber's (ISO 3166-1 alpha-2, with
 * the crown dependencies and Kosovo); an IP's country can also be a territory without phone numbers of its
 * own. A policy list, block list or pause naming anything else would never match — most often `UK`, which is
 * `GB` — so such codes are refused where they are written.
 */
import { isSupportedCountry } from 'libphonenumber-js/max';

/** Territories the IP data names (ISO 3166-1) that have no phone numbering of their own. */
const IP_ONLY = new Set(['AQ', 'BV', 'GS', 'HM', 'PN', 'TF', 'UM']);

/**
 * Why `code` (upper case) cannot match, or null when it can: as a phone number's region, or with
 * `ipCountry` also as an IP's country.
 */
export function regionProblem(code: string, opts: { ipCountry?: boolean } = {}): string | null {
  if (isSupportedCountry(code) || (opts.ipCountry === true && IP_ONLY.has(code))) return null;
  const what = opts.ipCountry ? 'no phone number or IP address has this country' : 'no phone number has this region';
  return `${code}: ${what}${code === 'UK' ? ' (the United Kingdom is GB)' : ''}`;
}
