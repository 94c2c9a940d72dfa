import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { addListEntry, LIST_KINDS, listView, removeListEntry } from '../../service/lists.ts';
import { ApiError } from '../../service/errors.ts';
import { maskedPrefix } from '../../service/audit-export.ts';
import { maskedForRead, READ_MASK, seesInFull } from '../../service/read-masking.ts';
import { authenticate } from '../auth.ts';
import { parseTime } from '../time.ts';
import { errorResponses } from '../schemas.ts';

const Action = Type.Union([Type.Literal('block'), Type.Literal('allow')]);

export const ListEntryBody = Type.Object(
  {
    list: Action,
    kind: Type.Union(LIST_KINDS.map((k) => Type.Literal(k))),
    // An email address has up to 254 characters.
    value: Type.String({ minLength: 1, maxLength: 254 }),
    note: Type.Optional(Type.String({ maxLength: 500 })),
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 365 * 86_400 })),
  },
  { additionalProperties: false },
);

const ListEntryView = Type.Object({
  id: Type.String(),
  list: Type.String(),
  kind: Type.String(),
  value: Type.String(),
  note: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
});

/** Block and allow lists: numbers, prefixes, IPs, CIDRs, devices, countries, email addresses and domains, with expiry and note. */
export function adminListRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function adminLists(app) {
    app.addHook('preHandler', authenticate(ctx));
    const common = { config: { scope: 'admin' as const } };
    // Reads need the `read` scope (admin keys have it: service/api-keys.ts grants).
    const reading = { config: { scope: 'read' as const } };
    const security = [{ apiKey: [] }];

    app.get<{ Querystring: { list?: 'block' | 'allow'; kind?: string } }>(
      '/v1/admin/lists',
      {
        ...reading,
        schema: {
          operationId: 'listListEntries',
          tags: ['admin'],
          summary: 'List block/allow entries',
          security,
          querystring: Type.Object({ list: Type.Optional(Action), kind: Type.Optional(ListEntryBody.properties.kind) }, { additionalProperties: false }),
          response: { 200: Type.Object({ entries: Type.Array(ListEntryView) }), ...errorResponses(401, 403) },
        },
      },
      async (req) => {
        const filter = { ...(req.query.list ? { list: req.query.list } : {}), ...(req.query.kind ? { kind: req.query.kind as never } : {}) };
        const entries = (await ctx.store.listEntries(ctx.clock(), filter)).map(listView);
        // A read-only key sees the numbers and addresses of entries masked, in their values and notes.
        if (seesInFull(req.apiKey)) return { entries };
        return { entries: entries.map((e) => ({ ...e, value: e.kind === 'prefix' ? maskedPrefix(e.value, READ_MASK) : READ_MASK(e.value), note: maskedForRead(e.note) })) };
      },
    );

    app.post<{ Body: Static<typeof ListEntryBody> }>(
      '/v1/admin/lists',
      { ...common, schema: { operationId: 'addListEntry', tags: ['admin'], summary: 'Add a block/allow entry', description: 'An entry already in force in that list (same kind and normalised value) is not added again: the answer is 200 with that entry, unchanged.', security, body: ListEntryBody, response: { 200: ListEntryView, 201: ListEntryView, ...errorResponses(400, 401, 403) } } },
      async (req, reply) => {
        const b = req.body;
        const now = ctx.clock();
        if (b.expiresAt !== undefined && b.ttlSeconds !== undefined) throw new ApiError('invalid_request', { message: 'Give expiresAt or ttlSeconds, not both.' });
        const expiresAt = b.expiresAt ? parseTime(b.expiresAt, 'expiresAt') : b.ttlSeconds ? now + b.ttlSeconds * 1000 : null;
        const res = await addListEntry(ctx, { list: b.list, kind: b.kind, value: b.value, note: b.note ?? null, expiresAt }, now, req.apiKey?.id ?? null);
        if (!res.ok) throw new ApiError('invalid_request', { message: res.message });
        // Already listed: the entry in force, 200 instead of 201 (a retried POST adds nothing).
        return reply.status(res.existed ? 200 : 201).send(listView(res.entry));
      },
    );

    app.delete<{ Params: { id: string } }>(
      '/v1/admin/lists/:id',
      {
        ...common,
        schema: {
          operationId: 'removeListEntry',
          tags: ['admin'],
          summary: 'Remove a block/allow entry',
          security,
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
          response: { 200: Type.Object({ removed: Type.Boolean() }), ...errorResponses(401, 403, 404) },
        },
      },
      async (req) => {
        const removed = await removeListEntry(ctx, req.params.id, ctx.clock(), req.apiKey?.id ?? null);
        if (!removed) throw new ApiError('not_found', { message: 'No such list entry.' });
        return { removed };
      },
    );
  };
}
