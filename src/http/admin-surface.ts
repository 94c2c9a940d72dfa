/**
 * The admin surface (`/v1/admin/*`, `/dashboard`, `/metrics`, and any route that needs the `admin` scope)
 * gets rules of its own, checked in one onRequest hook before authentication:
 *  - in production it is served only over TLS: directly (`server.tls`) or through a TLS-terminating proxy
 *    that the configuration names (`server.behindTlsProxy` + the proxy in `server.trustedProxies`);
 *  - only from the admin IP allowlist, when one is configured;
 *  - with `server.adminPort`, only on that port, and the public port does not know these routes at all.
 *
 * The decision uses the *matched route* (`routeOptions.url`), not the raw URL, so percent-encoding or other
 * spellings that the router folds onto an admin route cannot dodge it. Routes added later through
 * `ctx.extraRoutes` are covered without registering anything.
 */
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../service/context.ts';
import { ApiError } from '../service/errors.ts';
import { inCidrs, normalizeIp } from './client-ip.ts';
import type { Listeners, NodeServer } from './tls.ts';

const ADMIN_PREFIXES = ['/v1/admin', '/dashboard', '/metrics'];
/** Load balancers probe both ports; each port's API document lists that port's routes (server.ts). */
const BOTH_PORTS = new Set(['/healthz', '/readyz', '/openapi.json']);

export function isAdminRoute(routeUrl: string | undefined, scope: string | undefined): boolean {
  if (scope === 'admin' || scope === 'read' || scope === 'metrics') return true;
  if (routeUrl === undefined) return false;
  return ADMIN_PREFIXES.some((p) => routeUrl === p || routeUrl.startsWith(`${p}/`));
}

/**
 * True when the request reached us over TLS: its socket is a TLS socket, or it comes from a configured
 * TLS-terminating proxy that did not say the client spoke plain HTTP.
 */
export function arrivedOverTls(req: FastifyRequest, ctx: AppContext): boolean {
  if ((req.raw.socket as Partial<TLSSocket>).encrypted === true) return true;
  if (!ctx.config.server.behindTlsProxy) return false;
  if (!inCidrs(normalizeIp(req.socket.remoteAddress ?? ''), ctx.trustedProxies)) return false;
  const proto = req.headers['x-forwarded-proto'];
  const values = (Array.isArray(proto) ? proto.join(',') : (proto ?? '')).split(',').map((v) => v.trim().toLowerCase()).filter(Boolean);
  // Absent: the proxy terminates TLS by declaration. Present: every hop must have been https.
  return values.every((v) => v === 'https');
}

const adminListeners = new WeakMap<FastifyInstance, { server: NodeServer; secure: boolean }>();

/** `http(s)://host:port` of the admin listener, or null when there is none (or it is not listening yet). */
export function adminAddress(app: FastifyInstance): string | null {
  const l = adminListeners.get(app);
  const addr = l?.server.address() as AddressInfo | null | undefined;
  if (!l || !addr) return null;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `${l.secure ? 'https' : 'http'}://${host}:${addr.port}`;
}

/** Whether a route (its URL pattern and scope) exists as far as this request's port is concerned. */
export type RouteVisibility = (req: FastifyRequest, routeUrl: string, scope: string | undefined) => boolean;

/**
 * `handler` returns Fastify's request handler (known once the instance exists, before it is ready). Returns
 * the rule "each port answers as if the other's routes did not exist", for the not-found handler's 405s.
 */
export function installAdminSurface(app: FastifyInstance, ctx: AppContext, listeners: Listeners, handler: () => RequestListener): RouteVisibility {
  const s = ctx.config.server;
  const production = ctx.config.env === 'production';
  const adminSockets = new WeakSet<object>();

  if (production && !listeners.secure && !s.behindTlsProxy) {
    ctx.log.warn('no server.tls and no server.behindTlsProxy: the admin API and dashboard will refuse every request');
  }

  if (s.adminPort !== undefined) {
    const port = s.adminPort;
    const host = s.adminHost ?? s.host;
    app.addHook('onReady', async () => {
      const srv = listeners.extra(handler());
      // The TLS socket is what the request sees, so mark that one for HTTPS.
      srv.on(listeners.secure ? 'secureConnection' : 'connection', (socket: object) => adminSockets.add(socket));
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ port, host }, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      adminListeners.set(app, { server: srv, secure: listeners.secure });
      ctx.log.info({ address: adminAddress(app) }, 'admin listener started');
    });
    app.addHook('onClose', async () => {
      const srv = adminListeners.get(app)?.server;
      if (!srv) return;
      await new Promise<void>((resolve) => {
        srv.close(() => resolve());
        srv.closeAllConnections();
      });
    });
  }

  const visible: RouteVisibility = (req, route, scope) =>
    s.adminPort === undefined || BOTH_PORTS.has(route) || isAdminRoute(route, scope) === adminSockets.has(req.raw.socket);

  app.addHook('onRequest', async (req) => {
    const route = req.routeOptions.url;
    const admin = isAdminRoute(route, req.routeOptions.config.scope);
    // Each port answers as if the other's routes did not exist.
    if (route !== undefined && !visible(req, route, req.routeOptions.config.scope)) throw new ApiError('not_found');
    if (!admin) return;
    if (production && !arrivedOverTls(req, ctx)) {
      throw new ApiError('forbidden', {
        message: 'The admin API and dashboard are only served over HTTPS. Configure server.tls, or server.behindTlsProxy with the proxy in server.trustedProxies.',
      });
    }
    if (ctx.adminAllowlist.length > 0 && (!req.clientIpKnown || !inCidrs(req.clientIp, ctx.adminAllowlist))) {
      throw new ApiError('forbidden', { message: 'Admin access is not allowed from this address.' });
    }
  });
  return visible;
}
