/**
 * A bound on the requests handled at once. Past it, new requests get 503 with `Retry-After` before their
 * body is read, so a flood costs us a header parse each instead of growing queues in the store, the
 * sender and memory until the process falls over. Counted on the raw response's `close`, which fires
 * exactly once whether the response finished or the client went away.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../service/errors.ts';

export const DEFAULT_MAX_IN_FLIGHT = 512;
/** Liveness must not fail because the process is busy: an orchestrator would restart it and make things worse. */
const EXEMPT = new Set(['/healthz']);

export function installOverloadGuard(app: FastifyInstance, maxInFlight: number): { inFlight(): number } {
  let inFlight = 0;
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url !== undefined && EXEMPT.has(req.routeOptions.url)) return;
    if (inFlight >= maxInFlight) throw new ApiError('unavailable', { retryAfter: 1 });
    inFlight++;
    reply.raw.once('close', () => {
      inFlight--;
    });
  });
  return { inFlight: () => inFlight };
}
