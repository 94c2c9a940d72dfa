import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { errorResponses } from '../schemas.ts';

/** `/healthz`: the process answers. `/readyz`: the store answers too (load balancers use this one). */
export function healthRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function health(app) {
    const Ok = Type.Object({ status: Type.String() });
    app.get('/healthz', { schema: { operationId: 'health', tags: ['health'], summary: 'Liveness: the process answers', response: { 200: Ok } } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { operationId: 'readiness', tags: ['health'], summary: 'Readiness: the store answers and takes writes, and the server is not draining', response: { 200: Ok, ...errorResponses(503) } } }, async (_req, reply) => {
      // Shutting down (server.drainMs): still serving, but a load balancer should stop routing here.
      if (ctx.lifecycle.draining) return reply.code(503 as 200).header('retry-after', '5').send({ error: { code: 'unavailable', message: 'Shutting down.' } });
      try {
        await ctx.store.ping();
        return { status: 'ready' };
      } catch (err) {
        // Not only "unreachable": a full disk, a read-only replica, a deleted file. The reason goes to the log,
        // not to whoever asks (the probe needs no key).
        ctx.log.warn({ err }, 'readiness: the store cannot serve requests');
        return reply.code(503 as 200).header('retry-after', '5').send({ error: { code: 'unavailable', message: 'The store cannot serve requests now (the server log says why).' } });
      }
    });
  };
}
