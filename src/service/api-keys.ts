/**
 * API keys: `osk_<id>_<secret>`. Only SHA-256 of the secret is stored; the secret has 256 bits of entropy,
 * so a slow password hash would add latency to every request without adding security. Lookup is by id,
 * comparison in constant time. Keys carry scopes, can expire and can be revoked.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRecord, ApiScope, Store } from '../store/interface.ts';

const KEY_RE = /^osk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface CreatedKey {
  key: string;
  record: ApiKeyRecord;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export async function createApiKey(
  store: Store,
  opts: { scopes: ApiScope[]; name?: string | null; expiresAt?: number | null; now: number },
): Promise<CreatedKey> {
  const id = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
  const secret = randomBytes(32).toString('base64url');
  const record: ApiKeyRecord = {
    id,
    name: opts.name ?? null,
    secretHash: hashSecret(secret),
    scopes: [...new Set(opts.scopes)],
    createdAt: opts.now,
    expiresAt: opts.expiresAt ?? null,
    revokedAt: null,
    lastUsedAt: null,
  };
  await store.putApiKey(record);
  return { key: `osk_${id}_${secret}`, record };
}

export const API_SCOPES: readonly ApiScope[] = ['verify', 'admin', 'read', 'metrics'];

/**
 * Whether a key with `held` scopes may use a route that needs `needed`: its own scopes, and what they include
 * (`admin` ⊃ `read` ⊃ `metrics`). `verify` stands apart: an admin key cannot send codes, nor a verify key read.
 */
export function grants(held: readonly ApiScope[], needed: ApiScope): boolean {
  if (held.includes(needed)) return true;
  if (needed === 'read') return held.includes('admin');
  if (needed === 'metrics') return held.includes('admin') || held.includes('read');
  return false;
}

export type KeyCheck = { ok: true; record: ApiKeyRecord } | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' | 'expired' | 'mismatch' | 'parent_revoked' };

const SESSION_NAME_RE = /^dashboard session \(([A-Za-z0-9]{12})\)$/;

/** The name of a dashboard session key made with the admin key `parentId`. */
export function sessionKeyName(parentId: string): string {
  return `dashboard session (${parentId})`;
}

/** The admin key a dashboard session key was made with, or null for any other key. */
export function sessionParentId(r: Pick<ApiKeyRecord, 'name'>): string | null {
  return SESSION_NAME_RE.exec(r.name ?? '')?.[1] ?? null;
}

/**
 * `getApiKey` with a short memory: every API request looks its key up, which on Redis is a round trip of
 * its own. Records of existing keys are kept `ttlMs` (default 1 s, the same staleness as the shared
 * state's refresh), so a revocation or expiry change made elsewhere takes effect within that time; expiry
 * itself is checked against `now` on every request. Unknown ids are not cached (a guesser must not fill it).
 */
export function cachedKeyLookup(store: Pick<Store, 'getApiKey'>, opts: { ttlMs?: number; max?: number } = {}): Pick<Store, 'getApiKey'> & { clear(): void } {
  const ttlMs = opts.ttlMs ?? 1000;
  const max = opts.max ?? 1000;
  const cache = new Map<string, { record: ApiKeyRecord; until: number }>();
  return {
    async getApiKey(id: string): Promise<ApiKeyRecord | null> {
      const t = performance.now();
      const hit = cache.get(id);
      if (hit && hit.until > t) return hit.record;
      const record = await store.getApiKey(id);
      if (record) {
        if (cache.size >= max) cache.clear();
        cache.set(id, { record, until: t + ttlMs });
      } else cache.delete(id);
      return record;
    },
    clear: () => cache.clear(),
  };
}

const lookups = new WeakMap<object, ReturnType<typeof cachedKeyLookup>>();

/** The one cached lookup of a store, shared by every route; `.clear()` it after revoking a key in-process. */
export function keyLookupFor(store: Store): ReturnType<typeof cachedKeyLookup> {
  let l = lookups.get(store);
  if (!l) {
    l = cachedKeyLookup(store);
    lookups.set(store, l);
  }
  return l;
}

export async function verifyApiKey(store: Pick<Store, 'getApiKey'>, presented: string, now: number): Promise<KeyCheck> {
  const m = KEY_RE.exec(presented);
  if (!m) return { ok: false, reason: 'malformed' };
  const record = await store.getApiKey(m[1]!);
  // Compare even when the id is unknown, so timing does not tell which ids exist.
  const expected = Buffer.from(record?.secretHash ?? '0'.repeat(64), 'hex');
  const actual = Buffer.from(hashSecret(m[2]!), 'hex');
  const equal = timingSafeEqual(expected, actual);
  if (!record) return { ok: false, reason: 'unknown' };
  if (!equal) return { ok: false, reason: 'mismatch' };
  if (record.revokedAt !== null) return { ok: false, reason: 'revoked' };
  if (record.expiresAt !== null && record.expiresAt <= now) return { ok: false, reason: 'expired' };
  // A dashboard session lives only as long as the admin key it was made with: revoking a stolen admin key
  // must end the sessions made with it, not leave them valid for up to 12 hours.
  const parentId = sessionParentId(record);
  if (parentId !== null) {
    const parent = await store.getApiKey(parentId);
    if (!parent || parent.revokedAt !== null || (parent.expiresAt !== null && parent.expiresAt <= now)) return { ok: false, reason: 'parent_revoked' };
  }
  return { ok: true, record };
}

/**
 * The answer to a revoked or expired key presented with its right secret, or null for any other result. Such
 * a key is no guess (only its holder has the secret): a backend still running with it after a rotation.
 * Counting it as a failed attempt would lock every key out of that backend's address; saying so tells the
 * operator what to fix.
 */
export function staleKeyMessage(check: KeyCheck): string | null {
  if (check.ok) return null;
  if (check.reason === 'parent_revoked') return 'The admin key this dashboard session was made with was revoked or has expired: sign in again.';
  return check.reason === 'revoked' ? 'This API key was revoked.' : check.reason === 'expired' ? 'This API key has expired.' : null;
}

/**
 * An epoch-ms time as ISO 8601, or null when there is none or it is beyond what a Date can hold (keys created
 * by older versions could store an expiry of 1e10 days; such a key never expires, and listing must not throw).
 */
function isoOrNull(ms: number | null): string | null {
  if (ms === null) return null;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** The public view of a key: never the hash. A time that is not a valid date is shown as null. */
export function keyView(r: ApiKeyRecord) {
  return {
    id: r.id,
    name: r.name,
    scopes: r.scopes,
    createdAt: isoOrNull(r.createdAt),
    expiresAt: isoOrNull(r.expiresAt),
    revokedAt: isoOrNull(r.revokedAt),
    lastUsedAt: isoOrNull(r.lastUsedAt),
  };
}
