/**
 * The admin dashboard at `/dashboard`.
 *
 * Sign-in: the operator types an admin API key once; the server checks it (admin scope, failed-attempt
 * limit; the admin surface already applied TLS, IP allowlist and admin port to /dashboard) and answers with
 * a *new* admin key that expires in 12 h, set as an HttpOnly, SameSite=Strict cookie. Page scripts never see
 * a key, and the typed key is not kept anywhere. Sign-out revokes the session key.
 *
 * Data: the page calls the admin API itself (`/v1/admin/...`: lists, policy with validation and versions,
 * stats, pauses, events), so it has exactly the API's validation, audit events and rules. A request that
 * carries the session cookie, the header `X-OTPShield-Dashboard: 1` and no Authorization header gets the
 * cookie's key as its bearer before authentication. Both conditions stop cross-site use: SameSite=Strict
 * keeps the cookie off cross-site requests, and a page on another origin cannot add a custom header without
 * a CORS preflight, which the admin API never grants.
 *
 * Assets: web/dashboard/ (no inline script or style: the strict CSP of every HTML page applies) and uPlot,
 * read from node_modules/uplot/dist at start-up (not committed, always the installed version).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import type { ApiScope } from '../../store/interface.ts';
import { createApiKey, grants, keyLookupFor, sessionKeyName, sessionParentId, staleKeyMessage, verifyApiKey } from '../../service/api-keys.ts';
import { recordedStep } from '../../service/journal.ts';
import { ApiError } from '../../service/errors.ts';
import { FAILED_AUTH } from '../auth.ts';
import { errorResponses } from '../schemas.ts';
import { ownOrigin } from '../origin.ts';
import { etagMatches } from '../etag.ts';
import { arrivedOverTls } from '../admin-surface.ts';

const Ok = Type.Object({ ok: Type.Literal(true) });

export const SESSION_COOKIE = 'otps_session';
export const DASHBOARD_HEADER = 'x-otpshield-dashboard';
export const SESSION_TTL_MS = 12 * 3_600_000;
const KEY_RE = /^osk_([A-Za-z0-9]{12})_[A-Za-z0-9_-]{43}$/;

/** Fastify's marker (what fastify-plugin sets): the cookie translation hook must see /v1/admin routes. */
const SKIP_OVERRIDE = Symbol.for('skip-override');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const HTML = 'text/html; charset=utf-8';

async function loadAssets(): Promise<Map<string, Asset>> {
  const dir = fileURLToPath(new URL('../../../web/dashboard/', import.meta.url));
  const require = createRequire(import.meta.url);
  const files: [string, string, string][] = [
    ['/dashboard', join(dir, 'index.html'), HTML],
    ['/dashboard/app.js', join(dir, 'app.js'), JS],
    ['/dashboard/app.css', join(dir, 'app.css'), CSS],
    ['/dashboard/vendor/uPlot.iife.min.js', require.resolve('uplot/dist/uPlot.iife.min.js'), JS],
    ['/dashboard/vendor/uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css'), CSS],
  ];
  const out = new Map<string, Asset>();
  await Promise.all(
    files.map(async ([path, file, type]) => {
      const body = await readFile(file);
      out.set(path, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
    }),
  );
  return out;
}

/** Minimal Cookie header parsing: we only read the one cookie we set ourselves. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return null;
    }
  }
  return null;
}

function sessionCookie(req: FastifyRequest, ctx: AppContext, value: string, maxAgeSeconds: number): string {
  const secure = arrivedOverTls(req, ctx) ? '; Secure' : '';
  // Path=/ because the page calls /v1/admin/... with it; SameSite=Strict + HttpOnly do the protecting.
  return `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

const LoginBody = Type.Object({ key: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });

export function dashboardRoutes(ctx: AppContext): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async function dashboard(app) {
    app.addHook('onRequest', async (req) => {
      if (req.headers.authorization !== undefined || req.headers[DASHBOARD_HEADER] !== '1') return;
      if (!req.url.startsWith('/v1/admin/') && !req.url.startsWith('/v1/admin?')) return;
      const key = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (key && KEY_RE.test(key)) req.headers.authorization = `Bearer ${key}`;
    });

    const assets = await loadAssets();
    for (const [path, asset] of assets) {
      app.get(path, { schema: { hide: true } }, async (req, reply) => {
        if (etagMatches(req.headers['if-none-match'], asset.etag)) return reply.header('etag', asset.etag).status(304).send();
        // HTML gets the strict CSP and friends from security-headers.ts.
        return reply.header('content-type', asset.type).header('etag', asset.etag).send(asset.body);
      });
    }

    /** Revoke a session key, recorded (`dashboard.logout`); signed out means now, not within the key cache's second. */
    const revokeSession = async (req: FastifyRequest, eventId: string, id: string, now: number, extra: Record<string, string> = {}) => {
      try {
        await recordedStep(ctx.store, { id: eventId, at: now, type: 'dashboard.logout', ip: req.clientIp, data: { session: id, ...extra } }, () => ctx.store.revokeApiKey(id, now));
      } finally {
        keyLookupFor(ctx.store).clear();
      }
    };

    const sameOrigin = (req: FastifyRequest) => {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== ownOrigin(req, ctx)) throw new ApiError('forbidden', { message: 'Cross-origin request refused.' });
    };

    app.post<{ Body: Static<typeof LoginBody> }>(
      '/dashboard/api/login',
      { schema: { operationId: 'dashboardLogin', tags: ['dashboard'], summary: 'Sign in with an admin key, or a read key for a read-only dashboard (sets the session cookie)', body: LoginBody, response: { 200: Type.Object({ ok: Type.Literal(true), expiresAt: Type.String({ format: 'date-time' }) }), ...errorResponses(400, 401, 403, 429) } } },
      async (req, reply) => {
        sameOrigin(req);
        const now = ctx.clock();
        const failKey = { reason: 'auth', key: `af:${req.clientKey}`, ...FAILED_AUTH };
        const retryAfter = FAILED_AUTH.windowMs / 1000;
        const [failures] = await ctx.store.peekLimits([failKey], now);
        if ((failures ?? 0) >= FAILED_AUTH.limit) throw new ApiError('rate_limited', { retryAfter });
        const res = await verifyApiKey(ctx.store, req.body.key.trim(), now);
        const stale = staleKeyMessage(res);
        if (stale) throw new ApiError('unauthorized', { message: stale });
        if (!res.ok) {
          const counted = await ctx.store.consumeLimits([failKey], now);
          throw counted.allowed ? new ApiError('unauthorized') : new ApiError('rate_limited', { retryAfter });
        }
        // A read key signs in to a read-only dashboard: its session has the read scope only (its numbers masked).
        if (!grants(res.record.scopes, 'read')) throw new ApiError('forbidden', { message: 'The dashboard needs an admin or a read key.' });
        const scopes: ApiScope[] = grants(res.record.scopes, 'admin') ? ['admin'] : ['read'];
        // A session makes no sessions: each would outlive the key of the one before in name only.
        if (sessionParentId(res.record) !== null) throw new ApiError('forbidden', { message: 'Sign in with an admin key, not a dashboard session.' });
        const expiresAt = Math.min(now + SESSION_TTL_MS, res.record.expiresAt ?? Infinity);
        // Recorded (journaled ahead: service/journal.ts recordedStep) with the session it made.
        const session = await recordedStep(
          ctx.store,
          { id: `ev_${req.id}`, at: now, type: 'dashboard.login', ip: req.clientIp, data: { key: res.record.id, session: null, scopes } },
          () => createApiKey(ctx.store, { scopes, name: sessionKeyName(res.record.id), expiresAt, now }),
          (s, e) => ({ ...e, data: { key: res.record.id, session: s.record.id, scopes } }),
        );
        // Signing in again replaces this browser's session: the one its cookie held is revoked now instead of
        // staying valid for hours with nobody holding it (or someone who copied it).
        const previous = readCookie(req.headers.cookie, SESSION_COOKIE);
        const old = previous && KEY_RE.test(previous) ? await verifyApiKey(ctx.store, previous, now) : null;
        if (old?.ok && old.record.id !== session.record.id && sessionParentId(old.record) !== null) {
          const id = old.record.id;
          // Best effort: the new session is made, and the browser gets it even if this revocation fails.
          await revokeSession(req, `ev_${req.id}_replaced`, id, now, { replacedBy: session.record.id }).catch((err: unknown) =>
            req.log.warn({ err: { message: (err as Error).message }, session: id }, 'dashboard: the replaced session could not be revoked'),
          );
        }
        reply.header('set-cookie', sessionCookie(req, ctx, session.key, Math.floor((expiresAt - now) / 1000)));
        return { ok: true, expiresAt: new Date(expiresAt).toISOString() };
      },
    );

    app.get('/dashboard/api/session', { schema: { operationId: 'dashboardSession', tags: ['dashboard'], security: [{ dashboardSession: [] }], summary: 'The current dashboard session', response: { 200: Type.Object({ session: Type.String(), scopes: Type.Array(Type.String(), { description: '["admin"], or ["read"] for a read-only session' }), expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]), app: Type.Union([Type.String(), Type.Null()]), version: Type.String() }), ...errorResponses(401, 403) } } }, async (req) => {
      const key = readCookie(req.headers.cookie, SESSION_COOKIE);
      const res = key && KEY_RE.test(key) ? await verifyApiKey(ctx.store, key, ctx.clock()) : null;
      if (!res || !res.ok || !grants(res.record.scopes, 'read')) throw new ApiError('unauthorized', { message: 'Sign in to the dashboard.' });
      const r = res.record;
      return { session: r.id, scopes: grants(r.scopes, 'admin') ? ['admin'] : ['read'], expiresAt: r.expiresAt === null ? null : new Date(r.expiresAt).toISOString(), app: ctx.config.appName, version: ctx.version };
    });

    app.post('/dashboard/api/logout', { schema: { operationId: 'dashboardLogout', tags: ['dashboard'], security: [{ dashboardSession: [] }, {}], summary: 'Sign out (revokes the session key)', response: { 200: Ok } } }, async (req, reply) => {
      sameOrigin(req);
      const key = readCookie(req.headers.cookie, SESSION_COOKIE);
      const m = key ? KEY_RE.exec(key) : null;
      if (m && key) {
        const res = await verifyApiKey(ctx.store, key, ctx.clock());
        // Only a session: another key put into the cookie (an integrator's leaked key) is not revoked by a click.
        if (res.ok && sessionParentId(res.record) !== null) await revokeSession(req, `ev_${req.id}`, m[1]!, ctx.clock());
      }
      reply.header('set-cookie', sessionCookie(req, ctx, '', 0));
      return { ok: true };
    });
  };
  (plugin as unknown as Record<symbol, boolean>)[SKIP_OVERRIDE] = true;
  return plugin;
}
