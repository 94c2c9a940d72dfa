import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { ApiError } from '../../service/errors.ts';
import { loadWebAssets, type WebAsset } from '../../signals/web-assets.ts';
import { asText, CheckResponse, ClientEvidence, errorResponses } from '../schemas.ts';
import { etagMatches } from '../etag.ts';

/**
 * Scripts are public and embedded by customers' pages on every page view: cached for five minutes (an upgrade
 * reaches every browser within that), then revalidated by ETag. Readable cross-origin (`*`, never with
 * credentials), so a page can pin one with Subresource Integrity (`integrity=… crossorigin="anonymous"`).
 * Pages (the demo) are revalidated every time.
 */
const SCRIPT_CACHE = 'public, max-age=300, must-revalidate';

function serve(asset: WebAsset, req: FastifyRequest, reply: FastifyReply) {
  const page = asset.type.startsWith('text/html');
  reply.header('etag', asset.etag).header('cache-control', page ? 'no-cache' : SCRIPT_CACHE);
  if (!page) {
    // Scripts may be loaded by customers' pages on other origins.
    reply.header('cross-origin-resource-policy', 'cross-origin').header('access-control-allow-origin', '*');
  }
  if (etagMatches(req.headers['if-none-match'], asset.etag)) return reply.status(304).send();
  // HTML pages get their CSP and browser protections from the server-wide hook (security-headers.ts).
  return reply.header('content-type', asset.type).send(asset.body);
}


/**
 * The browser widget (`/widget.js`, its worker, FingerprintJS at `/fp.js`) and the `/demo` sign-in page
 * with its backend-for-frontend (`/demo/api/send`, `/demo/api/check`), which plays the integrator's
 * backend: it forwards the end user's evidence with the socket address and User-Agent it saw.
 */
/** `/widget-worker.js` → `getWidgetWorkerJs`: a stable name for generated clients. */
function assetOperationId(path: string): string {
  return 'get' + path.slice(1).split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

export function webRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function web(app) {
    const assets = await loadWebAssets();
    for (const [path, asset] of assets) {
      if (path === '/demo' || path.startsWith('/demo.')) {
        if (!ctx.config.web.demo) continue;
      } else if (!ctx.config.web.widget) continue;
      app.get(path, { schema: { operationId: assetOperationId(path), tags: ['browser'], summary: `Static browser asset (${asset.type.split(';')[0]})`, response: { 200: asText(asset.type, 'The asset'), 304: Type.Null({ description: 'Not modified (ETag)' }) } } }, (req, reply) => serve(asset, req, reply));
    }
    if (!ctx.config.web.demo) return;

    const SendBody = Type.Object({ to: Type.String({ maxLength: 64 }), client: Type.Optional(ClientEvidence) }, { additionalProperties: false });
    const CheckBody = Type.Object({ to: Type.String({ maxLength: 64 }), code: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
    const DemoCheckResponse = Type.Omit(CheckResponse, ['verification']);
    app.post<{ Body: Static<typeof SendBody> }>(
      '/demo/api/send',
      { schema: { operationId: 'demoSend', tags: ['demo'], summary: 'Demo backend: send a code', body: SendBody, response: { 201: Type.Object({ status: Type.String(), resendAfter: Type.String({ format: 'date-time' }), expiresAt: Type.String({ format: 'date-time' }) }), ...errorResponses(400, 403, 422, 429, 502) } } },
      async (req, reply) => {
        const ua = typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'].slice(0, 512) : undefined;
        const lang = typeof req.headers['accept-language'] === 'string' ? req.headers['accept-language'].slice(0, 256) : undefined;
        const client = { ...(req.body.client ?? {}), ip: req.clientIp, ...(ua ? { userAgent: ua } : {}), ...(lang && !req.body.client?.acceptLanguage ? { acceptLanguage: lang } : {}) };
        // A public page's backend hands out no verification id, in its answers or its errors (the API names it
        // on a cooldown's 429 and on a 502, for the integrator's backend).
        const r = await ctx.verifications.send({ to: req.body.to, channel: 'sms', locale: null, client }).catch((err: unknown) => {
          if (err instanceof ApiError) delete err.extra.verificationId;
          throw err;
        });
        // When the code stops working and when a new one may be asked for: the page says both (WCAG 2.2.1).
        return reply.status(201).send({ status: r.verification.status, resendAfter: r.verification.resendAfter, expiresAt: r.verification.expiresAt });
      },
    );
    app.post<{ Body: Static<typeof CheckBody> }>(
      '/demo/api/check',
      { schema: { operationId: 'demoCheck', tags: ['demo'], summary: 'Demo backend: check a code', body: CheckBody, response: { 200: DemoCheckResponse, ...errorResponses(400, 404, 409, 410, 422, 423, 429) } } },
      async (req) => {
        // As on the send: the page gets the outcome, not the verification the API echoes to a backend.
        const { verification: _verification, ...outcome } = await ctx.verifications.check({ to: req.body.to, code: req.body.code, client: { ip: req.clientIp } });
        return outcome;
      },
    );
  };
}
