/**
 * The simulated world: the markets an example app serves, their mobile number ranges, carriers and the IP
 * space their users come from, browsers and devices. Real ranges and real address blocks (checked against
 * the bundled IP data), so the server's own phone parsing and IP intel classify them as they would live
 * traffic: carrier addresses are residential, cloud addresses are hosting.
 */
import { normalizePhone } from '../signals/phone.ts';
import type { Rng } from './random.ts';

export interface Carrier {
  name: string;
  /** Address blocks as `a.b` (/16s). */
  blocks: string[];
  /**
   * Distinct public addresses this carrier's users reach the app from in a day. Mobile carriers use
   * carrier-grade NAT: thousands of subscribers share each address.
   */
  pool: number;
  w: number;
  /** IPv6, where the carrier offers it (null or absent: IPv4 only). */
  v6?: Ipv6Plan;
}

/**
 * A network's IPv6 space. Every IPv6 customer gets a whole /64 (one phone's data session, one home's LAN), so
 * the server counts an IPv6 client by its /64 (signals/ip.ts `addressKey`): a mobile session draws a fresh /64,
 * a household keeps its own, and the interface bits below it change with every address (privacy addresses).
 * Shares are illustrative, in line with the public per-network IPv6 measurements of 2025 (phones and routers
 * that have IPv6 prefer it when the app's host answers over it; the example app does).
 */
export interface Ipv6Plan {
  /** The network's /32 as two hextets, e.g. `2607:fb90`. */
  prefix: string;
  /**
   * The /48s in use: third hextet 0 … sites − 1, each announced (by the network's own company, checked by hand
   * when chosen) and located in its market by the bundled IP data (test/sim/world.test.ts checks every /48 for
   * an ASN, the country and no hosting flag).
   */
  sites: number;
  /** Share of this network's connections made over IPv6. */
  share: number;
}

export interface Market {
  country: string;
  callingCode: string;
  /** Mobile ranges: national digits after the calling code, and the national number length. */
  ranges: { lead: string; length: number; w: number }[];
  /** Sessions per day at scale 1. */
  sessionsPerDay: number;
  /** UTC offset (hours) for the daily rhythm. */
  utcOffset: number;
  languages: string[];
  mobile: Carrier[];
  /** Home broadband: one address per household. */
  fixed: Carrier[];
  /** Share of sessions from a phone on mobile data (the rest on home or office Wi-Fi). */
  mobileShare: number;
}

export const MARKETS: Market[] = [
  {
    country: 'ID',
    callingCode: '62',
    ranges: [
      { lead: '812', length: 11, w: 14 },
      { lead: '813', length: 11, w: 12 },
      { lead: '821', length: 11, w: 10 },
      { lead: '822', length: 11, w: 8 },
      { lead: '852', length: 11, w: 7 },
      { lead: '857', length: 11, w: 7 },
      { lead: '856', length: 11, w: 5 },
      { lead: '878', length: 11, w: 6 },
      { lead: '877', length: 11, w: 4 },
      { lead: '895', length: 11, w: 4 },
      { lead: '896', length: 11, w: 2 },
      { lead: '838', length: 11, w: 3 },
    ],
    sessionsPerDay: 12_000,
    utcOffset: 7,
    languages: ['id-ID,id;q=0.9,en-US;q=0.8', 'id-ID', 'en-US,en;q=0.9,id;q=0.8'],
    mobile: [
      { name: 'Telkomsel', blocks: ['114.124', '114.125', '182.0', '182.1', '182.2'], pool: 900, w: 5, v6: { prefix: '2404:c0', sites: 2, share: 0.3 } },
      { name: 'XL Axiata', blocks: ['112.215'], pool: 300, w: 2, v6: { prefix: '2400:9800', sites: 64, share: 0.3 } },
      { name: 'Indosat', blocks: ['114.4'], pool: 300, w: 2 },
    ],
    fixed: [{ name: 'IndiHome', blocks: ['36.72', '36.73', '110.136', '110.137', '180.241', '180.252', '36.71'], pool: 400_000, w: 1 }],
    mobileShare: 0.75,
  },
  {
    country: 'PH',
    callingCode: '63',
    ranges: [
      { lead: '917', length: 10, w: 5 },
      { lead: '918', length: 10, w: 4 },
      { lead: '927', length: 10, w: 3 },
      { lead: '995', length: 10, w: 3 },
      { lead: '966', length: 10, w: 2 },
      { lead: '939', length: 10, w: 2 },
    ],
    sessionsPerDay: 4_000,
    utcOffset: 8,
    languages: ['en-PH,en;q=0.9', 'fil-PH,fil;q=0.9,en;q=0.8', 'en-US,en;q=0.9'],
    mobile: [
      { name: 'Globe', blocks: ['112.198', '1.37'], pool: 400, w: 1 },
      { name: 'Smart', blocks: ['175.176'], pool: 300, w: 1 },
    ],
    fixed: [{ name: 'PLDT', blocks: ['49.144'], pool: 60_000, w: 1, v6: { prefix: '2001:4451', sites: 256, share: 0.3 } }],
    mobileShare: 0.8,
  },
  {
    country: 'NG',
    callingCode: '234',
    ranges: [
      { lead: '803', length: 10, w: 5 },
      { lead: '806', length: 10, w: 4 },
      { lead: '813', length: 10, w: 3 },
      { lead: '802', length: 10, w: 3 },
      { lead: '805', length: 10, w: 2 },
      { lead: '906', length: 10, w: 2 },
    ],
    sessionsPerDay: 3_000,
    utcOffset: 1,
    languages: ['en-NG,en;q=0.9', 'en-US,en;q=0.9', 'en-GB,en;q=0.9'],
    // A heavily shared carrier NAT: few addresses for many subscribers.
    mobile: [
      { name: 'MTN', blocks: ['102.89', '102.88', '197.210'], pool: 30, w: 3 },
      { name: 'Airtel', blocks: ['105.112'], pool: 20, w: 2 },
    ],
    fixed: [{ name: 'ipNX', blocks: ['41.184'], pool: 20_000, w: 1 }],
    mobileShare: 0.9,
  },
  {
    country: 'GB',
    callingCode: '44',
    ranges: [
      { lead: '7400', length: 10, w: 2 },
      { lead: '7700', length: 10, w: 3 },
      { lead: '7800', length: 10, w: 2 },
      { lead: '7900', length: 10, w: 3 },
      { lead: '7500', length: 10, w: 2 },
    ],
    sessionsPerDay: 2_500,
    utcOffset: 0,
    languages: ['en-GB,en;q=0.9', 'en-GB', 'en-US,en;q=0.9'],
    mobile: [{ name: 'Three UK', blocks: ['92.40'], pool: 2_000, w: 1 }],
    fixed: [
      { name: 'Virgin Media', blocks: ['86.1', '86.2', '86.3'], pool: 150_000, w: 1 },
      { name: 'BT', blocks: ['31.94'], pool: 60_000, w: 1, v6: { prefix: '2a00:23c5', sites: 256, share: 0.6 } },
    ],
    mobileShare: 0.5,
  },
  {
    country: 'US',
    callingCode: '1',
    ranges: [
      { lead: '212', length: 10, w: 2 },
      { lead: '415', length: 10, w: 2 },
      { lead: '646', length: 10, w: 2 },
      { lead: '312', length: 10, w: 2 },
      { lead: '713', length: 10, w: 2 },
      { lead: '305', length: 10, w: 2 },
      { lead: '206', length: 10, w: 1 },
    ],
    sessionsPerDay: 2_500,
    utcOffset: -5,
    languages: ['en-US,en;q=0.9', 'en-US', 'es-US,es;q=0.9,en;q=0.8'],
    mobile: [
      { name: 'T-Mobile', blocks: ['172.56'], pool: 3_000, w: 1, v6: { prefix: '2607:fb90', sites: 1024, share: 0.9 } },
      { name: 'Verizon', blocks: ['174.192'], pool: 3_000, w: 1, v6: { prefix: '2600:1010', sites: 1024, share: 0.8 } },
    ],
    fixed: [{ name: 'Comcast', blocks: ['73.1', '73.2', '73.3', '73.4'], pool: 250_000, w: 1, v6: { prefix: '2601:1c0', sites: 1024, share: 0.7 } }],
    mobileShare: 0.45,
  },
  {
    country: 'DE',
    callingCode: '49',
    ranges: [
      { lead: '151', length: 11, w: 3 },
      { lead: '160', length: 11, w: 2 },
      { lead: '170', length: 11, w: 2 },
      { lead: '176', length: 11, w: 2 },
      { lead: '157', length: 11, w: 1 },
    ],
    sessionsPerDay: 1_000,
    utcOffset: 1,
    languages: ['de-DE,de;q=0.9,en;q=0.8', 'de-DE', 'en-US,en;q=0.9,de;q=0.8'],
    mobile: [{ name: 'Telekom mobile', blocks: ['37.80'], pool: 1_500, w: 1, v6: { prefix: '2a01:598', sites: 256, share: 0.75 } }],
    fixed: [{ name: 'Telekom', blocks: ['79.192', '87.128', '93.192'], pool: 150_000, w: 1, v6: { prefix: '2003:c0', sites: 1024, share: 0.7 } }],
    mobileShare: 0.4,
  },
  {
    country: 'BR',
    callingCode: '55',
    ranges: [
      { lead: '119', length: 11, w: 4 },
      { lead: '219', length: 11, w: 2 },
      { lead: '319', length: 11, w: 1 },
      { lead: '419', length: 11, w: 1 },
    ],
    sessionsPerDay: 1_500,
    utcOffset: -3,
    languages: ['pt-BR,pt;q=0.9,en;q=0.8', 'pt-BR'],
    mobile: [{ name: 'Claro', blocks: ['177.32'], pool: 600, w: 1, v6: { prefix: '2804:14c', sites: 128, share: 0.5 } }],
    fixed: [{ name: 'Vivo', blocks: ['201.1'], pool: 60_000, w: 1, v6: { prefix: '2804:7f0', sites: 256, share: 0.5 } }],
    mobileShare: 0.7,
  },
];

export const MARKET = new Map(MARKETS.map((m) => [m.country, m]));

/** Addresses attackers rent: clouds and VPS hosts (all on the hosting list). */
export const DATACENTER_BLOCKS = ['159.65', '167.99', '3.1', '52.1', '88.198', '51.15'];
/** Cloud IPv6 space (AWS us-east-1, Vultr, Hetzner: hosting ASNs). A server gets a /64 or more, often a routed /48. */
export const DATACENTER_V6: Ipv6Plan[] = [
  { prefix: '2600:1f18', sites: 16, share: 1 },
  { prefix: '2001:19f0', sites: 16, share: 1 },
  { prefix: '2a01:4f8', sites: 16, share: 1 },
];
/** Commercial VPN exits (M247, Datacamp/CDN77: hosting ASNs). */
export const VPN_BLOCKS = ['106.49', '212.102.32', '89.187.160'];
/** Compromised home routers and phones in many countries (a sloppy botnet's exits). */
export const BOTNET_BLOCKS = ['14.160', '113.160', '117.200', '95.24', '5.18', '1.52', '177.32', '201.1', '102.89', '112.198'];

/** Residents of another market travelling with their own number. */
export const TRAVEL_BLOCKS = [{ blocks: ['121.7', '27.104'], country: 'SG' }, { blocks: ['1.144'], country: 'AU' }];

/**
 * The `index`-th address of a set of blocks. A block `a.b` is the /18 `a.b.0.0`–`a.b.63.255`; a block `a.b.c` is
 * the /19 starting at `a.b.c.0` (for networks that hold only part of a /16). Consecutive indexes go to different
 * /24s, as a carrier's NAT pool or a proxy network is spread over many subnets, not packed into one.
 * test/sim/world.test.ts checks every address a block can give against the bundled IP data.
 */
export function ipIn(blocks: readonly string[], index: number): string {
  const b = blocks[index % blocks.length]!;
  const i = Math.floor(index / blocks.length);
  const parts = b.split('.');
  const [first, span] = parts.length === 3 ? [Number(parts[2]), 32] : [0, 64];
  if (first % 32 !== 0 || first > 224) throw new RangeError(`block ${b}: the third octet of a /19 is a multiple of 32 up to 224`);
  return `${parts[0]}.${parts[1]}.${first + (i % span)}.${1 + (Math.floor(i / span) % 254)}`;
}

/**
 * A random address of a carrier for one session: over IPv6 (at the carrier's share) a fresh /64 of its space,
 * as a phone's new data session gets; otherwise an address of its IPv4 pool (mobile carriers: a small NAT pool).
 */
export function carrierIp(rng: Rng, c: Carrier): string {
  if (c.v6 && rng.chance(c.v6.share)) return v6In(rng, c.v6, rng.int(c.v6.sites * 65_536));
  return ipIn(c.blocks, rng.int(c.pool));
}

const hex16 = (n: number): string => (n & 0xffff).toString(16);

/**
 * An address in the `index`-th /64 of an IPv6 plan (index < sites × 65,536), with random interface bits: the
 * /64 says who, the low 64 bits change with every address a device makes up (RFC 8981 privacy addresses).
 */
export function v6In(rng: Rng, plan: Ipv6Plan, index: number): string {
  const site = Math.floor(index / 65_536) % plan.sites;
  return `${plan.prefix}:${hex16(site)}:${hex16(index)}:${hex16(rng.int(65_536))}:${hex16(rng.int(65_536))}:${hex16(rng.int(65_536))}:${hex16(rng.int(65_536))}`;
}

/** A valid mobile number of the market (the server's own parser confirms it). */
export function mobileNumber(rng: Rng, m: Market, range?: Market['ranges'][number]): string {
  for (let tries = 0; tries < 50; tries++) {
    const r = range ?? rng.weighted(m.ranges);
    const n = `+${m.callingCode}${r.lead}${rng.digits(r.length - r.lead.length)}`;
    const p = normalizePhone(n);
    if (p.ok && (p.type === 'MOBILE' || p.type === 'FIXED_LINE_OR_MOBILE')) return n;
  }
  throw new Error(`cannot generate a valid number for ${m.country}`);
}

export interface Browser {
  userAgent: string;
  /** iPhones of one model and iOS version look identical to a browser fingerprint. */
  iphone: boolean;
  w: number;
}

export const BROWSERS: Browser[] = [
  { userAgent: 'Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36', iphone: false, w: 8 },
  { userAgent: 'Mozilla/5.0 (Linux; Android 13; 22101316G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Mobile Safari/537.36', iphone: false, w: 6 },
  { userAgent: 'Mozilla/5.0 (Linux; Android 14; CPH2591) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36', iphone: false, w: 5 },
  { userAgent: 'Mozilla/5.0 (Linux; Android 12; SM-A125F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Mobile Safari/537.36', iphone: false, w: 4 },
  { userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36', iphone: false, w: 2 },
  { userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1', iphone: true, w: 7 },
  { userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1', iphone: true, w: 6 },
  { userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36', iphone: false, w: 4 },
  { userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15', iphone: false, w: 2 },
  { userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0', iphone: false, w: 1 },
];

/**
 * iPhone models in use, by popularity. A browser fingerprint cannot tell two units of the same model, iOS
 * version and locale apart, so their owners present the same device id (see `deviceIdFor`).
 */
export const IPHONE_MODELS = ['iPhone 13', 'iPhone 14', 'iPhone 15', 'iPhone 12', 'iPhone 11', 'iPhone 15 Pro', 'iPhone 14 Pro', 'iPhone 13 Pro', 'iPhone 16', 'iPhone SE', 'iPhone XR', 'iPhone 16 Pro'].map((name, i) => ({ name, w: 12 - i }));

/** A stable 32-hex id from text (FNV-1a, widened): the same model/iOS/locale gives the same id. */
export function fingerprintOf(text: string): string {
  let out = '';
  for (let round = 0; round < 4; round++) {
    let h = 0x811c9dc5 ^ round;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    out += h.toString(16).padStart(8, '0');
  }
  return out;
}

export const SCRIPT_AGENTS = ['python-requests/2.32.3', 'curl/8.5.0', 'Go-http-client/1.1', 'okhttp/4.12.0', 'axios/1.7.7', 'node-fetch/1.0'];
export const HEADLESS_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/129.0.0.0 Safari/537.36';

/** Relative session volume by local hour (a consumer app: quiet nights, evening peak). */
export const HOURLY = [2, 1.2, 0.8, 0.6, 0.6, 1, 2, 3.5, 5, 5.5, 5.5, 5.5, 6, 5.5, 5, 5, 5.5, 6, 6.5, 7.5, 8, 7.5, 5.5, 3.5];
