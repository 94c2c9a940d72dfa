/**
 * Delivery receipt callbacks (public: no API key; authenticated by the sender's signature instead).
 *
 *   POST /v1/receipts/twilio/:sender    Twilio status callback (form-encoded, X-Twilio-Signature)
 *   POST /v1/receipts/webhook/:sender   webhook sender receipt (JSON, X-OTPShield-Signature)
 *
 * `:sender` is the sender's name in the configuration (its type when unnamed). Bodies are read raw in this
 * plugin only: the signature covers the exact bytes (webhook) or the exact form fields (Twilio).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { ApiError } from '../../service/errors.ts';
import { verifyTwilioSignature } from '../../delivery/twilio.ts';
import { SIGNATURE_HEADER, verifyWebhookSignature } from '../../delivery/webhook.ts';
import { monitoringOf } from '../../monitoring/monitor.ts';
import { assertStorableText } from '../storable-text.ts';
import { receiptSenders, recordReceipt, scrubReceiptError, twilioFinalStatus, webhookFinalStatus, type ReceiptSender } from '../../monitoring/receipts.ts';
import { errorResponses } from '../schemas.ts';

const Params = Type.Object({ sender: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }) }, { additionalProperties: false });

export function receiptRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function receipts(app) {
    const mon = monitoringOf(ctx);
    if (!mon || !mon.config().receipts.enabled) return;
    const senders = receiptSenders(ctx.config.senders);
    if (senders.size === 0) return;

    // Raw bodies for signature checks (this plugin's encapsulation context only).
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
      const form: Record<string, string> = {};
      for (const [k, v] of new URLSearchParams(body as string)) form[k] = v;
      done(null, form);
    });

    const deps = () => ({ store: ctx.store, signals: ctx.signals, prefixDigits: ctx.policy().limits.prefixDigits });
    const reject = (sender: string, reason: string): never => {
      mon.metrics.receiptsRejected.inc({ sender, reason });
      throw new ApiError('forbidden', { message: 'The callback signature is not valid.' });
    };
    const senderOf = (req: FastifyRequest, type: ReceiptSender['type']): ReceiptSender => {
      const name = (req.params as { sender: string }).sender;
      const s = senders.get(name);
      if (!s || s.type !== type) {
        mon.metrics.receiptsRejected.inc({ sender: 'unknown', reason: 'unknown_sender' });
        throw new ApiError('not_found', { message: 'No such sender.' });
      }
      return s;
    };

    app.post(
      '/v1/receipts/twilio/:sender',
      { schema: { operationId: 'twilioReceipt', tags: ['receipts'], summary: 'Twilio status callback', params: Params, response: { 204: Type.Null({ description: 'Received (recorded once when final)' }), ...errorResponses(400, 403, 404, 415) } } },
      async (req, reply) => {
        const s = senderOf(req, 'twilio');
        const form = req.body;
        if (!form || typeof form !== 'object' || Array.isArray(form) || typeof (form as Record<string, unknown>).MessageSid !== 'string') {
          throw new ApiError('invalid_request', { message: 'Expected a form-encoded Twilio status callback.' });
        }
        const params = form as Record<string, string>;
        // Twilio signs the URL it called: the configured callback URL, else this request's public URL.
        const base = mon.config().receipts.publicUrl?.replace(/\/+$/, '') ?? `${req.protocol}://${req.host}`;
        const url = s.statusCallbackUrl ?? `${base}${req.url}`;
        const sig = req.headers['x-twilio-signature'];
        if (!verifyTwilioSignature(s.secret, url, params, typeof sig === 'string' ? sig : undefined)) reject(s.name, 'bad_signature');
        const status = twilioFinalStatus(params.MessageStatus ?? params.SmsStatus);
        if (status) {
          await recordReceipt(deps(), {
            sender: s.name,
            messageId: params.MessageSid!,
            to: params.To ?? null,
            // The Twilio sender takes sms and whatsapp only; WhatsApp addresses are `whatsapp:+…`.
            channel: params.To?.startsWith('whatsapp:') ? 'whatsapp' : 'sms',
            status,
            error: params.ErrorCode ? `twilio:${params.ErrorCode}` : null,
            verificationId: null,
            now: ctx.clock(),
          });
        }
        return reply.status(204).send();
      },
    );

    app.post(
      '/v1/receipts/webhook/:sender',
      { schema: { operationId: 'webhookReceipt', tags: ['receipts'], summary: 'Webhook sender delivery receipt', params: Params, response: { 200: Type.Object({ recorded: Type.Boolean(), reason: Type.Optional(Type.Union([Type.Literal('not_final'), Type.Literal('unknown_verification'), Type.Literal('duplicate')])) }), ...errorResponses(400, 403, 404, 415) } } },
      async (req) => {
        const s = senderOf(req, 'webhook');
        const raw = Buffer.isBuffer(req.body) ? req.body : null;
        if (raw === null) throw new ApiError('unsupported_media_type');
        const header = req.headers[SIGNATURE_HEADER.toLowerCase()];
        const check = verifyWebhookSignature(s.secret, raw, typeof header === 'string' ? header : undefined, ctx.clock() / 1000, mon.config().receipts.toleranceSeconds);
        if (!check.ok) reject(s.name, check.reason);
        let body: unknown;
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new ApiError('invalid_request', { message: 'The request body is not valid JSON.' });
        }
        assertStorableText('body', body);
        const b = (body ?? {}) as { id?: unknown; status?: unknown; providerId?: unknown; error?: unknown };
        if (typeof b.id !== 'string' || b.id.length > 64) throw new ApiError('invalid_request', { message: 'body.id must be the verification id that was sent' });
        const status = webhookFinalStatus(b.status);
        if (!status) return { recorded: false, reason: 'not_final' };
        const v = await ctx.store.getVerification(b.id);
        if (!v) return { recorded: false, reason: 'unknown_verification' };
        const recorded = await recordReceipt(deps(), {
          sender: s.name,
          messageId: typeof b.providerId === 'string' && b.providerId.length <= 200 ? b.providerId : b.id,
          to: v.to,
          channel: v.channel,
          status,
          error: typeof b.error === 'string' ? scrubReceiptError(b.error, ctx.config.codes.length).slice(0, 200) : null,
          verificationId: v.id,
          now: ctx.clock(),
        });
        return { recorded, ...(recorded ? {} : { reason: 'duplicate' }) };
      },
    );
  };
}

