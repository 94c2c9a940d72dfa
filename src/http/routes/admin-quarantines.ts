/**
 * Quarantines of the SMS-pumping defense: list the active ones, start one by hand, lift one.
 *
 *   GET    /v1/admin/quarantines
 *   POST   /v1/admin/quarantines            {"scope": "prefix:+62812", "mode": "block", "minutes": 120, "reason": "…"}
 *   DELETE /v1/admin/quarantines/:scope     (scope URL-encoded: prefix%3A%2B62812, country%3AID)
 *
 * Lifting starts a grace period (pumping.liftGraceMinutes) in which the detector does not quarantine the
 * scope again, so an operator who judged a quarantine wrong is not overruled a minute later.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import type { PumpingDefense, QuarantineScope } from '../../service/pumping.ts';
import { QUARANTINE_SCOPE_PATTERN, prefixScopeProblem, quarantineJson } from '../../service/quarantine-view.ts';
import { ApiError } from '../../service/errors.ts';
import { regionProblem } from '../../lib/regions.ts';
import { authenticate } from '../auth.ts';
import { errorResponses, NoQuery } from '../schemas.ts';

const Scope = Type.String({ pattern: QUARANTINE_SCOPE_PATTERN, description: 'prefix:+62812 or country:ID' });
const Mode = Type.Union([Type.Literal('challenge'), Type.Literal('block')]);

const QuarantineView = Type.Object({
  scope: Type.String(),
  mode: Type.String(),
  reason: Type.String(),
  since: Type.String({ format: 'date-time' }),
  until: Type.String({ format: 'date-time' }),
  remainingSeconds: Type.Integer(),
  inEffect: Type.Boolean({ description: 'false for a prefix of another length than the calling code + limits.prefixDigits: it applies to no send (lift it)' }),
});

export const StartBody = Type.Object(
  {
    scope: Scope,
    mode: Type.Optional(Mode),
    minutes: Type.Integer({ minimum: 1, maximum: 30 * 24 * 60 }),
    reason: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const iso = (ms: number) => new Date(ms).toISOString();

export function adminQuarantineRoutes(ctx: AppContext, defense: PumpingDefense): FastifyPluginAsync {
  return async function adminQuarantines(app) {
    app.addHook('preHandler', authenticate(ctx));
    const common = { config: { scope: 'admin' as const } };
    // Reads need the `read` scope (admin keys have it: service/api-keys.ts grants).
    const reading = { config: { scope: 'read' as const } };
    const security = [{ apiKey: [] }];

    app.get(
      '/v1/admin/quarantines',
      { ...reading, schema: { operationId: 'listQuarantines', tags: ['admin'], summary: 'Active SMS-pumping quarantines', security, querystring: NoQuery, response: { 200: Type.Object({ quarantines: Type.Array(QuarantineView) }), ...errorResponses(401, 403) } } },
      async () => {
        const now = ctx.clock();
        const list = await defense.list(now);
        return {
          quarantines: list.map((q) => quarantineJson(q, now, ctx.policy().limits.prefixDigits)),
        };
      },
    );

    app.post<{ Body: Static<typeof StartBody> }>(
      '/v1/admin/quarantines',
      { ...common, schema: { operationId: 'startQuarantine', tags: ['admin'], summary: 'Quarantine a prefix or country by hand', security, body: StartBody, response: { 201: QuarantineView, ...errorResponses(400, 401, 403) } } },
      async (req, reply) => {
        const now = ctx.clock();
        const b = req.body;
        const kind = b.scope.startsWith('prefix:') ? 'prefix' : 'country';
        // As pauses and lists: a country no number has (UK, ZZ) would quarantine nothing.
        const problem = kind === 'country' ? regionProblem(b.scope.slice('country:'.length)) : null;
        if (problem !== null) throw new ApiError('invalid_request', { message: `body.scope ${problem}` });
        if (kind === 'prefix') {
          // Sends are matched to the quarantine of their own prefix (calling code + limits.prefixDigits): a range
          // of another length was accepted and listed, and never applied (an on-call review).
          const prefix = b.scope.slice('prefix:'.length);
          const problem = prefixScopeProblem(prefix, ctx.policy().limits.prefixDigits);
          if (problem !== null) {
            throw new ApiError('invalid_request', {
              message: `body.scope: ${problem}; to stop a range of another length, pause it (POST /v1/admin/pause {"prefix": "${prefix}"}) or quarantine each prefix in it`,
            });
          }
        }
        // Over a quarantine in force (an on-call extending it), what was not given stays as it is: its mode (the
        // default mode of the kind would turn an unproven country's block into a challenge) and its reason.
        const active = (await defense.list(now)).find((x) => x.scope === b.scope);
        const mode = b.mode ?? (active?.mode as 'challenge' | 'block' | undefined) ?? defense.config().mode[kind];
        const q = await defense.start(b.scope as QuarantineScope, mode, b.reason ?? active?.reason ?? 'manual', now, { by: req.apiKey?.id ?? null, minutes: b.minutes });
        if (!q) throw new ApiError('internal');
        return reply.status(201).send(quarantineJson(q, now, ctx.policy().limits.prefixDigits));
      },
    );

    app.delete<{ Params: { scope: string } }>(
      '/v1/admin/quarantines/:scope',
      {
        ...common,
        schema: {
          operationId: 'liftQuarantine',
          tags: ['admin'],
          summary: 'Lift a quarantine now',
          security,
          params: Type.Object({ scope: Scope }, { additionalProperties: false }),
          response: {
            200: Type.Object({
              lifted: Type.Boolean(),
              graceUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'The detector does not quarantine the scope again before this (pumping.liftGraceMinutes); null without a grace period' }),
            }),
            ...errorResponses(400, 401, 403, 404),
          },
        },
      },
      async (req) => {
        const lifted = await defense.lift(req.params.scope as QuarantineScope, req.apiKey?.id ?? null, ctx.clock());
        if (!lifted) throw new ApiError('not_found', { message: 'No active quarantine for this scope.' });
        return { lifted: true, graceUntil: lifted.graceUntil === null ? null : iso(lifted.graceUntil) };
      },
    );
  };
}
