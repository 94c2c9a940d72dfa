/**
 * Generic webhook sender: POSTs the message as JSON to an operator-run endpoint that does the actual
 * delivery (their own SMS gateway, an email service...).
 *
 * The body is signed Stripe-style: `X-OTPShield-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
 * `"<t>.<raw body>"`. Binding the timestamp into the MAC lets receivers reject replays of a captured
 * request (which would otherwise re-send a code) by refusing old timestamps. The sign/verify helpers
 * are exported because alerts and delivery-receipt callbacks use the same scheme.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CHANNELS, type Channel } from '../store/interface.ts';
import { SenderConfigError, scrubCode, type OutboundMessage, type SendResult, type Sender } from './sender.ts';
import { DEFAULT_TIMEOUT_MS, clip, isRetryableStatus, parseJson, postOnce, validateHttpUrl } from './http.ts';
import { checkName, resolveChannels, resolveTimeout } from './options.ts';

export const SIGNATURE_HEADER = 'X-OTPShield-Signature';
export const TIMESTAMP_HEADER = 'X-OTPShield-Timestamp';
export const DEFAULT_TOLERANCE_SECONDS = 300;
/** Short secrets make the HMAC guessable offline from one captured request. */
export const MIN_SECRET_LENGTH = 16;

export interface WebhookSenderOptions {
  name?: string;
  url: string;
  secret: string;
  channels?: Channel[];
  timeoutMs?: number;
  /** Epoch milliseconds; injected so tests can pin the signature timestamp. */
  now?: () => number;
}

function hmacHex(secret: string, timestamp: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** Returns the full `X-OTPShield-Signature` header value: `t=<nowSeconds>,v1=<hex>`. */
export function signWebhookBody(secret: string, body: string | Uint8Array, nowSeconds: number): string {
  const t = Math.floor(nowSeconds);
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

export type WebhookVerifyResult =
  | { ok: true; timestamp: number }
  | { ok: false; reason: 'missing_header' | 'malformed_header' | 'bad_signature' | 'timestamp_out_of_tolerance' };

/**
 * Verify a signature header against the raw body (the exact bytes received, before any JSON parsing).
 * Several `v1=` entries are accepted (any may match) so a sender can sign with old and new secrets
 * during rotation. The timestamp must be within `toleranceSeconds` of `nowSeconds` in either direction.
 */
export function verifyWebhookSignature(
  secret: string,
  body: string | Uint8Array,
  header: string | undefined,
  nowSeconds: number,
  toleranceSeconds: number = DEFAULT_TOLERANCE_SECONDS,
): WebhookVerifyResult {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing_header' };
  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return { ok: false, reason: 'malformed_header' };
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,15}$/.test(value)) return { ok: false, reason: 'malformed_header' };
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (/^[0-9a-fA-F]{64}$/.test(value)) candidates.push(value.toLowerCase());
    }
    // Unknown keys (future schemes) are ignored, as Stripe receivers do.
  }
  if (timestamp === undefined || candidates.length === 0) return { ok: false, reason: 'malformed_header' };

  const expected = Buffer.from(hmacHex(secret, timestamp, body), 'utf8');
  let matched = false;
  for (const candidate of candidates) {
    // Both are 64 lowercase hex chars, so lengths are equal and timingSafeEqual cannot throw.
    // No early exit: the loop's cost does not depend on which candidate matched.
    if (timingSafeEqual(expected, Buffer.from(candidate, 'utf8'))) matched = true;
  }
  if (!matched) return { ok: false, reason: 'bad_signature' };
  if (Math.abs(Math.floor(nowSeconds) - timestamp) > toleranceSeconds) {
    return { ok: false, reason: 'timestamp_out_of_tolerance' };
  }
  return { ok: true, timestamp };
}

export function createWebhookSender(opts: WebhookSenderOptions): Sender {
  const name = checkName(opts.name ?? 'webhook');
  const url = validateHttpUrl(opts.url, 'url', name).toString();
  if (typeof opts.secret !== 'string' || opts.secret.length < MIN_SECRET_LENGTH) {
    throw new SenderConfigError(`secret must be at least ${MIN_SECRET_LENGTH} characters`, name);
  }
  const secret = opts.secret;
  const channels = resolveChannels(opts.channels, CHANNELS, CHANNELS, name);
  const timeoutMs = resolveTimeout(opts.timeoutMs, DEFAULT_TIMEOUT_MS, name);
  const now = opts.now ?? Date.now;

  const fail = (reason: string, retryable: boolean, status?: number): SendResult =>
    status === undefined
      ? { ok: false, sender: name, reason, retryable }
      : { ok: false, sender: name, reason, retryable, status };

  return {
    name,
    type: 'webhook',
    channels,
    async send(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      if (!channels.has(msg.channel)) return fail(`unsupported_channel:${msg.channel}`, false);
      const body = JSON.stringify({
        id: msg.verificationId,
        to: msg.to,
        channel: msg.channel,
        message: msg.text,
        code: msg.code,
        locale: msg.locale,
      });
      const t = Math.floor(now() / 1000);
      const outcome = await postOnce(url, {
        headers: {
          'content-type': 'application/json',
          'user-agent': 'otp-shield-webhook/1',
          [SIGNATURE_HEADER]: signWebhookBody(secret, body, t),
          [TIMESTAMP_HEADER]: String(t),
        },
        body,
        timeoutMs,
        signal,
      });
      switch (outcome.kind) {
        case 'aborted':
          return fail('webhook:aborted', false);
        case 'timeout':
          return fail('webhook:timeout', true);
        case 'network':
          return fail(`webhook:network ${clip(outcome.message, 100)}`, true);
        case 'response': {
          const { status, text } = outcome;
          if (status >= 200 && status < 300) {
            return { ok: true, sender: name, providerId: receiverId(text), detail: `http ${status}` };
          }
          // Redirects are not followed (see http.ts) and count as a config error, not a blip.
          const retryable = status >= 300 && status < 400 ? false : isRetryableStatus(status);
          // Scrubbed here too, so a sender used without the dispatcher still never leaks the code.
          const snippet = clip(scrubCode(text, msg.code), 120);
          return fail(`webhook:http_${status}${snippet ? ` ${snippet}` : ''}`, retryable, status);
        }
      }
    },
  };
}

/** Receivers may answer `{ "id": "..." }` (or `providerId`) to hand back their own message id. */
function receiverId(text: string): string | null {
  const json = parseJson(text);
  if (json && typeof json === 'object') {
    for (const key of ['providerId', 'id'] as const) {
      const v = (json as Record<string, unknown>)[key];
      if (typeof v === 'string' && v.length > 0 && v.length <= 200) return v;
    }
  }
  return null;
}
