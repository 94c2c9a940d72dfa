/**
 * One-time codes: generation, keyed hashing and constant-time matching.
 *
 * A code is never stored or logged: only HMAC-SHA256(secret, "v1|id|to|channel|code") is kept, which binds
 * it to its verification, destination and channel (a code of A is useless on B). Each hash records the id
 * of the secret that made it, so a rotated secret keeps verifying codes issued before the rotation.
 *
 * Resends: a resend adds a new code to the same verification; the newest `codesKept` codes stay valid
 * (SMS can arrive out of order, and users type the first one they see), and the attempt budget belongs to
 * the verification, so asking for a new code never resets it (docs/verification.md).
 */
import { createHash, createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Channel, StoredCode } from '../store/interface.ts';

export interface Keyring {
  /** Key id of the secret new codes are hashed with. */
  currentKid: string;
  secrets: Map<string, Buffer>;
}

export function keyId(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8);
}

export function makeKeyring(current: string, previous: string[] = []): Keyring {
  const secrets = new Map<string, Buffer>();
  for (const s of [current, ...previous]) secrets.set(keyId(s), Buffer.from(s, 'utf8'));
  return { currentKid: keyId(current), secrets };
}

/** Uniformly random digits from the CSPRNG, leading zeros kept. */
export function generateCode(length: number): string {
  let out = '';
  // randomInt is uniform over [0, 10); one digit at a time avoids any modulo bias for every length.
  for (let i = 0; i < length; i++) out += String(randomInt(0, 10));
  return out;
}

export interface CodeBinding {
  id: string;
  to: string;
  channel: Channel;
}

function mac(secret: Buffer, b: CodeBinding, code: string): Buffer {
  return createHmac('sha256', secret).update(`v1|${b.id}|${b.to}|${b.channel}|${code}`).digest();
}

export function hashCode(ring: Keyring, b: CodeBinding, code: string, expiresAt: number): StoredCode {
  const secret = ring.secrets.get(ring.currentKid)!;
  return { kid: ring.currentKid, hash: mac(secret, b, code).toString('base64url'), expiresAt };
}

/**
 * True when `candidate` matches one of the unexpired codes. Every stored code is compared (no early exit)
 * with `timingSafeEqual` on fixed-length digests, so timing does not reveal which code or how many matched.
 */
export function matchCode(ring: Keyring, b: CodeBinding, codes: StoredCode[], candidate: string, now: number): boolean {
  let matched = false;
  for (const c of codes) {
    const secret = ring.secrets.get(c.kid);
    if (!secret) continue; // secret retired: its codes can no longer verify
    const expected = Buffer.from(c.hash, 'base64url');
    const actual = mac(secret, b, candidate);
    const equal = expected.length === actual.length && timingSafeEqual(expected, actual);
    if (equal && c.expiresAt > now) matched = true;
  }
  return matched;
}

const DIGIT_ZERO = [0x30, 0x660, 0x6f0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xe50, 0xed0, 0xff10];

/**
 * What a person typed → the code's ASCII digits, or null when it is not a code of `length` digits.
 * Folds Arabic-Indic, Persian, Devanagari… and full-width digits (phone keyboards produce them), drops
 * spaces and dashes people put in the middle ("123 456"); rejects anything else ("0x1E240", "1.2e5", "+123456").
 */
export function normalizeCodeInput(input: string, length: number): string | null {
  if (input.length > 64) return null;
  let out = '';
  for (const ch of input.normalize('NFKC')) {
    const cp = ch.codePointAt(0)!;
    if (ch === ' ' || ch === '-' || ch === '\u00a0' || ch === '\t') continue;
    const zero = DIGIT_ZERO.find((z) => cp >= z && cp <= z + 9);
    if (zero === undefined) return null;
    out += String(cp - zero);
  }
  return out.length === length ? out : null;
}
