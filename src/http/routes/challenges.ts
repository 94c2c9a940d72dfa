import type { FastifyPluginAsync } from 'fastify';
import cors from '@fastify/cors';
import type { AppContext } from '../../service/context.ts';
import { ApiError } from '../../service/errors.ts';
import { ChallengeView, errorResponses } from '../schemas.ts';
import { ownOrigin } from '../origin.ts';
import { ruleConfig } from '../../engine/policy.ts';

/**
 * `POST /v1/challenges`: called by widget.js from the end user's browser, so no API key. The client
 * address is the socket's (or a trusted proxy's X-Forwarded-For), CORS is limited to configured origins,
 * and the endpoint is rate limited per address. Proof-of-work difficulty rises while any scope is throttled.
 */
export function challengeRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function challenges(app) {
    const origins = ctx.config.cors.origins;
    // Cross-origin access is granted for this endpoint only: the plugin's preflight route answers every
    // path, so the delegator denies any other URL (admin APIs and the dashboard are never cross-origin).
    await app.register(cors, {
      delegator: (req, cb) => {
        const path = (req.url ?? '').split('?')[0];
        cb(null, path === '/v1/challenges' && origins.length ? { origin: origins, methods: ['POST'], allowedHeaders: ['content-type'], maxAge: 600 } : { origin: false });
      },
    });

    app.post(
      '/v1/challenges',
      {
        schema: {
          operationId: 'createChallenge',
          tags: ['bot filtering'],
          summary: 'Get a signed one-time form token and a proof-of-work challenge (browser)',
          // No body: the widget posts without one (a JSON content-type would force a CORS preflight).
          response: { 201: ChallengeView, ...errorResponses(403, 429) },
        },
      },
      async (req, reply) => {
        const now = ctx.clock();
        const origin = req.headers.origin;
        // Browsers send Origin on same-origin POSTs too: a page of this server (the demo, an integrator's page
        // behind the same host) is always allowed; other origins only when listed.
        if (origin && origins.length > 0 && !origins.includes(origin) && origin !== ownOrigin(req, ctx)) throw new ApiError('forbidden', { message: 'This origin is not allowed.' });
        // Refreshed first: the limit is the policy's, which another instance may have changed.
        await ctx.state.fresh();
        const per = ctx.policy().limits.challengesPerIp;
        const rate = await ctx.store.consumeLimits([{ reason: 'rate_limited.challenge', key: `ch:${req.clientKey}`, limit: per.limit, windowMs: per.windowSeconds * 1000 }], now);
        if (!rate.allowed) throw new ApiError('rate_limited', { retryAfter: Math.ceil((rate.denied[0]?.retryAfterMs ?? 60_000) / 1000) });
        // The page's destination is not known yet: the big puzzle only while the whole service is tightened
        // (`global`), and only while the `throttled` rule is live (in shadow or off it must not cost users
        // anything: engine/decide.ts). A tightened country or prefix asks for it in its own challenge
        // (`challenge_required`) instead: ~30 requests to a quiet prefix must not make every visitor's browser
        // pay twenty times the work.
        const live = (ruleConfig(ctx.policy(), 'throttled').mode ?? 'live') === 'live';
        const level = live && ctx.state.throttle('global')?.tightenedSince != null ? 'high' : 'normal';
        const ua = typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : null;
        const challenge = await ctx.challenger.issue({ ip: req.clientIp, userAgent: ua, level, now });
        return reply.status(201).send(challenge);
      },
    );
  };
}
