/**
 * The HTTP surface: one Fastify instance, JSON only, every route schema-validated, one error shape.
 * Routes live in `routes/`, each a Fastify plugin that only translates HTTP ↔ service calls.
 *
 * Before any route runs, in this order: the client address, the admin-surface rules (TLS in production, IP
 * allowlist, admin port), before the body is read the API key of routes that declare a scope, and once the
 * body has arrived the overload guard (503 past `server.maxInFlight`). Sockets, timeouts and TLS come from `tls.ts`, bodies
 * from `json-body.ts`, headers from `security-headers.ts`.
 */
import type { RequestListener } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { OpenAPIV3 } from 'openapi-types';
import { withSharedErrors } from './openapi-doc.ts';
import { SESSION_COOKIE } from './routes/dashboard.ts';
import { every } from '../lib/every.ts';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { ConfigError } from '../config/load.ts';
import type { AppContext, BackgroundTask } from '../service/context.ts';
import { clientErrorHandler, errorBody, installErrorHandling } from './errors.ts';
import { clientIp, inCidrs, normalizeIp } from './client-ip.ts';
import { addressKey } from '../signals/ip.ts';
import { authenticate } from './auth.ts';
import { createListeners, TlsFileError, type Listeners } from './tls.ts';
import { installAdminSurface, isAdminRoute } from './admin-surface.ts';
import { DEFAULT_MAX_IN_FLIGHT, installOverloadGuard } from './overload.ts';
import { installJsonParser } from './json-body.ts';
import { installStorableTextCheck } from './storable-text.ts';
import { ApiError } from '../service/errors.ts';
import { applyBaseHeaders, installSecurityHeaders } from './security-headers.ts';
import { healthRoutes } from './routes/health.ts';
import { verificationRoutes } from './routes/verifications.ts';
import { installDeclaredErrors } from './declared-errors.ts';
import { challengeRoutes } from './routes/challenges.ts';
import { webRoutes } from './routes/web.ts';
import { adminListRoutes } from './routes/admin-lists.ts';
import { adminPolicyRoutes } from './routes/admin-policy.ts';
import { adminUnlockRoutes } from './routes/admin-unlock.ts';
import { adminSubjectRoutes } from './routes/admin-subjects.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Client address for browser-facing endpoints: the socket, or X-Forwarded-For from trusted proxies. */
    clientIp: string;
    /** False when a trusted proxy forwarded something that is not an address (see client-ip.ts). */
    clientIpKnown: boolean;
    /** The key per-address counters use for this client: the address, or for IPv6 its /64 (`addressKey`). */
    clientKey: string;
    apiKey: import('../store/interface.ts').ApiKeyRecord | null;
  }
  interface FastifyContextConfig {
    /** Scope an API key needs for this route; absent = public. */
    scope?: import('../store/interface.ts').ApiScope;
  }
}

/**
 * Two validators: request bodies are validated strictly (no type coercion: `"to": 123` is an error, not
 * "123"), while query strings and path params are strings on the wire and are coerced to the schema's types.
 */
function makeValidators() {
  const base = { allErrors: false, removeAdditional: false as const, useDefaults: true, strict: false };
  const strictAjv = addFormats.default(new Ajv.default({ ...base, coerceTypes: false }));
  const coercingAjv = addFormats.default(new Ajv.default({ ...base, coerceTypes: true }));
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema);
}

/** Run `task` every `task.everyMs` at the context's clock, one run at a time; failures are logged and retried. */
function schedule(task: BackgroundTask, ctx: AppContext): NodeJS.Timeout {
  return every(task.everyMs, () => task.run(ctx.clock()), (err) => ctx.log.warn({ err, task: task.name }, 'background task failed; retried at its next run'));
}

export async function buildServer(ctx: AppContext): Promise<FastifyInstance> {
  const cfg = ctx.config;
  if (cfg.server.behindTlsProxy && ctx.trustedProxies.length === 0) {
    // "Behind a TLS proxy" must name the proxy, or any client could claim to be it.
    throw new ConfigError('invalid configuration at "server.behindTlsProxy": list the proxy in server.trustedProxies');
  }
  let listeners: Listeners;
  try {
    listeners = createListeners(cfg.server);
  } catch (err) {
    if (err instanceof TlsFileError) throw new ConfigError(err.message);
    throw err;
  }
  let handler: RequestListener | null = null;
  const app = Fastify({
    loggerInstance: ctx.log as unknown as FastifyBaseLogger,
    bodyLimit: cfg.server.bodyLimit,
    serverFactory: (h) => {
      handler = h;
      return listeners.factory(h);
    },
    // Only tells Fastify to print https:// addresses: the factory above builds the (TLS) servers.
    ...(listeners.secure ? ({ https: {} } as object) : {}),
    // req.protocol and req.host follow X-Forwarded-Proto/-Host only from the configured proxies, so pages
    // behind a TLS-terminating proxy know they are served over HTTPS (Secure cookies, same-origin checks).
    ...(ctx.trustedProxies.length > 0 ? { trustProxy: (address: string) => inCidrs(normalizeIp(address), ctx.trustedProxies) } : {}),
    // Bodies with __proto__ or constructor.prototype are refused at parse time.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Fastify's own 503 while closing is written before any hook, in its body shape and without Retry-After;
    // the onRequest hook below answers it in ours (docs/verification.md, errors).
    return503OnClosing: false,
    clientErrorHandler,
    // Malformed percent-encoding is caught by the router before any hook: answer in our error shape instead
    // of Fastify's default body, which echoes the URL back.
    frameworkErrors: (_err, req, reply) => {
      applyBaseHeaders(req as FastifyRequest, reply as FastifyReply);
      void (reply as FastifyReply).status(400).send(errorBody('invalid_request', 'The URL is not valid.'));
    },
    routerOptions: { ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 200 },
    genReqId: () => `req_${Math.random().toString(36).slice(2, 12)}`,
    requestIdHeader: false,
  });
  app.setValidatorCompiler(makeValidators());
  installJsonParser(app);
  app.decorateRequest('clientIp', '');
  app.decorateRequest('clientIpKnown', true);
  app.decorateRequest('clientKey', '');
  app.decorateRequest('apiKey', null);
  installOverloadGuard(app, cfg.server.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
  installStorableTextCheck(app);
  // Closing (after the drain): a request that still arrives on an open keep-alive connection is refused in the
  // error shape, with Retry-After, and its connection is closed (the onSend hook) so the client reconnects to
  // another instance.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (closing) {
      reply.header('connection', 'close');
      throw new ApiError('unavailable', { message: 'Shutting down. Try again shortly.', retryAfter: 5 });
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused (Node's own refusal is off: tls.ts).
    if (req.headers.host === undefined && req.raw.httpVersion === '1.1') throw new ApiError('invalid_request', { message: 'An HTTP/1.1 request needs a Host header.' });
    const client = clientIp(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], ctx.trustedProxies);
    req.clientIp = client.ip;
    req.clientIpKnown = client.known;
    req.clientKey = addressKey(client.ip);
  });
  const routeVisible = installAdminSurface(app, ctx, listeners, () => handler!);
  // The OpenAPI paths of the admin surface, so that each port's document lists its own routes only.
  const adminPaths = new Set<string>();
  app.addHook('onRoute', (r) => {
    if (isAdminRoute(r.url, (r.config as { scope?: string } | undefined)?.scope)) adminPaths.add(r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}'));
  });
  installSecurityHeaders(app);
  // Draining (server.drainMs): each client is told to reconnect, and so reaches another instance.
  app.addHook('onSend', async (_req, reply) => {
    if (ctx.lifecycle.draining) reply.header('connection', 'close');
  });
  const checkApiKey = authenticate(ctx);
  app.addHook('preParsing', async (req, reply, payload) => {
    await checkApiKey(req, reply);
    return payload;
  });

  let stopWatching = () => {};
  const timers: NodeJS.Timeout[] = [];
  app.addHook('onReady', async () => {
    stopWatching = listeners.watch(ctx.log);
    for (const task of ctx.background) timers.push(schedule(task, ctx));
  });
  app.addHook('onClose', async () => {
    stopWatching();
    for (const t of timers.splice(0)) clearInterval(t);
  });

  installErrorHandling(app, routeVisible);
  installDeclaredErrors(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'OTP Shield',
        version: ctx.version,
        description: 'Sends one-time codes only when it is safe and necessary, and checks them.',
        license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
      },
      // Relative: the document is served by the instance it describes, at whatever address it was reached.
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'osk_… API key' },
          dashboardSession: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The dashboard session cookie (set by /dashboard/api/login)' },
        },
      },
    },
  });

  await app.register(healthRoutes(ctx));
  await app.register(verificationRoutes(ctx));
  await app.register(challengeRoutes(ctx));
  await app.register(webRoutes(ctx));
  await app.register(adminListRoutes(ctx));
  await app.register(adminPolicyRoutes(ctx));
  await app.register(adminUnlockRoutes(ctx));
  await app.register(adminSubjectRoutes(ctx));
  for (const plugin of ctx.extraRoutes) await app.register(plugin(ctx));

  // Built once, on the first request (the routes are all registered by then).
  let shared: OpenAPIV3.Document | undefined;
  app.get('/openapi.json', { schema: { hide: true } }, async (req) => {
    const doc = (shared ??= withSharedErrors(app.swagger() as OpenAPIV3.Document));
    if (ctx.config.server.adminPort === undefined) return doc;
    // With an admin port, the public one does not know the admin routes (admin-surface.ts): its document
    // does not list them either, and the admin port's lists its own (and the probes both answer).
    const onAdminPort = routeVisible(req, '/v1/admin', 'admin');
    const paths = Object.fromEntries(Object.entries(doc.paths ?? {}).filter(([p]) => p === '/healthz' || p === '/readyz' || adminPaths.has(p) === onAdminPort));
    return { ...doc, paths };
  });
  return app;
}
