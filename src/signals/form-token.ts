/**
 * Signed one-time form tokens.
 *
 * The widget fetches one from `POST /v1/challenges` when the page loads; the customer's backend later
 * forwards it in the `client` block of `POST /v1/verifications`. A valid token proves that the request
 * comes from a page that loaded our widget from the same IP and browser, at least some time ago
 * (`issuedAt` is signed, so "too fast" can be measured on the server's clock, not the client's word).
 *
 * Format: `v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256)>`. The MAC covers `v1.<payload>` so the
 * version cannot be swapped. The payload carries only truncated keyed hashes of the IP and User-Agent:
 * the token travels through the browser and the customer's logs, and must not reveal the IP.
 *
 * Keys: every purpose gets its own subkey derived from the configured secret (HMAC(secret, label)),
 * so the same secret can sign form tokens and PoW challenges without one being usable as the other.
 * Rotation: tokens signed under `previous` secrets still verify until they expire.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import ipaddr from 'ipaddr.js';

/** One secret, or the current one plus older ones still accepted for verification. */
export type Secrets = string | { current: string; previous?: readonly string[] };

/** The only store operation this layer needs (see `Store.useOnce`); tests pass a Map-based fake. */
export interface OnceStore {
  useOnce(key: string, ttlMs: number, now: number): Promise<boolean>;
}

export const FORM_TOKEN_TTL_MS = 600_000;
/** Tokens longer than this are rejected before any parsing (the schema allows 4096 for all tokens). */
const MAX_TOKEN_LENGTH = 4096;
/** Bytes of the IP / UA hashes kept in the token: 96 bits is plenty to bind, and says nothing useful. */
const BIND_HASH_BYTES = 12;
/**
 * Instances' clocks can disagree a little; a token "issued" slightly in the future is accepted up to this
 * much, beyond that it cannot come from us honestly (it would need the key) and is treated as invalid.
 */
const MAX_CLOCK_SKEW_MS = 60_000;

export type FormTokenDetail = 'valid' | 'invalid' | 'expired' | 'reused' | 'missing' | 'wrong_ip' | 'wrong_ua' | 'wrong_origin';
/** The vocabulary the risk engine and the replay format use. */
export type FormTokenOutcome = 'valid' | 'invalid' | 'expired' | 'reused' | 'missing';

export interface FormTokenPayload {
  jti: string;
  /** Issue time, epoch ms. */
  iat: number;
  /** Expiry, epoch ms. */
  exp: number;
  ipHash: string;
  uaHash: string;
  origin?: string;
  /**
   * When the person started the form, if before `iat`: a token handed out in a challenge_required answer
   * carries the start its request's verified token measured, so that the page's automatic retry is not judged
   * "too fast" on the seconds the puzzle took.
   */
  st?: number;
}

export interface IssuedFormToken {
  token: string;
  jti: string;
  issuedAt: number;
  expiresAt: number;
}

export interface VerifiedFormToken {
  outcome: FormTokenDetail;
  /** Only set once the MAC checked out, so callers may trust it (e.g. for the elapsed-time signal). */
  issuedAt?: number;
  /** When the form was started, when the token says (signed `st`; else it is `issuedAt`): what the elapsed-time signal measures from. */
  startedAt?: number;
  jti?: string;
}

// ---- keys ----

/** Ordered list of secrets to try: current first, so the common case costs one HMAC. */
export function secretList(secrets: Secrets): string[] {
  const list = typeof secrets === 'string' ? [secrets] : [secrets.current, ...(secrets.previous ?? [])];
  if (list.length === 0 || list.some((s) => typeof s !== 'string' || s.length === 0)) {
    // A configuration error, not a request error: refuse to sign or verify with an empty key.
    throw new TypeError('signals: secrets must be non-empty strings');
  }
  return list;
}

export function currentSecret(secrets: Secrets): string {
  return secretList(secrets)[0] as string;
}

const derived = new Map<string, Buffer>();

/**
 * Subkey for one purpose, so one configured secret can serve several independent MACs. Memoised: every
 * send verifies a token and a PoW with three subkeys, and the secrets are a handful of configured values
 * (the cap only guards against a caller passing ever-new secrets).
 */
export function deriveKey(secret: string, purpose: string): Buffer {
  const id = `${purpose}\0${secret}`;
  let key = derived.get(id);
  if (key === undefined) {
    key = createHmac('sha256', secret).update(`otp-shield/${purpose}`).digest();
    if (derived.size >= 256) derived.clear();
    derived.set(id, key);
  }
  return key;
}

// ---- binding ----

/**
 * Normalises an IP for binding. IPv4-mapped IPv6 becomes IPv4 (proxies differ in how they report it).
 * IPv6 binds to its /64: privacy extensions rotate the interface id, often within minutes, while the /64
 * belongs to one subscriber line. Unparseable input is bound as given (lower-cased).
 */
export function bindingIp(ip: string | null | undefined): string {
  const raw = (ip ?? '').trim().toLowerCase();
  if (raw === '') return '';
  try {
    const addr = ipaddr.process(raw);
    if (addr.kind() === 'ipv6') {
      const parts = (addr as ipaddr.IPv6).parts.slice(0, 4);
      return `v6:${parts.map((p) => p.toString(16)).join(':')}::/64`;
    }
    return `v4:${addr.toString()}`;
  } catch {
    return `raw:${raw}`;
  }
}

function bindHash(secret: string, kind: 'ip' | 'ua', value: string): string {
  return createHmac('sha256', deriveKey(secret, 'form-token/bind/v1'))
    .update(`${kind}\0${value}`)
    .digest()
    .subarray(0, BIND_HASH_BYTES)
    .toString('base64url');
}

function mac(secret: string, signed: string): Buffer {
  return createHmac('sha256', deriveKey(secret, 'form-token/mac/v1')).update(signed).digest();
}

/** Constant-time equality for strings of possibly different length (length itself is not secret here). */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const x = typeof a === 'string' ? Buffer.from(a) : a;
  const y = typeof b === 'string' ? Buffer.from(b) : b;
  return x.length === y.length && timingSafeEqual(x, y);
}

// ---- issue ----

export function issueFormToken(
  secrets: Secrets,
  opts: { ip?: string | null; userAgent?: string | null; now: number; ttlMs?: number; origin?: string; startedAt?: number },
): IssuedFormToken {
  const secret = currentSecret(secrets);
  const ttlMs = opts.ttlMs ?? FORM_TOKEN_TTL_MS;
  const jti = randomBytes(16).toString('base64url');
  const payload: FormTokenPayload = {
    jti,
    iat: opts.now,
    exp: opts.now + ttlMs,
    ipHash: bindHash(secret, 'ip', bindingIp(opts.ip)),
    uaHash: bindHash(secret, 'ua', opts.userAgent ?? ''),
    ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
    // At most one token lifetime back: a chain of challenges cannot carry one early start forward for ever.
    ...(opts.startedAt !== undefined && Number.isSafeInteger(opts.startedAt) && opts.startedAt < opts.now ? { st: Math.max(opts.startedAt, opts.now - ttlMs) } : {}),
  };
  const body = `v1.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return { token: `${body}.${mac(secret, body).toString('base64url')}`, jti, issuedAt: payload.iat, expiresAt: payload.exp };
}

// ---- verify ----

function parsePayload(b64: string): FormTokenPayload | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(b64, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const p = value as Record<string, unknown>;
  const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
  if (!str(p.jti, 64) || !str(p.ipHash, 64) || !str(p.uaHash, 64)) return null;
  if (!Number.isSafeInteger(p.iat) || !Number.isSafeInteger(p.exp)) return null;
  if (p.origin !== undefined && !str(p.origin, 512)) return null;
  if (p.st !== undefined && (!Number.isSafeInteger(p.st) || (p.st as number) > (p.iat as number) || (p.st as number) < (p.iat as number) - ((p.exp as number) - (p.iat as number)))) return null;
  return p as unknown as FormTokenPayload;
}

export type VerifyFormTokenOptions = {
  ip?: string | null;
  userAgent?: string | null;
  now: number;
  /** When set and the token recorded an origin, they must match. */
  origin?: string;
} & (
  | { consume: true; store: OnceStore }
  /** Checks everything except single use (useOnce would consume it): `valid` then means "not yet known reused". */
  | { consume: false; store?: OnceStore }
);

/**
 * Checks MAC, expiry and binding, then (with `consume`) marks the token used. Single use is recorded only
 * when everything else passed, so a forged or mis-bound token cannot burn a genuine one's jti.
 */
export async function verifyFormToken(
  secrets: Secrets,
  token: string | null | undefined,
  opts: VerifyFormTokenOptions,
): Promise<VerifiedFormToken> {
  if (token === undefined || token === null || token === '') return { outcome: 'missing' };
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { outcome: 'invalid' };
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'v1') return { outcome: 'invalid' };
  const [, payloadB64 = '', macB64 = ''] = parts;
  const signed = `v1.${payloadB64}`;
  const given = Buffer.from(macB64, 'base64url');

  // Try each secret; remember which one matched because binding hashes were made with that same secret.
  let matched: string | null = null;
  for (const secret of secretList(secrets)) {
    if (safeEqual(mac(secret, signed), given)) {
      matched = secret;
      break;
    }
  }
  if (matched === null) return { outcome: 'invalid' };

  const p = parsePayload(payloadB64);
  if (p === null) return { outcome: 'invalid' };
  if (p.iat > opts.now + MAX_CLOCK_SKEW_MS || p.exp <= p.iat) return { outcome: 'invalid' };
  const base = { issuedAt: p.iat, ...(p.st !== undefined ? { startedAt: p.st } : {}), jti: p.jti };
  if (opts.now >= p.exp) return { outcome: 'expired', ...base };
  if (!safeEqual(p.ipHash, bindHash(matched, 'ip', bindingIp(opts.ip)))) return { outcome: 'wrong_ip', ...base };
  if (!safeEqual(p.uaHash, bindHash(matched, 'ua', opts.userAgent ?? ''))) return { outcome: 'wrong_ua', ...base };
  if (opts.origin !== undefined && p.origin !== undefined && p.origin !== opts.origin) {
    return { outcome: 'wrong_origin', ...base };
  }

  if (opts.consume) {
    if (!opts.store) throw new TypeError('verifyFormToken: consume requires a store');
    // Remember the jti exactly as long as the token could still be presented.
    const first = await opts.store.useOnce(`ft:${p.jti}`, p.exp - opts.now, opts.now);
    if (!first) return { outcome: 'reused', ...base };
  }
  return { outcome: 'valid', ...base };
}

/** Maps binding details onto the engine/replay vocabulary; the detail itself goes to `details`. */
export function formTokenOutcome(detail: FormTokenDetail): FormTokenOutcome {
  switch (detail) {
    case 'wrong_ip':
    case 'wrong_ua':
    case 'wrong_origin':
      return 'invalid';
    default:
      return detail;
  }
}
