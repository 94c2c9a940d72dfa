/**
 * API-key authentication and scope checks for routes that declare `config.scope`. server.ts runs it for
 * every request at preParsing, after all onRequest hooks (the dashboard turns its cookie into a bearer there)
 * and before the body is parsed or validated: an unauthenticated client costs no parsing and learns nothing
 * about the schema.
 * Keys come only from `Authorization: Bearer …` (never the query string, which ends up in access logs).
 * Failed attempts are counted per client address (in the store, shared) and the address is refused once over
 * the limit, valid key or not, so keys cannot be guessed online. The admin surface's own rules (TLS, IP
 * allowlist, admin port) run earlier, in `admin-surface.ts`, for every admin route whether or not it uses a key.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../service/context.ts';
import { grants, keyLookupFor, staleKeyMessage, verifyApiKey } from '../service/api-keys.ts';
import { ApiError } from '../service/errors.ts';

export const FAILED_AUTH = { limit: 20, windowMs: 10 * 60_000 };

/** Addresses this instance holds locked, at most this many (the oldest lock goes first). */
const MAX_LOCAL_LOCKS = 10_000;

/** One lock table per service instance, shared by every route and listener that authenticates. */
const LOCKS = new WeakMap<AppContext, Map<string, number>>();
function locksOf(ctx: AppContext): Map<string, number> {
  let m = LOCKS.get(ctx);
  if (!m) LOCKS.set(ctx, (m = new Map()));
  return m;
}

/** A key's last use (`keys list`, `lastUsedAt`) is written at most this often per key and instance. */
export const KEY_TOUCH_EVERY_MS = 60_000;
const TOUCHED = new WeakMap<AppContext, Map<string, number>>();

/**
 * Record that a key was used: at most once a minute per key (an operator asks "is this key still used?",
 * not "which request"), not waited for, and a failure only costs the record. Until 2026-11-28 nothing called
 * it, and `keys list` said `lastUsedAt: null` for keys in use.
 */
function touch(ctx: AppContext, id: string, now: number): void {
  let m = TOUCHED.get(ctx);
  if (!m) TOUCHED.set(ctx, (m = new Map()));
  const last = m.get(id);
  if (last !== undefined && now - last < KEY_TOUCH_EVERY_MS && now >= last) return;
  m.set(id, now);
  ctx.store.touchApiKey(id, now).catch(() => m.delete(id));
}

export function authenticate(ctx: AppContext) {
  // Wall-clock TTL (not ctx.clock): it bounds staleness in real time, whatever clock the service runs on.
  const keys = keyLookupFor(ctx.store);
  // Failures are counted in the store, shared by every instance; whether an address is locked is remembered
  // here, from the failures this instance counted. A request with a valid key so waits for no store call (its
  // last use is written at most once a minute, not waited for: `touch`): a
  // store read on every authenticated request (one Redis round trip) bought only that an instance which never
  // saw the address fail also refuses its valid key for the window. Such an instance locks it at the
  // address's first failure there, which the shared count refuses at once.
  const locked = locksOf(ctx);
  const lock = (ip: string, until: number) => {
    locked.delete(ip);
    if (locked.size >= MAX_LOCAL_LOCKS) locked.delete(locked.keys().next().value!);
    locked.set(ip, until);
  };
  return async function checkApiKey(req: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const scope = req.routeOptions.config.scope;
    // Runs once per request, before the body is read (server.ts); the routes' own preHandler is then a no-op.
    if (!scope || req.apiKey) return;
    const now = ctx.clock();
    const retryAfter = FAILED_AUTH.windowMs / 1000;
    const until = locked.get(req.clientKey);
    if (until !== undefined) {
      if (until > now) throw new ApiError('rate_limited', { retryAfter: Math.ceil((until - now) / 1000) });
      locked.delete(req.clientKey);
    }

    const header = req.headers.authorization;
    // The scheme name is case-insensitive (RFC 9110 §11.1): `bearer` from some HTTP clients is the same scheme.
    const presented = typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : null;
    // No key at all is not a guess: a scraper or probe without one, a tab whose session ended, or anyone behind
    // the same NAT would otherwise lock this address's valid keys (and the dashboard's sign-in) out for the window.
    if (!presented) throw new ApiError('unauthorized');
    const result = await verifyApiKey(keys, presented, now);
    // A revoked or expired key with its right secret is not counted as a guess (staleKeyMessage says why).
    const stale = result && staleKeyMessage(result);
    if (stale) throw new ApiError('unauthorized', { message: stale });
    if (!result || !result.ok) {
      // Counted atomically: of many failures racing, those over the limit get 429; the one that reaches the
      // limit locks the address here, so that its next request is refused whatever key it carries.
      const counted = await ctx.store.consumeLimits([{ reason: 'auth', key: `af:${req.clientKey}`, ...FAILED_AUTH }], now);
      if (!counted.allowed || (counted.counts[0] ?? 0) >= FAILED_AUTH.limit) lock(req.clientKey, now + FAILED_AUTH.windowMs);
      throw counted.allowed ? new ApiError('unauthorized') : new ApiError('rate_limited', { retryAfter });
    }
    if (!grants(result.record.scopes, scope)) throw new ApiError('forbidden');
    touch(ctx, result.record.id, now);
    req.apiKey = result.record;
  };
}
