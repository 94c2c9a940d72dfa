import type { FastifyPluginAsync } from 'fastify';
import type { Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { authenticate } from '../auth.ts';
import { CheckBody, CheckResponse, IdParams, SendBody, VerificationView, errorResponses } from '../schemas.ts';
import { ApiError } from '../../service/errors.ts';

/** Start, check, read and cancel verifications. Only translation between HTTP and the service. */
export function verificationRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function verifications(app) {
    app.addHook('preHandler', authenticate(ctx));
    const security = [{ apiKey: [] }];

    app.post<{ Body: Static<typeof SendBody> }>(
      '/v1/verifications',
      {
        config: { scope: 'verify' },
        schema: {
          operationId: 'createVerification',
          tags: ['verifications'],
          summary: 'Send a code (if the request is safe and necessary)',
          security,
          body: SendBody,
          response: { 201: VerificationView, ...errorResponses(400, 401, 403, 422, 429, 502, 503) },
        },
      },
      async (req, reply) => {
        const b = req.body;
        const result = await ctx.verifications.send({
          to: b.to,
          channel: b.channel ?? 'sms',
          locale: b.locale ?? null,
          ...(b.defaultRegion ? { defaultRegion: b.defaultRegion } : {}),
          client: b.client ?? {},
        });
        return reply.status(201).send(result.verification);
      },
    );

    app.post<{ Body: Static<typeof CheckBody> }>(
      '/v1/verifications/check',
      {
        config: { scope: 'verify' },
        schema: {
          operationId: 'checkVerification',
          tags: ['verifications'],
          summary: 'Check a code',
          security,
          body: CheckBody,
          response: { 200: CheckResponse, ...errorResponses(400, 401, 403, 404, 409, 410, 422, 423, 429) },
        },
      },
      async (req) => {
        const b = req.body;
        if ((b.id === undefined) === (b.to === undefined)) throw new ApiError('invalid_request', { message: 'Give exactly one of "id" or "to".' });
        return ctx.verifications.check({
          code: b.code,
          ...(b.id !== undefined ? { id: b.id } : { to: b.to }),
          ...(b.channel ? { channel: b.channel } : {}),
          ...(b.client ? { client: b.client } : {}),
        });
      },
    );

    app.get<{ Params: Static<typeof IdParams> }>(
      '/v1/verifications/:id',
      {
        config: { scope: 'verify' },
        schema: { operationId: 'getVerification', tags: ['verifications'], summary: 'Read a verification', security, params: IdParams, response: { 200: VerificationView, ...errorResponses(401, 403, 404) } },
      },
      async (req) => ctx.verifications.get(req.params.id),
    );

    app.post<{ Params: Static<typeof IdParams> }>(
      '/v1/verifications/:id/cancel',
      {
        config: { scope: 'verify' },
        schema: { operationId: 'cancelVerification', tags: ['verifications'], summary: 'Cancel a pending verification', security, params: IdParams, response: { 200: VerificationView, ...errorResponses(401, 403, 404, 409, 410) } },
      },
      async (req) => ctx.verifications.cancel(req.params.id),
    );
  };
}
