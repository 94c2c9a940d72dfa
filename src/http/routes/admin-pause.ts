/**
 * The emergency switch over HTTP: `POST /v1/admin/pause` and `POST /v1/admin/resume` with exactly one of
 * `{"all": true}`, `{"country": "ID"}` or `{"prefix": "+62812"}`; `GET /v1/admin/pauses` lists them.
 * The change applies on this instance at once and on the others within their state refresh (1 s).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { ApiError } from '../../service/errors.ts';
import { PauseError, listPauses, parsePauseScope, pauseSends, pauseView, resumeSends, type PauseScope } from '../../monitoring/pause.ts';
import { authenticate } from '../auth.ts';
import { errorResponses, NoQuery } from '../schemas.ts';
import { maskedForRead, maskedScope, seesInFull } from '../../service/read-masking.ts';

const ScopeFields = {
  all: Type.Optional(Type.Literal(true)),
  country: Type.Optional(Type.String({ maxLength: 8 })),
  prefix: Type.Optional(Type.String({ maxLength: 24 })),
  channel: Type.Optional(Type.String({ maxLength: 16, description: 'sms, whatsapp, voice or email' })),
};
const PauseBody = Type.Object(
  { ...ScopeFields, note: Type.Optional(Type.String({ maxLength: 500 })), ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86_400 })) },
  { additionalProperties: false },
);
const ResumeBody = Type.Object({ ...ScopeFields, note: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
const ResumeView = Type.Object({
  scope: Type.String(),
  resumed: Type.Boolean({ description: 'false when the scope was not paused' }),
  stillPaused: Type.Array(Type.String(), { description: 'Scopes that remain paused (resuming all does not lift a country or prefix pause)' }),
  warning: Type.Optional(Type.String({ description: 'For a pause the budget breaker set: it does not trip again for that country today' })),
});

const PauseView = Type.Object({
  scope: Type.String(),
  since: Type.String(),
  note: Type.Union([Type.String(), Type.Null()]),
  by: Type.Union([Type.String(), Type.Null()]),
  until: Type.Union([Type.String(), Type.Null()]),
});

function scopeOf(body: { all?: boolean; country?: string; prefix?: string }): PauseScope {
  try {
    return parsePauseScope(body);
  } catch (err) {
    if (err instanceof PauseError) throw new ApiError('invalid_request', { message: err.message });
    throw err;
  }
}

export function adminPauseRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function adminPause(app) {
    app.addHook('preHandler', authenticate(ctx));
    const common = { config: { scope: 'admin' as const } };
    // Reads need the `read` scope (admin keys have it: service/api-keys.ts grants).
    const reading = { config: { scope: 'read' as const } };
    const security = [{ apiKey: [] }];

    app.post<{ Body: Static<typeof PauseBody> }>(
      '/v1/admin/pause',
      { ...common, schema: { operationId: 'pause', tags: ['admin', 'monitoring'], summary: 'Pause sends: all, a country or a prefix', security, body: PauseBody, response: { 200: PauseView, ...errorResponses(400, 401, 403) } } },
      async (req) => {
        const scope = scopeOf(req.body);
        const now = ctx.clock();
        const { scope: name, record } = await pauseSends(ctx.store, scope, { now, note: req.body.note ?? null, by: req.apiKey?.id ?? null, ttlMs: req.body.ttlSeconds ? req.body.ttlSeconds * 1000 : null });
        ctx.state.invalidate();
        req.log.warn({ scope: name, by: record.by }, 'sends paused');
        return pauseView(name, record);
      },
    );

    app.post<{ Body: Static<typeof ResumeBody> }>(
      '/v1/admin/resume',
      {
        ...common,
        schema: { operationId: 'resume', tags: ['admin', 'monitoring'], summary: 'Resume sends paused for a scope', security, body: ResumeBody, response: { 200: ResumeView, ...errorResponses(400, 401, 403) } },
      },
      async (req) => {
        const { note, ...fields } = req.body;
        const scope = scopeOf(fields);
        const out = await resumeSends(ctx.store, scope, { now: ctx.clock(), by: req.apiKey?.id ?? null, note: note ?? null });
        ctx.state.invalidate();
        req.log.warn({ scope: out.scope, stillPaused: out.stillPaused }, 'sends resumed');
        return { scope: out.scope, resumed: out.existed, stillPaused: out.stillPaused, ...(out.warning ? { warning: out.warning } : {}) };
      },
    );

    app.get(
      '/v1/admin/pauses',
      { ...reading, schema: { operationId: 'listPauses', tags: ['admin', 'monitoring'], summary: 'Active pauses', security, querystring: NoQuery, response: { 200: Type.Object({ pauses: Type.Array(PauseView) }), ...errorResponses(401, 403) } } },
      async (req) => {
        const pauses = (await listPauses(ctx.store, ctx.clock())).map((p) => pauseView(p.scope, p.record));
        if (seesInFull(req.apiKey)) return { pauses };
        return { pauses: pauses.map((p) => ({ ...p, scope: maskedScope(p.scope), note: maskedForRead(p.note) })) };
      },
    );
  };
}
