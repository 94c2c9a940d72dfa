/**
 * One place turns every failure into `{ "error": { "code", "message" } }` with the right status.
 * Client mistakes never become 500s; server faults become a generic 500 that names no internals
 * (the detail goes to the log with the request id).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { HSTS } from './security-headers.ts';
import { ApiError, ERRORS, type ErrorCode } from '../service/errors.ts';
import { isStoreUnavailable } from '../store/errors.ts';
import type { RouteVisibility } from './admin-surface.ts';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_BAD_URL: 'invalid_request',
  FST_ERR_ASYNC_CONSTRAINT: 'invalid_request',
};

/** What went wrong, where the error code alone ("The request is not valid.") leaves a client guessing. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'The request body is not valid JSON.',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The request body is empty; send a JSON object, or no content-type header.',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The Content-Length header does not match the body.',
  FST_ERR_BAD_URL: 'The URL is not valid.',
};

export function errorBody(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  return { error: { ...extra, code, message } };
}

/**
 * Requests that Node's HTTP parser refuses before Fastify sees them (a malformed request line, headers over
 * the size limit, a slow client): answered in the same error shape as everything else, with the headers
 * every response carries, then the connection is closed (as Fastify's default handler does; Node cannot
 * parse anything further from it).
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'invalid_request';
  const { status, headers, body } = bareErrorResponse(code);
  // Node's own rule: not when a response on this connection has started (a malformed request pipelined
  // behind a good one would otherwise be answered in the middle of the first response's body).
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const lines = Object.entries({ date: new Date().toUTCString(), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines}\r\n${body}`);
  }
  socket.destroy(err);
}

/**
 * An error answered outside Fastify (a request Node's parser refuses, an unknown `Expect`): the error shape
 * and the headers every response carries, and the connection closed after it.
 */
export function bareErrorResponse(code: ErrorCode): { status: number; headers: Record<string, string>; body: string } {
  const { status, message } = ERRORS[code];
  const body = JSON.stringify(errorBody(code, message));
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'x-content-type-options': 'nosniff',
      'strict-transport-security': HSTS,
      'cache-control': 'no-store',
      connection: 'close',
    },
    body,
  };
}

export function installErrorHandling(app: FastifyInstance, visible: RouteVisibility = () => true): void {
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      if (err.retryAfter !== null) reply.header('retry-after', String(Math.max(1, err.retryAfter)));
      // RFC 9110 §11.6.1, RFC 6750 §3: a 401 names the scheme it wants.
      if (err.status === 401) reply.header('www-authenticate', 'Bearer');
      return reply.status(err.status).send(errorBody(err.code, err.message, err.extra));
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const first = fe.validation[0];
      const where = fe.validationContext ?? 'body';
      const path = first?.instancePath ? `${where}${first.instancePath.replaceAll('/', '.')}` : where;
      // A union of literals (a channel, a groupBy) fails as one "must be equal to constant" per branch: name them.
      const allowed = first?.keyword === 'const' ? fe.validation.filter((v) => v.keyword === 'const' && v.instancePath === first.instancePath).map((v) => JSON.stringify((v.params as { allowedValue?: unknown }).allowedValue)) : [];
      const message =
        first?.keyword === 'additionalProperties'
          ? `${path} has an unknown field "${String((first.params as { additionalProperty?: string }).additionalProperty)}"`
          : allowed.length > 0
            ? `${path} must be ${allowed.length > 1 ? 'one of ' : ''}${allowed.join(', ')}`
            : `${path} ${first?.message ?? 'is invalid'}`;
      return reply.status(400).send(errorBody('invalid_request', message));
    }
    const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (mapped) return reply.status(ERRORS[mapped].status).send(errorBody(mapped, FASTIFY_MESSAGES[fe.code!] ?? ERRORS[mapped].message));
    const status = fe.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // JSON syntax errors, prototype poisoning, bad encodings: the client's fault, described generically.
      const code: ErrorCode = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request';
      const message = code === 'invalid_request' ? 'The request body is not valid JSON.' : ERRORS[code].message;
      return reply.status(ERRORS[code].status).send(errorBody(code, message));
    }
    if (status === 503) return reply.status(503).header('retry-after', '5').send(errorBody('unavailable', ERRORS.unavailable.message));
    if (isStoreUnavailable(err)) {
      // An outage, not a bug: the client may retry; the operator sees /readyz fail and this warning.
      req.log.warn({ err: { name: (err as Error).name, message: (err as Error).message, code: (err as { code?: unknown }).code } }, 'store unavailable');
      return reply.status(503).header('retry-after', '5').send(errorBody('unavailable', ERRORS.unavailable.message));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send(errorBody('internal', ERRORS.internal.message));
  });

  // A path that exists with other methods answers 405 with `Allow` (RFC 9110 §15.5.6); an unknown one 404.
  const routes: { url: string; scope: string | undefined; pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (r) => {
    // A catch-all (the CORS plugin's OPTIONS *) says nothing about which paths exist.
    if (r.url === '*' || r.url === '/*') return;
    const scope = (r.config as { scope?: string } | undefined)?.scope;
    routes.push({ url: r.url, scope, pattern: routePattern(r.url), methods: (Array.isArray(r.method) ? r.method : [r.method]).map((m) => m.toUpperCase()) });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = new Set<string>();
    // Only routes this port serves: with an admin port, neither port reveals the other's routes.
    for (const r of routes) if (r.pattern.test(path) && visible(req, r.url, r.scope)) for (const m of r.methods) allowed.add(m);
    // A route of this very method that still ended here chose to be hidden (the admin surface): 404.
    if (allowed.size > 0 && !allowed.has(req.method)) {
      return reply.status(405).header('allow', [...allowed].sort().join(', ')).send(errorBody('method_not_allowed', ERRORS.method_not_allowed.message));
    }
    return reply.status(404).send(errorBody('not_found', ERRORS.not_found.message));
  });
}

/** A Fastify route URL (`/v1/verifications/:id`, `/static/*`) as a regular expression over request paths. */
function routePattern(url: string): RegExp {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}
