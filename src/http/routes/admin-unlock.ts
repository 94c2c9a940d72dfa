/**
 * `POST /v1/admin/unlock {"target": "+4917612345678"}` (a number, an email address or an IP): reset the counters
 * that refuse it — send budgets, cooldowns, failed-check locks, escalation — and record the unlock
 * (service/unlock.ts; docs/rate-limits.md, "Unlocking").
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { ApiError } from '../../service/errors.ts';
import { unlock } from '../../service/unlock.ts';
import { authenticate } from '../auth.ts';
import { errorResponses } from '../schemas.ts';

const UnlockBody = Type.Object(
  { target: Type.String({ minLength: 1, maxLength: 254, description: 'A phone number in international form, an email address, or an IP address' }) },
  { additionalProperties: false },
);
const UnlockView = Type.Object({
  to: Type.Optional(Type.String({ description: 'The destination unlocked, normalised: E.164, or the email channel key of an address' })),
  ip: Type.Optional(Type.String()),
  countersReset: Type.Integer({ description: 'Counter keys reset (whether they held counts or not)' }),
});

export function adminUnlockRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function adminUnlock(app) {
    app.addHook('preHandler', authenticate(ctx));
    app.post<{ Body: Static<typeof UnlockBody> }>(
      '/v1/admin/unlock',
      {
        config: { scope: 'admin' },
        schema: {
          operationId: 'unlock',
          tags: ['admin'],
          summary: 'Unlock a number, an email address or an IP: reset its send limits, cooldowns, failed-check locks and escalation',
          security: [{ apiKey: [] }],
          body: UnlockBody,
          response: { 200: UnlockView, ...errorResponses(400, 401, 403) },
        },
      },
      async (req) => {
        const r = await unlock({ store: ctx.store, signals: ctx.signals, policy: ctx.policy() }, req.body.target, { now: ctx.clock(), by: req.apiKey?.id ?? null });
        if (!r.ok) throw new ApiError('invalid_request', { message: `body.target is ${r.message}` });
        req.log.warn({ target: r.target, by: req.apiKey?.id ?? null }, 'unlocked');
        return r.target.kind === 'ip' ? { ip: r.target.ip, countersReset: r.keys } : { to: r.target.to, countersReset: r.keys };
      },
    );
  };
}
