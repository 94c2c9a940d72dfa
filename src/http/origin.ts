/**
 * This server's own origin as the browser on one of its pages names it, for same-origin checks: the scheme
 * the client used (`arrivedOverTls`: TLS here, or a configured TLS-terminating proxy, which need not send
 * X-Forwarded-Proto), and the host it asked for (Host, or a trusted proxy's X-Forwarded-Host: Fastify's
 * `req.host` follows it only from `server.trustedProxies`).
 */
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../service/context.ts';
import { arrivedOverTls } from './admin-surface.ts';

export function ownOrigin(req: FastifyRequest, ctx: AppContext): string {
  return `${arrivedOverTls(req, ctx) ? 'https' : 'http'}://${req.host}`;
}
