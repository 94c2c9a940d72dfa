/**
 * Requests about one person over HTTP (GDPR Art. 15 access, Art. 17 erasure; docs/privacy.md), the same store
 * step as `otp-shield subject show|erase`, for teams that answer such requests from their own back office:
 *
 *   POST /v1/admin/subjects/access {"destination": "+4915112345678"}
 *   POST /v1/admin/subjects/erase  {"destination": "+4915112345678", "note": "DSR-1234"}
 *
 * The destination travels in the body, not the path: paths end up in proxies' and load balancers' access logs.
 * An access is recorded as a `data.read` event, an erasure as a `subject.erase` event; neither names the person.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { ApiError } from '../../service/errors.ts';
import { recordPersonalDataRead } from '../../service/data-reads.ts';
import { counts, subjectRequest, subjectView, NOT_IN_THE_STORE } from '../../service/subjects.ts';
import { authenticate } from '../auth.ts';
import { Loose, errorResponses } from '../schemas.ts';

const Destination = Type.String({ minLength: 1, maxLength: 254, description: 'A phone number (any format; normalised to E.164) or an email address' });
const AccessBody = Type.Object({ destination: Destination }, { additionalProperties: false });
const EraseBody = Type.Object(
  {
    destination: Destination,
    note: Type.Optional(Type.String({ maxLength: 200, description: 'A reference kept with the record of the erasure, such as the request ticket (not the number)' })),
  },
  { additionalProperties: false },
);
const Found = Type.Object({
  verifications: Type.Integer(),
  events: Type.Integer(),
  listEntries: Type.Integer(),
  keys: Type.Integer(),
  journal: Type.Integer(),
});
const AccessView = Type.Object({
  destination: Type.String({ description: 'The destination as stored: E.164, or the email channel key of an address' }),
  names: Type.Array(Type.String()),
  found: Found,
  verifications: Type.Array(Loose('A verification, with the client evidence it holds; stored code hashes are left out')),
  events: Type.Array(Loose('An audit event that names the destination')),
  listEntries: Type.Array(Loose('A block/allow list entry whose value is the destination, or whose note names it')),
  keys: Type.Array(Type.String({ description: 'A counter, one-time marker or setting key that names it (the values are counts and states)' })),
  journal: Type.Array(Type.String()),
});
const EraseView = Type.Object({
  destination: Type.String(),
  erased: Found,
  notErased: Type.String({ description: 'What is outside the store and so not erased' }),
});

export function adminSubjectRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function adminSubjects(app) {
    app.addHook('preHandler', authenticate(ctx));
    app.post<{ Body: Static<typeof AccessBody> }>(
      '/v1/admin/subjects/access',
      {
        config: { scope: 'admin' },
        schema: {
          operationId: 'subjectAccess',
          tags: ['admin'],
          summary: "An access request: every stored record naming a number or an email address, in full (recorded as a data.read event)",
          security: [{ apiKey: [] }],
          body: AccessBody,
          response: { 200: AccessView, ...errorResponses(400, 401, 403) },
        },
      },
      async (req) => {
        const by = req.apiKey?.id ?? null;
        const r = await subjectRequest({ store: ctx.store, signals: ctx.signals }, req.body.destination, { erase: false, now: ctx.clock(), by: by ?? 'api' });
        if (!r.ok) throw new ApiError('invalid_request', { message: `body.destination is ${r.message}` });
        const found = counts(r.records);
        await recordPersonalDataRead(ctx.store, { now: ctx.clock(), by, what: 'subject', count: found.verifications + found.events + found.listEntries + found.keys + found.journal, filters: { number: r.destination } });
        return { destination: r.destination, names: r.names, found, ...subjectView(r.records) };
      },
    );
    app.post<{ Body: Static<typeof EraseBody> }>(
      '/v1/admin/subjects/erase',
      {
        config: { scope: 'admin' },
        schema: {
          operationId: 'subjectErase',
          tags: ['admin'],
          summary: 'An erasure request: delete every stored record naming a number or an email address, in one store step (recorded as a subject.erase event that names nobody)',
          security: [{ apiKey: [] }],
          body: EraseBody,
          response: { 200: EraseView, ...errorResponses(400, 401, 403) },
        },
      },
      async (req) => {
        const by = req.apiKey?.id ?? 'api';
        const r = await subjectRequest({ store: ctx.store, signals: ctx.signals, state: ctx.state }, req.body.destination, { erase: true, now: ctx.clock(), by, note: req.body.note ?? null });
        if (!r.ok) throw new ApiError('invalid_request', { message: `body.destination is ${r.message}` });
        // Logged without the destination: the log would keep what was just erased.
        req.log.warn({ by, erased: counts(r.records) }, 'subject erased');
        return { destination: r.destination, erased: counts(r.records), notErased: NOT_IN_THE_STORE };
      },
    );
  };
}
