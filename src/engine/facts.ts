/**
 * Facts: everything the engine knows about one send request, already verified by `src/signals/`.
 * The server builds them from live evidence; the replay CLI builds them from recorded outcomes.
 * Both then call the same `decideSend` — that is what makes a backtest mean something.
 */
import type { Channel } from '../store/interface.ts';

export type FormTokenOutcome = 'valid' | 'invalid' | 'expired' | 'reused' | 'missing';
export type PowOutcome = 'solved' | 'invalid' | 'missing' | 'expired' | 'reused';
export type CaptchaOutcome = 'passed' | 'failed' | 'missing' | 'error';

/** The verified outcome of each piece of client evidence (also the replay input format). */
export interface EvidenceFacts {
  formToken: FormTokenOutcome;
  pow: PowOutcome;
  captcha: CaptchaOutcome;
  honeypot: boolean;
  elapsedMs: number | null;
  headless: boolean;
  scriptUserAgent: boolean;
  deviceId: string | null;
  acceptLanguage: string | null;
  /**
   * The size of the puzzle the solved proof of work answered (signed into it when it was issued), or
   * absent/null when unknown (a puzzle issued before the size was signed; a replayed trace). When the request
   * is asked for the highest level (a throttled scope, an escalated client), only a puzzle of that level
   * earns the credit (decide.ts).
   */
  powLevel?: 'normal' | 'elevated' | 'high' | null;
}

/**
 * The destination: a phone number, or for the `email` channel an email address (docs/verification.md, "Email
 * destinations"). An address has no country and no range: the rules and counters of those (country lists and
 * limits, per-prefix limits, throttling and SMS-pumping quarantines of a prefix or country, line types) do not
 * apply to it; everything keyed on the destination itself does.
 */
export interface NumberFacts {
  /** The destination's key: the number in E.164, or the canonical email address (signals/email.ts). */
  e164: string;
  /** The number's region (ISO 3166-1); null for an email address. */
  region: string | null;
  callingCode: string | null;
  /** The line type (signals/phone.ts), or `EMAIL`. */
  type: string;
  /**
   * Calling code + the first `prefixDigits` national digits: the unit of range attacks. Null for an email
   * address: a domain is no range (gmail.com is everybody's), and email earns a pumper nothing.
   */
  prefix: string | null;
  disposable: boolean;
  sources: string[];
}

export interface IpFacts {
  ip: string;
  /**
   * IPv4 /24 or IPv6 /64. For IPv6 it is also the per-address key (one client owns its /64: limits.ts `addressOf`);
   * with the device id, the network a number verified from (trust context).
   */
  subnet: string;
  /**
   * IPv4 /24 or IPv6 /56: one allocation, what the per-subnet limit counts. An IPv6 client owns its whole /64
   * (per-address counters key it by that), and a home is usually delegated a /56 (RFC 6177): 256 /64s, as a /24
   * holds 256 addresses. Counting the /64 here would count what the per-IP limit counts already, and a client
   * rotating its /64s through its delegation would meet no limit of its own.
   */
  network: string;
  /**
   * IPv6 /48 (a site), null for IPv4: a /48 holds 256 /56s and costs nothing (tunnel brokers hand them out), so
   * the per-subnet limit also counts it, at `SITE_FACTOR` times the budget (engine/limits.ts).
   */
  site: string | null;
  country: string | null;
  asn: number | null;
  hosting: boolean;
  tor: boolean;
  proxy: boolean;
  vpn: boolean;
  sources: string[];
}

export interface ListHit {
  list: 'block' | 'allow';
  kind: string;
  value: string;
}

/** State of the adaptive layers, read from the store before deciding. */
export interface StateFacts {
  /** Scopes currently tightened by dynamic throttling, e.g. `country:ID`. */
  throttled: string[];
  /** Active quarantine of the number's prefix or country (SMS-pumping defense). */
  quarantine: { scope: string; mode: 'challenge' | 'block' } | null;
  /** Escalation level of the worst key involved: 0 none, 1 always challenge, 2 blocked. */
  escalation: 0 | 1 | 2;
  /** Sends are paused by the emergency switch for this scope (`all`, `country:ID`, `prefix:+62812`). */
  paused: string | null;
  /** Request counts (all outcomes) in the last 10 minutes. */
  velocity: { device: number; ip: number };
  /** The device and network of this request verified this number before. */
  trusted: boolean;
  /** This number completed a verification before (from any device): quarantines do not apply to it. */
  numberVerifiedBefore: boolean;
  /** Messages delivered to this number since its last approval, in the last 24 h (absent: not known, 0). */
  unverifiedSends?: number;
  /** Failed checks of this number since its last approval, in the failure window (absent: not known, 0). */
  failedChecks?: number;
  /** Distinct destination countries this IP (IPv6: its /64, or its /56 if more) asked for in the last 24 h, this one included (absent: 0). */
  ipCountries?: number;
}

export interface SendFacts {
  now: number;
  channel: Channel;
  number: NumberFacts;
  ip: IpFacts | null;
  evidence: EvidenceFacts;
  lists: ListHit[];
  state: StateFacts;
}

export const NO_STATE: StateFacts = {
  throttled: [],
  quarantine: null,
  escalation: 0,
  paused: null,
  velocity: { device: 0, ip: 0 },
  trusted: false,
  numberVerifiedBefore: false,
  unverifiedSends: 0,
  failedChecks: 0,
};
