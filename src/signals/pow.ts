/**
 * Proof of work, in the classic ALTCHA format (altcha-lib's `v1` entry point).
 *
 * Why the v1 format and not altcha-lib 2's default export: the v2 protocol uses key-derivation
 * challenges (`parameters.keyPrefix`, counters, PBKDF2/Argon2 options) that need altcha's own solver in
 * the browser. The v1 format is a plain "find n ≤ maxnumber with SHA-256(salt + n) = challenge", which our
 * dependency-free widget worker solves with `crypto.subtle.digest`, and which the official ALTCHA widget
 * (`altcha` web component, v1 payloads) also submits: `base64(JSON {algorithm, challenge, number, salt,
 * signature})`.
 *
 * The challenge is stateless: `signature = HMAC(key, challenge)` and the expiry sits inside the salt
 * (`salt?expires=<unix seconds>&`), which feeds the hash, so it cannot be changed without redoing the
 * signature. Single use is enforced through the store, keyed by the signature (one per challenge).
 *
 * We do not call altcha's `verifySolution`: it reads `Date.now()` (we inject `now`) and compares with
 * `===`. Instead we recompute altcha's two values — `challenge = SHA-256(salt + number)` and
 * `signature = HMAC-SHA256(key, challenge)`, exactly what its `createChallenge` computes for a given salt
 * and number — with node:crypto, and compare in constant time. Not altcha's own function because it goes
 * through Web Crypto (an async thread-pool job and an `importKey` per call): 8 % of the whole send path's
 * CPU in the profile of docs/benchmarks.md, against ~10 µs synchronously. test/signals/pow.test.ts checks
 * the two stay identical on challenges issued by altcha itself.
 */
import { createHash, createHmac } from 'node:crypto';
import { createChallenge, extractParams } from 'altcha-lib/v1';
import { type OnceStore, type Secrets, deriveKey, safeEqual, secretList } from './form-token.ts';

export type PowLevel = 'normal' | 'elevated' | 'high';

/**
 * `maxnumber` per level. The secret number is uniform in [1, maxnumber], so a solver needs maxnumber/2
 * hashes on average and maxnumber at worst. Measured on this project's dev machine (Node 20, one core):
 * ~45k hashes/s awaiting `crypto.subtle.digest` one by one, ~100k/s in batches (what widget-worker.js
 * does). Browsers vary a lot more (old phones can be 5–10× slower), so roughly, with batching:
 * - normal   50_000 → avg ~0.25 s, worst ~0.5 s on a laptop; a few seconds on a slow phone.
 * - elevated 250_000 → avg ~1.3 s, worst ~2.5 s on a laptop.
 * - high   1_000_000 → avg ~5 s, worst ~10 s on a laptop: only for clearly abusive traffic.
 * The widget solves in the background while the user types, so most of this is hidden.
 */
export function powDifficulty(level: PowLevel): number {
  switch (level) {
    case 'normal':
      return 50_000;
    case 'elevated':
      return 250_000;
    case 'high':
      return 1_000_000;
  }
}

/** What `/v1/challenges` hands to the browser, exactly altcha's v1 challenge object. */
export interface PowChallenge {
  algorithm: 'SHA-256';
  challenge: string;
  maxnumber: number;
  salt: string;
  signature: string;
}

export type PowOutcome = 'solved' | 'invalid' | 'expired' | 'reused' | 'missing';

export interface VerifiedPow {
  outcome: PowOutcome;
  /** Non-secret parameters carried in the salt (e.g. `ft`, the form token's jti); set once the signature checked out. */
  params?: Record<string, string>;
  /** Why it is invalid, for logs (`malformed`, `bad_signature`, `no_expiry`, ...). */
  detail?: string;
}

export const POW_TTL_MS = 600_000;
const MAX_PAYLOAD_LENGTH = 4096;
const MAX_SALT_LENGTH = 512;
/** Above the highest difficulty we ever hand out: bigger numbers cannot be ours. */
const MAX_NUMBER = 10_000_000;

/** PoW HMAC keys derived from the service secrets (current first), so rotation works like form tokens. */
export function powKeys(secrets: Secrets): string[] {
  return secretList(secrets).map((s) => deriveKey(s, 'pow/v1').toString('hex'));
}

export async function createPowChallenge(
  hmacKey: string,
  opts: { difficulty: number; now: number; ttlMs?: number; params?: Record<string, string> },
): Promise<PowChallenge & { expiresAt: number }> {
  if (!Number.isSafeInteger(opts.difficulty) || opts.difficulty < 1 || opts.difficulty > MAX_NUMBER) {
    throw new RangeError(`createPowChallenge: difficulty must be an integer in [1, ${MAX_NUMBER}]`);
  }
  // altcha stores the expiry in whole seconds; round down so the challenge never outlives ttlMs.
  const expiresSec = Math.floor((opts.now + (opts.ttlMs ?? POW_TTL_MS)) / 1000);
  const c = await createChallenge({
    algorithm: 'SHA-256',
    hmacKey,
    maxnumber: opts.difficulty,
    expires: new Date(expiresSec * 1000),
    ...(opts.params ? { params: opts.params } : {}),
  });
  return {
    algorithm: 'SHA-256',
    challenge: c.challenge,
    maxnumber: c.maxnumber ?? opts.difficulty,
    salt: c.salt,
    signature: c.signature,
    expiresAt: expiresSec * 1000,
  };
}

interface PowPayload {
  algorithm: 'SHA-256';
  challenge: string;
  number: number;
  salt: string;
  signature: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

function decodePayload(payload: string): PowPayload | null {
  let value: unknown;
  try {
    // The altcha widget uses btoa (standard base64); accept base64url too, Buffer decodes both.
    value = JSON.parse(Buffer.from(payload, 'base64').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const p = value as Record<string, unknown>;
  // Only SHA-256: the algorithm is client-chosen in the payload, so pin it (no SHA-1 downgrade).
  if (p.algorithm !== 'SHA-256') return null;
  if (typeof p.challenge !== 'string' || !HEX64.test(p.challenge)) return null;
  if (typeof p.signature !== 'string' || !HEX64.test(p.signature)) return null;
  if (typeof p.salt !== 'string' || p.salt.length === 0 || p.salt.length > MAX_SALT_LENGTH) return null;
  if (!Number.isSafeInteger(p.number) || (p.number as number) < 0 || (p.number as number) > MAX_NUMBER) return null;
  return p as unknown as PowPayload;
}

/** altcha v1's challenge for a salt and number (it appends the `&` delimiter to a salt without one). */
export function powChallengeFor(salt: string, number: number): string {
  const s = salt.endsWith('&') ? salt : `${salt}&`;
  return createHash('sha256').update(`${s}${number}`, 'utf8').digest('hex');
}

/** altcha v1's signature of a challenge: HMAC-SHA256 keyed with the UTF-8 bytes of the key string. */
export function powSignature(hmacKey: string, challenge: string): string {
  return createHmac('sha256', Buffer.from(hmacKey, 'utf8')).update(challenge, 'utf8').digest('hex');
}

export type VerifyPowOptions = { now: number } & (
  | { consume: true; store: OnceStore }
  | { consume: false; store?: OnceStore }
);

/**
 * Verifies a submitted solution. `hmacKey` is one key or a list (current first) for rotation;
 * `powKeys(secrets)` gives the list derived from the service secrets.
 */
export async function verifyPow(
  hmacKey: string | readonly string[],
  payload: string | null | undefined,
  opts: VerifyPowOptions,
): Promise<VerifiedPow> {
  if (payload === undefined || payload === null || payload === '') return { outcome: 'missing' };
  if (typeof payload !== 'string' || payload.length > MAX_PAYLOAD_LENGTH) return { outcome: 'invalid', detail: 'malformed' };
  const p = decodePayload(payload);
  if (p === null) return { outcome: 'invalid', detail: 'malformed' };

  const keys = typeof hmacKey === 'string' ? [hmacKey] : hmacKey;
  let ok = false;
  const challenge = powChallengeFor(p.salt, p.number);
  for (const key of keys) {
    // Both compares always run, so timing does not tell which one failed.
    const sameChallenge = safeEqual(challenge, p.challenge);
    const sameSignature = safeEqual(powSignature(key, challenge), p.signature);
    if (sameChallenge && sameSignature) {
      ok = true;
      break;
    }
  }
  if (!ok) return { outcome: 'invalid', detail: 'bad_signature' };

  const params = extractParams(p);
  const expiresSec = Number(params.expires);
  // Every challenge we issue carries an expiry; a signed one without it would be valid forever.
  if (!params.expires || !Number.isSafeInteger(expiresSec)) return { outcome: 'invalid', detail: 'no_expiry', params };
  const expiresAt = expiresSec * 1000;
  if (opts.now >= expiresAt) return { outcome: 'expired', params };

  if (opts.consume) {
    if (!opts.store) throw new TypeError('verifyPow: consume requires a store');
    // One challenge has one signature (and one solution), so the signature identifies it.
    const first = await opts.store.useOnce(`pow:${p.signature}`, expiresAt - opts.now, opts.now);
    if (!first) return { outcome: 'reused', params };
  }
  return { outcome: 'solved', params };
}
