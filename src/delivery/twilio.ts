/**
 * Twilio Programmable Messaging sender (SMS and WhatsApp), over plain `fetch`: the official SDK would
 * pull in a large dependency tree for one POST.
 *
 * `verifyTwilioSignature` implements Twilio's X-Twilio-Signature check for the status callbacks this
 * sender asks for, so the receipt route can reject forged delivery reports.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Channel } from '../store/interface.ts';
import { SenderConfigError, scrubCode, type OutboundMessage, type SendResult, type Sender } from './sender.ts';
import { DEFAULT_TIMEOUT_MS, clip, isRetryableStatus, parseJson, postOnce, validateHttpUrl } from './http.ts';
import { checkName, resolveChannels, resolveTimeout } from './options.ts';

export const TWILIO_DEFAULT_BASE_URL = 'https://api.twilio.com';
const SUPPORTED: readonly Channel[] = ['sms', 'whatsapp'];
/**
 * WhatsApp is opt-in: it needs a WhatsApp-enabled sender and (outside a 24 h session) approved
 * templates, so enabling it by default would turn every WhatsApp request into a provider error.
 */
const DEFAULT_CHANNELS: readonly Channel[] = ['sms'];
const WHATSAPP_PREFIX = 'whatsapp:';

export interface TwilioSenderOptions {
  name?: string;
  accountSid: string;
  authToken: string;
  /** E.164 number or alphanumeric sender id. Used when no messaging service is configured. */
  from?: string;
  /** Preferred over `from` when both are set: Twilio then picks the sender from the service's pool. */
  messagingServiceSid?: string;
  baseUrl?: string;
  statusCallbackUrl?: string;
  channels?: Channel[];
  timeoutMs?: number;
}

export function createTwilioSender(opts: TwilioSenderOptions): Sender {
  const name = checkName(opts.name ?? 'twilio');
  // The SID goes into the URL path; a strict pattern also rules out path tricks.
  if (!/^AC[0-9a-fA-F]{32}$/.test(opts.accountSid ?? '')) {
    throw new SenderConfigError('accountSid must look like AC followed by 32 hex characters', name);
  }
  if (typeof opts.authToken !== 'string' || opts.authToken.length === 0) {
    throw new SenderConfigError('authToken is required', name);
  }
  if (opts.messagingServiceSid !== undefined && !/^MG[0-9a-fA-F]{32}$/.test(opts.messagingServiceSid)) {
    throw new SenderConfigError('messagingServiceSid must look like MG followed by 32 hex characters', name);
  }
  const from = opts.from === undefined ? undefined : stripWhatsapp(opts.from.trim());
  if (opts.messagingServiceSid === undefined && (from === undefined || from === '')) {
    throw new SenderConfigError('either from or messagingServiceSid is required', name);
  }
  const base = validateHttpUrl(opts.baseUrl ?? TWILIO_DEFAULT_BASE_URL, 'baseUrl', name).toString().replace(/\/+$/, '');
  const statusCallback =
    opts.statusCallbackUrl === undefined ? undefined : validateHttpUrl(opts.statusCallbackUrl, 'statusCallbackUrl', name).toString();
  const channels = resolveChannels(opts.channels, SUPPORTED, DEFAULT_CHANNELS, name);
  const timeoutMs = resolveTimeout(opts.timeoutMs, DEFAULT_TIMEOUT_MS, name);
  const endpoint = `${base}/2010-04-01/Accounts/${opts.accountSid}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${opts.accountSid}:${opts.authToken}`).toString('base64')}`;
  const messagingServiceSid = opts.messagingServiceSid;

  const fail = (reason: string, retryable: boolean, status?: number): SendResult =>
    status === undefined
      ? { ok: false, sender: name, reason, retryable }
      : { ok: false, sender: name, reason, retryable, status };

  return {
    name,
    type: 'twilio',
    channels,
    async send(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      if (!channels.has(msg.channel)) return fail(`unsupported_channel:${msg.channel}`, false);
      const whatsapp = msg.channel === 'whatsapp';
      const form = new URLSearchParams();
      form.set('To', whatsapp ? withWhatsapp(msg.to) : msg.to);
      if (messagingServiceSid !== undefined) form.set('MessagingServiceSid', messagingServiceSid);
      else if (from !== undefined) form.set('From', whatsapp ? withWhatsapp(from) : from);
      form.set('Body', msg.text);
      if (statusCallback !== undefined) form.set('StatusCallback', statusCallback);

      const outcome = await postOnce(endpoint, {
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'user-agent': 'otp-shield-twilio/1',
        },
        body: form.toString(),
        timeoutMs,
        signal,
      });
      switch (outcome.kind) {
        case 'aborted':
          return fail('twilio:aborted', false);
        case 'timeout':
          return fail('twilio:timeout', true);
        case 'network':
          return fail(`twilio:network ${clip(outcome.message, 100)}`, true);
        case 'response': {
          const { status, text } = outcome;
          const json = parseJson(text);
          if (status >= 200 && status < 300) {
            const sid = field(json, 'sid');
            const state = field(json, 'status');
            return state === undefined
              ? { ok: true, sender: name, providerId: sid ?? null }
              : { ok: true, sender: name, providerId: sid ?? null, detail: state };
          }
          const retryable = status >= 300 && status < 400 ? false : isRetryableStatus(status);
          // Scrubbed before it is clipped: a cut through the echoed code would leave its first digits unmatched.
          return fail(twilioReason(status, json, (m) => scrubCode(m, msg.code)), retryable, status);
        }
      }
    },
  };
}

/** `twilio:21211 Invalid 'To' Phone Number`, or `twilio:http_503` when the body is not Twilio's JSON. */
function twilioReason(status: number, json: unknown, scrub: (message: string) => string): string {
  const rawCode = json && typeof json === 'object' ? (json as Record<string, unknown>)['code'] : undefined;
  const code = typeof rawCode === 'number' || (typeof rawCode === 'string' && /^\d+$/.test(rawCode)) ? String(rawCode) : undefined;
  const raw = field(json, 'message');
  const message = raw === undefined ? undefined : scrub(raw);
  if (code === undefined) return `twilio:http_${status}${message ? ` ${clip(message, 160)}` : ''}`;
  return `twilio:${code}${message ? ` ${clip(message, 160)}` : ''}`;
}

function field(json: unknown, key: string): string | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const v = (json as Record<string, unknown>)[key];
  return typeof v === 'string' ? v : undefined;
}

function withWhatsapp(address: string): string {
  return address.startsWith(WHATSAPP_PREFIX) ? address : `${WHATSAPP_PREFIX}${address}`;
}

function stripWhatsapp(address: string): string {
  return address.startsWith(WHATSAPP_PREFIX) ? address.slice(WHATSAPP_PREFIX.length) : address;
}

/**
 * Twilio's request signature: base64(HMAC-SHA1(authToken, url + concat(sorted keys, key + value))).
 * `url` is the full URL Twilio called, query string included, exactly as configured.
 */
export function computeTwilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  // Plain code-unit order, as Twilio's own libraries sort (not localeCompare).
  const keys = Object.keys(params).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let data = url;
  for (const key of keys) data += key + (params[key] ?? '');
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/**
 * Check an X-Twilio-Signature header. Like Twilio's libraries, the URL is also tried with the default
 * port removed/added, because Twilio signs whatever URL form it used and proxies often rewrite ports.
 */
export function verifyTwilioSignature(
  authToken: string,
  url: string,
  params: Record<string, string>,
  signatureHeader: string | undefined,
): boolean {
  if (!signatureHeader || authToken.length === 0) return false;
  const given = Buffer.from(signatureHeader.trim(), 'utf8');
  let ok = false;
  for (const candidate of urlPortVariants(url)) {
    const expected = Buffer.from(computeTwilioSignature(authToken, candidate, params), 'utf8');
    // timingSafeEqual needs equal lengths; a length mismatch reveals only the (public) length of a SHA-1 base64.
    if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}

/**
 * The URL as given, without its port, and with the scheme's default port. Done on the string, not via
 * `new URL`, which would normalise case and encoding and so change the signed bytes.
 */
function urlPortVariants(url: string): string[] {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)(:\d*)?(.*)$/s.exec(url);
  if (!m) return [url];
  const [, scheme = '', userinfo = '', host = '', , rest = ''] = m;
  const lower = scheme.toLowerCase();
  const defaultPort = lower === 'https://' ? '443' : lower === 'http://' ? '80' : undefined;
  const variants = new Set<string>([url, `${scheme}${userinfo}${host}${rest}`]);
  if (defaultPort !== undefined) variants.add(`${scheme}${userinfo}${host}:${defaultPort}${rest}`);
  return [...variants];
}
