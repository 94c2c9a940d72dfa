/**
 * Response headers every response gets, and the browser protections every HTML response gets, set in one
 * onSend hook so pages added by later layers (the dashboard) cannot forget them. A route that needs a
 * different policy for a page sets its own header; the hook only fills in what is missing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Strict CSP for HTML: no inline script or style, nothing from other origins, no framing. */
export const HTML_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
  'cross-origin-opener-policy': 'same-origin',
};

/**
 * Sent on every response. Browsers ignore it when it arrives over plain HTTP (RFC 6797 §8.1), so always
 * sending it cannot break a development setup and cannot be forgotten behind a TLS-terminating proxy.
 */
export const HSTS = 'max-age=31536000; includeSubDomains';

/** The headers of every response; also used where Fastify answers without running hooks (bad URLs). */
export function applyBaseHeaders(req: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', req.id);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('strict-transport-security', HSTS);
  // API answers are per request (verification state, keys); a route that serves something cacheable says so.
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
}

export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply) => {
    applyBaseHeaders(req, reply);
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('text/html')) {
      for (const [k, v] of Object.entries(HTML_SECURITY_HEADERS)) if (!reply.hasHeader(k)) reply.header(k, v);
    }
  });
}
