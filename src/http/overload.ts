/**
 * A bound on the requests handled at once. Past it, new requests get 503 with `Retry-After` before their
 * handler runs, so a flood costs us a parse each instead of growing queues in the store, the sender and
 * memory until the process falls over. Counted on the raw response's `close`, which fires exactly once
 * whether the response finished or the client went away.
 *
 * A request takes its slot once its body has arrived (`preValidation`), not when its headers have: a client
 * that announces a body and sends it a byte at a time would otherwise hold a slot for the whole request
 * timeout, and a few hundred such connections from one address, without any key, kept the service at 503
 * for everyone. Waiting for a body costs a socket, which the request timeout bounds; what the slots protect
 * (store, senders) is only reached by handlers.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../service/errors.ts';

export const DEFAULT_MAX_IN_FLIGHT = 512;
/** Liveness must not fail because the process is busy: an orchestrator would restart it and make things worse. */
const EXEMPT = new Set(['/healthz']);

export function installOverloadGuard(app: FastifyInstance, maxInFlight: number): { inFlight(): number } {
  let inFlight = 0;
  app.addHook('preValidation', async (req, reply) => {
    if (req.routeOptions.url !== undefined && EXEMPT.has(req.routeOptions.url)) return;
    if (inFlight >= maxInFlight) throw new ApiError('unavailable', { retryAfter: 1 });
    inFlight++;
    reply.raw.once('close', () => {
      inFlight--;
    });
  });
  return { inFlight: () => inFlight };
}
