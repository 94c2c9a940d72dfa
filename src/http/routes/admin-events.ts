/**
 * `GET /v1/admin/events`: the audit log, newest first, filtered and paged with an opaque cursor.
 *
 * Paging is by the store's sequence number (never by time: many events share a millisecond), so a page
 * boundary never skips or repeats an event even while new events arrive. Numbers are masked unless the
 * caller asks otherwise; the default follows `privacy.maskNumbersInLogs`.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { ApiError } from '../../service/errors.ts';
import { eventView, numberMasker } from '../../service/audit-export.ts';
import { recordPersonalDataRead } from '../../service/data-reads.ts';
import { seesInFull } from '../../service/read-masking.ts';
import type { EventQuery } from '../../store/interface.ts';
import { authenticate } from '../auth.ts';
import { parseTime } from '../time.ts';
import { channelOfDestination, destinationKey } from '../../service/destination.ts';
import { parseIp } from '../../signals/ip.ts';
import { errorResponses } from '../schemas.ts';

export const EventsQuery = Type.Object(
  {
    // As in /v1/admin/stats: an ISO 8601 date-time or epoch milliseconds (parseTime refuses anything else).
    from: Type.Optional(Type.String({ maxLength: 40, description: 'Events at or after this time: ISO 8601 date-time or epoch milliseconds.' })),
    to: Type.Optional(Type.String({ maxLength: 40, description: 'Events before this time: ISO 8601 date-time or epoch milliseconds.' })),
    type: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z0-9_.]+$', description: 'send, check, quarantine.start, throttle.tightened …' })),
    number: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'Destination: a phone number (any format; normalised to E.164) or an email address (normalised as the email channel keys it).' })),
    prefix: Type.Optional(Type.String({ pattern: '^\\+[1-9][0-9]{0,14}$', description: 'Destinations that start with this, any length: +62 (a country), +62812 (a range), +628129999 (a block inside it).' })),
    ip: Type.Optional(Type.String({ maxLength: 64 })),
    device: Type.Optional(Type.String({ maxLength: 128 })),
    decision: Type.Optional(Type.String({ maxLength: 32, pattern: '^[a-z_]+$', description: 'allow, challenge, block, tarpit, approved, denied …' })),
    reason: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z0-9_.:]+$' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    // 16 digits: the Redis store's seq is its stream id (milliseconds × 1000 + n), 16 digits since 2001 (a review
    // found its cursors refused with 15). Within Number.MAX_SAFE_INTEGER (checked in the handler).
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$', description: 'nextCursor of the previous page.' })),
    mask: Type.Optional(Type.Boolean({ description: 'Mask phone numbers and email addresses (default: privacy.maskNumbersInLogs; always for a read key, which gets 403 for mask=false).' })),
  },
  { additionalProperties: false },
);

const EventView = Type.Object(
  {
    seq: Type.Union([Type.Integer(), Type.Null()]),
    id: Type.String(),
    at: Type.String({ format: 'date-time' }),
    type: Type.String(),
    to: Type.Union([Type.String(), Type.Null()]),
    prefix: Type.Union([Type.String(), Type.Null()]),
    country: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    deviceId: Type.Union([Type.String(), Type.Null()]),
    decision: Type.Union([Type.String(), Type.Null()]),
    reasons: Type.Array(Type.String()),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);

const EventsPage = Type.Object({
  events: Type.Array(EventView),
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export function adminEventRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function adminEvents(app) {
    app.addHook('preHandler', authenticate(ctx));

    app.get<{ Querystring: Static<typeof EventsQuery> }>(
      '/v1/admin/events',
      {
        config: { scope: 'read' },
        schema: {
          operationId: 'listEvents',
          tags: ['admin'],
          summary: 'Audit events, newest first',
          security: [{ apiKey: [] }],
          querystring: EventsQuery,
          response: { 200: EventsPage, ...errorResponses(400, 401, 403, 429) },
        },
      },
      async (req) => {
        const qs = req.query;
        // A read-only key sees numbers and addresses masked, whatever the default (service/api-keys.ts).
        const fullRights = seesInFull(req.apiKey);
        if (qs.mask === false && !fullRights) throw new ApiError('forbidden', { message: 'Numbers in full (mask=false) need an admin key.' });
        const limit = qs.limit ?? 100;
        const q: EventQuery = { order: 'desc', limit };
        // The schema checked the format; Date.parse can still refuse a valid-looking one (a leap second, :60).
        if (qs.from !== undefined) q.from = parseTime(qs.from, 'from');
        if (qs.to !== undefined) q.to = parseTime(qs.to, 'to');
        if (q.from !== undefined && q.to !== undefined && !(q.from < q.to)) throw new ApiError('invalid_request', { message: 'from must be before to' });
        if (qs.type !== undefined) q.type = qs.type;
        if (qs.number !== undefined) {
          // An address is an email channel's destination; anything else is read as a phone number.
          const d = destinationKey(ctx.signals, channelOfDestination(qs.number), qs.number);
          if (!d.ok) throw new ApiError('invalid_request', { message: `querystring.number is not a valid phone number or email address: ${d.message}` });
          q.number = d.key;
        }
        if (qs.prefix !== undefined) q.prefix = qs.prefix;
        if (qs.ip !== undefined) {
          // Events store the canonical form (2001:db8::1, not 2001:DB8:0::1): match that.
          const ip = parseIp(qs.ip);
          if (!ip.ok) throw new ApiError('invalid_request', { message: 'querystring.ip is not an IP address' });
          q.ip = ip.ip;
        }
        if (qs.device !== undefined) q.deviceId = qs.device;
        if (qs.decision !== undefined) q.decision = qs.decision;
        if (qs.reason !== undefined) q.reason = qs.reason;
        if (qs.cursor !== undefined) {
          q.before = Number(qs.cursor);
          if (!Number.isSafeInteger(q.before)) throw new ApiError('invalid_request', { message: 'querystring.cursor is not a cursor this server handed out' });
        }

        const events = await ctx.store.queryEvents(q);
        // Only events on disk (Store.settled): a cursor must not point past one a crash could take back.
        await ctx.store.settled?.();
        const masker = numberMasker((qs.mask ?? (ctx.config.privacy.maskNumbersInLogs || !fullRights)) ? 'mask' : 'none');
        // Asking for numbers in full where they are masked by default is recorded (service/data-reads.ts).
        if (masker.mode === 'none' && ctx.config.privacy.maskNumbersInLogs) {
          // The filters as applied: the number normalised, so the record masks it (a raw spelling would not be).
          const { limit: _limit, cursor: _cursor, mask: _mask, ...filters } = qs;
          await recordPersonalDataRead(ctx.store, { now: ctx.clock(), by: req.apiKey?.id ?? null, what: 'events', count: events.length, filters: { ...filters, number: q.number, ip: q.ip } });
        }
        const last = events[events.length - 1];
        return {
          events: events.map((e) => eventView(e, masker)),
          // A full page may have more behind it; a short one is the end.
          nextCursor: events.length === limit && last?.seq !== undefined ? String(last.seq) : null,
        };
      },
    );
  };
}

/** Layer: the events endpoint (registered in src/service/layers.ts). Retention is the maintenance loop's. */
export function installAuditLog(ctx: AppContext): void {
  ctx.extraRoutes.push(adminEventRoutes);
}
