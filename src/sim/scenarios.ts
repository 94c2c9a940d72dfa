/**
 * The simulator's scenarios: real users and attacks, each writing trace events (replay input format) with a
 * label per event. Every scenario draws from its own random stream, so changing one does not reshuffle
 * the others.
 *
 * These scenarios are deliberately independent of the policy's tuning: the defense thresholds were set
 * from first principles (docs/sms-pumping.md) and are tested with their own generators
 * (test/pumping/), never fitted to this day. Behaviour here comes from how users and attackers behave, not
 * from what the defenses look at.
 */
import type { TraceClient } from '../replay/format.ts';
import { Rng } from './random.ts';
import {
  BOTNET_BLOCKS,
  BROWSERS,
  DATACENTER_BLOCKS,
  DATACENTER_V6,
  HEADLESS_AGENT,
  HOURLY,
  MARKETS,
  MARKET,
  IPHONE_MODELS,
  fingerprintOf,
  SCRIPT_AGENTS,
  TRAVEL_BLOCKS,
  VPN_BLOCKS,
  carrierIp,
  ipIn,
  mobileNumber,
  v6In,
  type Ipv6Plan,
  type Market,
} from './world.ts';

export interface Label {
  scenario: string;
  fraud: boolean;
  /** Who acted: a user id, an attacker campaign id. */
  actor: string;
  /** One attempt of a user to verify (legit only). */
  session?: string;
  /** Legit sessions: whether the user means to finish (`verify`) or gives up by choice (`abandon`). */
  intent?: 'verify' | 'abandon';
  /** Country of the destination number (null when it is not a valid number). */
  country: string | null;
  /** Part of the warm-up before the scored day. */
  warmup?: boolean;
}

export interface SimEvent {
  at: number;
  event: Record<string, unknown>;
  label: Label;
}

export interface ScenarioInfo {
  id: string;
  fraud: boolean;
  description: string;
}

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;

export class Out {
  readonly events: SimEvent[] = [];
  constructor(readonly warmupUntil: number) {}

  send(at: number, to: string, client: TraceClient, label: Label): void {
    this.events.push({ at: Math.round(at), event: { at: new Date(Math.round(at)).toISOString(), type: 'send', to, channel: 'sms', client }, label: this.mark(at, label) });
  }

  check(at: number, to: string, code: string, client: { ip: string | null; deviceId: string | null }, label: Label): void {
    this.events.push({ at: Math.round(at), event: { at: new Date(Math.round(at)).toISOString(), type: 'check', to, code, client }, label: this.mark(at, label) });
  }

  private mark(at: number, label: Label): Label {
    return at < this.warmupUntil ? { ...label, warmup: true } : label;
  }
}

// ------------------------------------------------------------------------------------------------ users

interface User {
  id: string;
  market: Market;
  number: string;
  userAgent: string;
  deviceId: string;
  /** Home broadband address, when the user has one. */
  homeIp: string | null;
  /** The household's own IPv6 /64 (index into its network's plan), when its broadband has IPv6. */
  home6: { plan: Ipv6Plan; index: number } | null;
  language: string;
}

function newUser(rng: Rng, m: Market, id: string): User {
  const b = rng.weighted(BROWSERS);
  // Half the iPhones are indistinguishable from every other unit of their model, iOS and locale (the rest
  // differ by settings, fonts or extensions); Android devices vary enough to be told apart.
  const deviceId = b.iphone && rng.chance(0.5) ? fingerprintOf(`${m.country}|${b.userAgent}|${rng.weighted(IPHONE_MODELS).name}`) : rng.hex(32);
  const fixed = rng.weighted(m.fixed);
  const number = mobileNumber(rng, m);
  let homeIp: string | null = null;
  let home6: User['home6'] = null;
  if (rng.chance(0.6)) {
    homeIp = ipIn(fixed.blocks, rng.int(fixed.pool));
    // A dual-stack home reaches a dual-stack app over IPv6.
    if (fixed.v6 && rng.chance(fixed.v6.share)) home6 = { plan: fixed.v6, index: rng.int(fixed.v6.sites * 65_536) };
  }
  return { id, market: m, number, userAgent: b.userAgent, deviceId, homeIp, home6, language: rng.pick(m.languages) };
}

/** Where a real user connects from for one session. */
function userIp(rng: Rng, u: User): string {
  if (u.homeIp && !rng.chance(u.market.mobileShare)) return u.home6 ? v6In(rng, u.home6.plan, u.home6.index) : u.homeIp;
  return carrierIp(rng, rng.weighted(u.market.mobile));
}

/** What the widget reports for a real person: a token, solved proof-of-work, human timing. */
function humanEvidence(rng: Rng, u: User, ip: string): TraceClient {
  const c: TraceClient = {
    ip,
    userAgent: u.userAgent,
    deviceId: u.deviceId,
    formToken: 'valid',
    pow: 'solved',
    captcha: 'missing',
    honeypot: false,
    elapsedMs: Math.round(rng.lognormal(12_000, 0.7)),
    headless: false,
    acceptLanguage: u.language,
  };
  const r = rng.next();
  if (r < 0.004) c.formToken = 'expired'; // left the page open too long
  else if (r < 0.01) {
    c.pow = 'missing'; // an old browser or a script blocker stopped the worker
  } else if (r < 0.012) {
    c.formToken = 'missing'; // JavaScript off
    c.pow = 'missing';
  }
  if (rng.chance(0.01)) c.elapsedMs = Math.round(rng.range(600, 1400)); // autofill + a fast thumb
  if (rng.chance(0.001)) c.honeypot = true; // a password manager filled the hidden field
  if (rng.chance(0.004)) c.acceptLanguage = null; // an in-app browser without the header
  return c;
}

/** Seconds from send to the typed code: SMS delivery, then reading and typing (or autofill). */
function typingLag(rng: Rng): number {
  return Math.min(9 * MIN, rng.lognormal(6 * S, 0.8) + rng.lognormal(22 * S, 0.6));
}

/** A number one or two digits off (a typo): valid, but somebody else's. */
function mistype(rng: Rng, u: User): string {
  for (let i = 0; i < 20; i++) {
    const d = u.number.split('');
    const pos = d.length - 1 - rng.int(6);
    d[pos] = String((Number(d[pos]) + 1 + rng.int(9)) % 10);
    const n = d.join('');
    if (n !== u.number) return n;
  }
  return u.number;
}

/**
 * One verification attempt of a real user: send, wait for the SMS, type the code. Some give up, some
 * mistype a digit of the code first, some ask for a new code, some type their number wrong at first.
 */
function session(rng: Rng, out: Out, u: User, t: number, scenario: string, sessionId: string, ipOf: () => string): void {
  const abandon = rng.chance(0.07);
  const label: Label = { scenario, fraud: false, actor: u.id, session: sessionId, intent: abandon ? 'abandon' : 'verify', country: u.market.country };
  let ip = ipOf();
  if (rng.chance(0.015)) {
    // Typed the number wrong: waits in vain, notices, corrects it.
    out.send(t, mistype(rng, u), humanEvidence(rng, u, ip), label);
    t += rng.range(60, 180) * S;
    ip = rng.chance(0.3) ? ipOf() : ip;
  }
  out.send(t, u.number, humanEvidence(rng, u, ip), label);
  if (abandon) return;
  let lag = typingLag(rng);
  if (rng.chance(0.03)) {
    // The code did not come (or was deleted): ask again after the resend timer, use the new one.
    const again = t + rng.range(45, 120) * S;
    out.send(again, u.number, humanEvidence(rng, u, ip), label);
    t = again;
    lag = typingLag(rng);
  }
  const client = { ip, deviceId: u.deviceId };
  if (rng.chance(0.04)) out.check(t + lag - rng.range(4, 10) * S, u.number, 'wrong', client, label);
  out.check(t + lag, u.number, 'correct', client, label);
}

/** Session start times over [from, to) following a market's local daily rhythm. */
function arrivals(rng: Rng, m: Market, perDay: number, from: number, to: number): number[] {
  const total = Math.round((perDay * (to - from)) / (24 * H));
  const weights = HOURLY.map((w, h) => ({ w, h }));
  const out: number[] = [];
  for (let i = 0; i < total; i++) {
    const local = rng.weighted(weights).h;
    const utcHour = (((local - m.utcOffset) % 24) + 24) % 24;
    const dayStart = from + Math.floor(rng.next() * ((to - from) / (24 * H))) * 24 * H;
    out.push(dayStart + utcHour * H + rng.next() * H);
  }
  return out.sort((a, b) => a - b);
}

// ------------------------------------------------------------------------------------------- legit

export interface SimOptions {
  seed: number;
  /** Multiplies every volume (users and attacks). */
  scale: number;
  /** Start of the scored day (UTC midnight). */
  dayStart: number;
  /** Hours of real traffic before the day, so baselines exist (labelled warmup, not scored). */
  warmupHours: number;
}

export const SCENARIOS: ScenarioInfo[] = [
  { id: 'legit.daily', fraud: false, description: 'Real users of seven markets with local daily rhythms: carrier-NAT and home IPs, IPv6 where their networks offer it (a fresh /64 per mobile session, a stable one per home), shared iPhone fingerprints, returning users, typos, resends, mistyped numbers, abandons.' },
  { id: 'legit.vpn_travel', fraud: false, description: 'Real users on commercial VPNs (hosting IPs abroad) or travelling (a foreign carrier IP with their own number).' },
  { id: 'legit.surge', fraud: false, description: 'A marketing push in Indonesia: thousands of new sign-ups within half an hour, on carrier NAT.' },
  { id: 'pump.residential', fraud: true, description: 'SMS pumping on a few ranges (ID, AZ, NG, and low-and-slow inside a busy ID prefix) from rotating residential proxies with valid-looking browsers that solve the proof-of-work.' },
  { id: 'pump.sequential', fraud: true, description: 'SMS pumping walking a UZ number range in order, same browser quality.' },
  { id: 'pump.spray', fraud: true, description: 'International revenue-share fraud spread thin: 40 sticky residential proxy exits send to mobile ranges of 14 countries all day, a few an hour per country, same browser quality.' },
  { id: 'bombing', fraud: true, description: 'SMS bombing of single victims: dozens of requests per victim within half an hour, from rotating IPs; half automated browsers, half scripts.' },
  { id: 'flood.datacenter', fraud: true, description: 'A flood from cloud servers: scripts without tokens to random numbers; a third over IPv6, a fresh /64 per request.' },
  { id: 'botnet.sloppy', fraud: true, description: 'A sloppy botnet on compromised home devices: headless browsers, bad or reused tokens, filled honeypots, inhuman speed.' },
  { id: 'bruteforce.single', fraud: true, description: 'Brute force: one code requested for a victim, then guesses.' },
  { id: 'bruteforce.rerequest', fraud: true, description: 'Brute force with code re-requests: guess, ask for a new code, guess again, for an hour.' },
  { id: 'numbers.invalid_premium', fraud: true, description: 'Sends to invalid numbers and to premium-rate and shared-cost numbers.' },
  { id: 'numbers.outside_markets', fraud: true, description: 'Sends to destinations the app does not serve (AZ, LV, CI, MV, satellite/+882) from residential proxies with good browsers.' },
];

export function legitTraffic(root: Rng, out: Out, o: SimOptions): void {
  const from = o.dayStart - o.warmupHours * H;
  const to = o.dayStart + 24 * H;
  for (const m of MARKETS) {
    const rng = root.fork(`legit:${m.country}`);
    const returning: User[] = [];
    const known = new Set<User>();
    let nextId = 0;
    for (const [i, t] of arrivals(rng, m, m.sessionsPerDay * o.scale, from, to).entries()) {
      // Four in ten sessions are people signing in again (2FA), on their own device and number.
      const u = returning.length > 20 && rng.chance(0.4) ? rng.pick(returning) : newUser(rng, m, `${m.country}-u${nextId++}`);
      const r = rng.next();
      if (r < 0.035) {
        const vpn = rng.chance(0.6);
        const travel = rng.pick(TRAVEL_BLOCKS);
        const ip = vpn ? ipIn(VPN_BLOCKS, rng.int(5000)) : ipIn(travel.blocks, rng.int(20_000));
        session(rng, out, u, t, 'legit.vpn_travel', `${m.country}-s${i}`, () => ip);
      } else {
        session(rng, out, u, t, 'legit.daily', `${m.country}-s${i}`, () => userIp(rng, u));
      }
      if (returning.length < 50_000 && !known.has(u)) {
        known.add(u);
        returning.push(u);
      }
    }
  }

  // The marketing push: 19:00 in Jakarta, new users arriving over about half an hour.
  const rng = root.fork('legit:surge');
  const id = MARKET.get('ID')!;
  const start = o.dayStart + 12 * H;
  const n = Math.round(2500 * o.scale);
  for (let i = 0; i < n; i++) {
    const t = start + Math.min(45 * MIN, rng.exp(9 * MIN));
    const u = newUser(rng, id, `ID-surge${i}`);
    session(rng, out, u, t, 'legit.surge', `ID-surge-s${i}`, () => carrierIp(rng, rng.weighted(id.mobile)));
  }
}

// ----------------------------------------------------------------------------------------- attacks

const fraudLabel = (scenario: string, actor: string, country: string | null): Label => ({ scenario, fraud: true, actor, country });

/** A bot that runs the real widget in a real browser engine: tokens valid, proof-of-work solved. */
function goodBrowser(rng: Rng, ip: string, language: string): TraceClient {
  return {
    ip,
    userAgent: rng.weighted(BROWSERS).userAgent,
    deviceId: rng.hex(32),
    formToken: 'valid',
    pow: 'solved',
    captcha: 'missing',
    honeypot: false,
    elapsedMs: Math.round(rng.range(2500, 15_000)),
    headless: false,
    acceptLanguage: language,
  };
}

function scriptClient(rng: Rng, ip: string): TraceClient {
  return { ip, userAgent: rng.pick(SCRIPT_AGENTS), deviceId: null, formToken: 'missing', pow: 'missing', captcha: 'missing', honeypot: false, elapsedMs: null, headless: false, acceptLanguage: null };
}

/** Poisson times at `perHour` over [from, to). */
function times(rng: Rng, perHour: number, from: number, to: number): number[] {
  const out: number[] = [];
  if (perHour <= 0) return out;
  for (let t = from + rng.exp(H / perHour); t < to; t += rng.exp(H / perHour)) out.push(t);
  return out;
}

/** A number of a range: `+<cc><lead>` and random digits to the national length. */
function rangeNumber(rng: Rng, cc: string, lead: string, nationalLength: number): string {
  return `+${cc}${lead}${rng.digits(nationalLength - lead.length)}`;
}

/** Residential proxy exits: carrier and broadband addresses of a market (the same space its users use). */
function residentialIp(rng: Rng, m: Market): string {
  const c = rng.chance(0.5) ? rng.weighted(m.mobile) : rng.weighted(m.fixed);
  // An exit on an IPv6 network is reached over IPv6 as often as its network's own users are.
  if (c.v6 && rng.chance(c.v6.share)) return v6In(rng, c.v6, rng.int(c.v6.sites * 65_536));
  return ipIn(c.blocks, rng.int(Math.max(c.pool, 5000)));
}

export function attackTraffic(root: Rng, out: Out, o: SimOptions): void {
  const day = o.dayStart;
  const k = o.scale;
  const id = MARKET.get('ID')!;
  const ng = MARKET.get('NG')!;

  // SMS pumping from residential proxies with good browsers.
  {
    const rng = root.fork('pump.residential');
    const campaigns = [
      { actor: 'pump-id-896', cc: '62', lead: '896', len: 11, country: 'ID', perHour: 900, from: 1, to: 4.5, exits: id, lang: 'id-ID' },
      { actor: 'pump-az-55', cc: '994', lead: '55', len: 9, country: 'AZ', perHour: 500, from: 13, to: 17, exits: null, lang: 'en-US,en;q=0.9' },
      { actor: 'pump-ng-906', cc: '234', lead: '906', len: 10, country: 'NG', perHour: 300, from: 18, to: 22, exits: ng, lang: 'en-NG,en;q=0.9' },
      // Low and slow inside the busiest Indonesian prefix, all day.
      { actor: 'pump-id-812-slow', cc: '62', lead: '812', len: 11, country: 'ID', perHour: 30, from: 0, to: 24, exits: id, lang: 'id-ID' },
    ];
    for (const c of campaigns) {
      for (const t of times(rng, c.perHour * k, day + c.from * H, day + c.to * H)) {
        const ip = c.exits ? residentialIp(rng, c.exits) : ipIn(BOTNET_BLOCKS, rng.int(50_000));
        out.send(t, rangeNumber(rng, c.cc, c.lead, c.len), goodBrowser(rng, ip, c.lang), fraudLabel('pump.residential', c.actor, c.country));
      }
    }
  }

  // Walking a range in order.
  {
    const rng = root.fork('pump.sequential');
    let n = 1_000_000 + rng.int(8_000_000);
    for (const t of times(rng, 250 * k, day + 6 * H, day + 9 * H)) {
      n += 1 + rng.int(3);
      out.send(t, `+99890${String(n).padStart(7, '0')}`, goodBrowser(rng, ipIn(BOTNET_BLOCKS, rng.int(50_000)), 'en-US,en;q=0.9'), fraudLabel('pump.sequential', 'pump-uz-90', 'UZ'));
    }
  }

  // Spread thin over many countries, so that no range or country gathers volume quickly: a small pool of
  // sticky proxy exits (cheaper than rotating ones) and a few messages an hour per destination country.
  {
    const rng = root.fork('pump.spray');
    const exits = Array.from({ length: 40 }, () => ipIn(BOTNET_BLOCKS, rng.int(50_000)));
    const dests = [
      { cc: '62', lead: '813', len: 11, country: 'ID' },
      { cc: '63', lead: '917', len: 10, country: 'PH' },
      { cc: '234', lead: '803', len: 10, country: 'NG' },
      { cc: '994', lead: '50', len: 9, country: 'AZ' },
      { cc: '998', lead: '93', len: 9, country: 'UZ' },
      { cc: '992', lead: '93', len: 9, country: 'TJ' },
      { cc: '996', lead: '55', len: 9, country: 'KG' },
      { cc: '371', lead: '22', len: 8, country: 'LV' },
      { cc: '225', lead: '07', len: 10, country: 'CI' },
      { cc: '221', lead: '77', len: 9, country: 'SN' },
      { cc: '233', lead: '24', len: 9, country: 'GH' },
      { cc: '254', lead: '71', len: 9, country: 'KE' },
      { cc: '260', lead: '97', len: 9, country: 'ZM' },
      { cc: '675', lead: '70', len: 8, country: 'PG' },
    ];
    for (const t of times(rng, 55 * k, day, day + 24 * H)) {
      const d = rng.pick(dests);
      out.send(t, rangeNumber(rng, d.cc, d.lead, d.len), goodBrowser(rng, rng.pick(exits), 'en-US,en;q=0.9'), fraudLabel('pump.spray', 'spray-1', d.country));
    }
  }

  // SMS bombing: harass single numbers.
  {
    const rng = root.fork('bombing');
    const victims = Math.max(1, Math.round(25 * k));
    for (let v = 0; v < victims; v++) {
      const m = rng.pick(MARKETS);
      const victim = mobileNumber(rng, m);
      const start = day + rng.range(0, 23) * H;
      const scripted = rng.chance(0.5);
      const count = 30 + rng.int(30);
      for (let i = 0; i < count; i++) {
        const t = start + rng.range(0, 30 * MIN);
        const ip = residentialIp(rng, rng.pick(MARKETS));
        out.send(t, victim, scripted ? scriptClient(rng, ip) : goodBrowser(rng, ip, rng.pick(m.languages)), fraudLabel('bombing', `bomb-${v}`, m.country));
      }
    }
  }

  // Cloud flood: scripts, no tokens.
  {
    const rng = root.fork('flood.datacenter');
    for (const t of times(rng, 2000 * k, day + 9 * H, day + 12 * H)) {
      const m = rng.chance(0.7) ? id : MARKET.get('PH')!;
      // A third from cloud servers' IPv6 space: a fresh /64 for every request, out of the servers' routed /48s.
      const plan = rng.chance(1 / 3) ? rng.pick(DATACENTER_V6) : null;
      const ip = plan ? v6In(rng, plan, rng.int(plan.sites * 65_536)) : ipIn(DATACENTER_BLOCKS, rng.int(2000));
      out.send(t, mobileNumber(rng, m), scriptClient(rng, ip), fraudLabel('flood.datacenter', 'flood-1', m.country));
    }
  }

  // A sloppy botnet.
  {
    const rng = root.fork('botnet.sloppy');
    const targets = [
      { cc: '62', lead: '85', len: 11, country: 'ID' },
      { cc: '994', lead: '50', len: 9, country: 'AZ' },
      { cc: '998', lead: '93', len: 9, country: 'UZ' },
      { cc: '7', lead: '916', len: 10, country: 'RU' },
    ];
    for (const t of times(rng, 700 * k, day + 15 * H, day + 21 * H)) {
      const tg = rng.pick(targets);
      const c: TraceClient = {
        ip: ipIn(BOTNET_BLOCKS, rng.int(20_000)),
        userAgent: rng.chance(0.5) ? HEADLESS_AGENT : rng.weighted(BROWSERS).userAgent,
        deviceId: rng.chance(0.5) ? rng.hex(32) : null,
        formToken: rng.pick(['invalid', 'reused', 'missing', 'expired', 'valid'] as const),
        pow: rng.pick(['missing', 'invalid', 'solved'] as const),
        captcha: 'missing',
        honeypot: rng.chance(0.2),
        elapsedMs: Math.round(rng.range(150, 1200)),
        headless: rng.chance(0.6),
        acceptLanguage: rng.chance(0.5) ? null : 'en-US',
      };
      out.send(t, rangeNumber(rng, tg.cc, tg.lead, tg.len), c, fraudLabel('botnet.sloppy', 'botnet-1', tg.country));
    }
  }

  // Brute force: one code, many guesses.
  {
    const rng = root.fork('bruteforce.single');
    const n = Math.max(1, Math.round(40 * k));
    for (let a = 0; a < n; a++) {
      const m = rng.pick(MARKETS);
      const victim = mobileNumber(rng, m);
      const ip = residentialIp(rng, m);
      const client = goodBrowser(rng, ip, rng.pick(m.languages));
      const label = fraudLabel('bruteforce.single', `bf-${a}`, m.country);
      let t = day + rng.range(0, 23) * H;
      out.send(t, victim, client, label);
      for (let g = 0; g < 30; g++) {
        t += rng.range(3, 20) * S;
        out.check(t, victim, rng.digits(6), { ip, deviceId: client.deviceId ?? null }, label);
      }
    }
  }

  // Brute force with code re-requests: every new code is another chance.
  {
    const rng = root.fork('bruteforce.rerequest');
    const n = Math.max(1, Math.round(25 * k));
    for (let a = 0; a < n; a++) {
      const m = rng.pick(MARKETS);
      const victim = mobileNumber(rng, m);
      const label = fraudLabel('bruteforce.rerequest', `bfr-${a}`, m.country);
      let t = day + rng.range(0, 22) * H;
      const end = t + H;
      while (t < end) {
        const ip = residentialIp(rng, m);
        const client = goodBrowser(rng, ip, rng.pick(m.languages));
        out.send(t, victim, client, label);
        for (let g = 0; g < 5; g++) {
          t += rng.range(2, 8) * S;
          out.check(t, victim, rng.digits(6), { ip, deviceId: client.deviceId ?? null }, label);
        }
        t += rng.range(35, 90) * S;
      }
    }
  }

  // Invalid, premium-rate and shared-cost numbers.
  {
    const rng = root.fork('numbers.invalid_premium');
    for (const t of times(rng, 60 * k, day, day + 24 * H)) {
      const r = rng.next();
      let to: string;
      let country: string | null;
      if (r < 0.4) {
        to = rng.pick(['+6281', '+62812345', '+4474001', '+1555', '12345', '+000123456789', '+99912345678']) + rng.digits(rng.int(3));
        country = null;
      } else if (r < 0.75) {
        to = `+44909${rng.digits(7)}`;
        country = 'GB';
      } else if (r < 0.9) {
        to = `+1900${rng.digits(7)}`;
        country = 'US';
      } else {
        to = `+44845${rng.digits(7)}`;
        country = 'GB';
      }
      out.send(t, to, goodBrowser(rng, residentialIp(rng, rng.pick(MARKETS)), 'en-US,en;q=0.9'), fraudLabel('numbers.invalid_premium', 'numbers-1', country));
    }
  }

  // Destinations the app does not serve.
  {
    const rng = root.fork('numbers.outside_markets');
    const dests = [
      { cc: '994', lead: '50', len: 9, country: 'AZ' },
      { cc: '371', lead: '22', len: 8, country: 'LV' },
      { cc: '225', lead: '07', len: 10, country: 'CI' },
      { cc: '960', lead: '77', len: 7, country: 'MV' },
      { cc: '882', lead: '16', len: 10, country: null },
    ];
    for (const t of times(rng, 50 * k, day, day + 24 * H)) {
      const d = rng.pick(dests);
      out.send(t, rangeNumber(rng, d.cc, d.lead, d.len), goodBrowser(rng, ipIn(BOTNET_BLOCKS, rng.int(50_000)), 'en-US,en;q=0.9'), fraudLabel('numbers.outside_markets', 'outside-1', d.country));
    }
  }
}
