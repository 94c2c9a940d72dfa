/**
 * SMTP sender for the email channel, through nodemailer: any mail server or relay (Postfix, SES, Postmark,
 * SendGrid, Mailgun… all speak SMTP), no vendor SDK.
 *
 * - Transport security: `secure: true` is TLS from the first byte (port 465); otherwise STARTTLS is required
 *   (`requireTLS`), so a code never crosses the network in clear. Production refuses turning that off unless
 *   the server is on this machine (a local relay): the factory's check, not the operator's memory.
 * - One connection per message (no pool): nothing to close at shutdown, and a broken connection cannot fail
 *   the messages after it. A service sending more than a few messages a second should relay through a local
 *   MTA, which pools and queues.
 * - Failures are typed like every sender's: a 4xx reply, or a network problem before the message was handed
 *   over, is retryable (the dispatcher retries once, then tries the next sender); a 5xx reply (no such mailbox,
 *   relaying denied, auth failed) is not, nor a connection lost or a deadline passed while the message was
 *   being sent (it may have been accepted). Reasons are scrubbed of the code before anything records them.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import MailComposer from 'nodemailer/lib/mail-composer';
import addressparser from 'nodemailer/lib/addressparser';
import { normalizeEmailAddress } from '../signals/email.ts';
import { SenderConfigError, scrubCode, type OutboundMessage, type SendResult, type Sender } from './sender.ts';
import { clip } from './http.ts';
import { checkName, resolveChannels, resolveTimeout } from './options.ts';

export interface SmtpSenderOptions {
  name?: string;
  host: string;
  /** Default 465 with `secure`, 587 otherwise. */
  port?: number;
  /** TLS from the first byte (SMTPS, port 465). Without it STARTTLS is required unless `requireTls` is false. */
  secure?: boolean;
  /** Default true. False only for a relay on this machine in production (refused otherwise). */
  requireTls?: boolean;
  user?: string;
  password?: string;
  /** The From header: `no-reply@example.com` or `"Example" <no-reply@example.com>`. */
  from: string;
  /** The subject line; the code is not in it by default (mail notifications show subjects on lock screens). */
  subject?: string;
  timeoutMs?: number;
  env: 'development' | 'production' | 'test';
}

export const DEFAULT_SUBJECT = 'Your verification code';
const DEFAULT_TIMEOUT_MS = 10_000;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function createSmtpSender(opts: SmtpSenderOptions): Sender {
  const name = checkName(opts.name ?? 'smtp');
  const channels = resolveChannels(['email'], ['email'], ['email'], name);
  const timeoutMs = resolveTimeout(opts.timeoutMs, DEFAULT_TIMEOUT_MS, name);
  if (typeof opts.host !== 'string' || opts.host.length === 0) throw new SenderConfigError('host is required', name);
  const secure = opts.secure ?? false;
  const requireTls = opts.requireTls ?? true;
  if (opts.env === 'production' && !secure && !requireTls && !isLoopback(opts.host)) {
    throw new SenderConfigError('requireTls: false sends codes in clear over the network and is refused in production (except to a relay on 127.0.0.1)', name);
  }
  if ((opts.user === undefined) !== (opts.password === undefined)) throw new SenderConfigError('user and password go together', name);
  // Exactly one valid address (with an optional name), no line breaks: a `from` with a second address or a
  // header after a line break made another envelope sender (an email review).
  const parsed = /[\r\n]/.test(opts.from) ? [] : addressparser(opts.from, { flatten: true });
  const fromAddress = parsed.length === 1 ? parsed[0]!.address : '';
  if (!normalizeEmailAddress(fromAddress).ok) throw new SenderConfigError('from must be one address, like "Example" <no-reply@example.com>', name);
  const subject = opts.subject ?? DEFAULT_SUBJECT;

  const connectionOptions = {
    host: opts.host,
    port: opts.port ?? (secure ? 465 : 587),
    secure,
    requireTLS: !secure && requireTls,
    ignoreTLS: !secure && !requireTls,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    // nodemailer's own logger stays off: it would print envelopes (addresses) and, at debug, the message.
    logger: false,
    debug: false,
  };
  const auth = opts.user !== undefined ? { credentials: { user: opts.user, pass: opts.password! } } : undefined;

  const fail = (reason: string, retryable: boolean, status?: number): SendResult =>
    status === undefined ? { ok: false, sender: name, reason, retryable } : { ok: false, sender: name, reason, retryable, status };

  return {
    name,
    type: 'smtp',
    channels,
    async send(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      if (!channels.has(msg.channel)) return fail(`unsupported_channel:${msg.channel}`, false);
      if (signal?.aborted) return fail('smtp:aborted', false);
      return deliver(msg, signal);
    },
  };

  /**
   * One SMTP conversation on its own connection (nodemailer's SMTPConnection, so that it can be closed). Its
   * idle timeouts do not bound it (a server answering a little at a time held a send for minutes: an email
   * review), so the whole conversation gets `timeoutMs`, and the dispatcher's abort ends it too; either closes
   * the connection. Whether a failure is worth retrying (or handing to the next sender) depends on how far it
   * got: before the message was handed over nothing can have been delivered; once it is being sent, a lost
   * connection or the deadline leaves the outcome unknown, and a duplicate code is worse than a send the user
   * repeats.
   */
  function deliver(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
    return new Promise<SendResult>((resolve) => {
      const conn = new SMTPConnection(connectionOptions);
      let phase = 'connect' as 'connect' | 'send';
      let settled = false;
      const finish = (r: SendResult, graceful = false) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (graceful) conn.quit();
        else conn.close();
        resolve(r);
      };
      const failed = (err: unknown) => {
        const e = err as { responseCode?: number; code?: string; message?: string };
        const message = clip(scrubCode(String(e.message ?? err), msg.code), 160);
        // A reply code is the server's own answer: 4xx try again, 5xx do not.
        if (typeof e.responseCode === 'number') return finish(fail(`smtp:${e.responseCode} ${message}`, e.responseCode < 500, e.responseCode));
        // The connection, TLS or an idle timeout: harmless before the message was on its way.
        finish(fail(`smtp:${e.code ?? 'error'} ${message}${phase === 'send' ? ' (while sending: the message may have been accepted)' : ''}`, phase === 'connect'));
      };
      const timer = setTimeout(
        () => finish(fail(`smtp:deadline no answer within ${timeoutMs} ms${phase === 'send' ? ' while sending (the message may have been accepted)' : ' before the message was sent'}`, phase === 'connect')),
        timeoutMs,
      );
      const onAbort = () => finish(fail('smtp:aborted', false));
      signal?.addEventListener('abort', onAbort, { once: true });
      conn.on('error', failed);
      const sendMessage = () => {
        const mail = new MailComposer({
          from: opts.from,
          to: msg.to,
          subject,
          text: msg.text,
          headers: {
            // An automatic message: vacation responders and Exchange's auto-replies must not answer it (RFC 3834).
            'Auto-Submitted': 'auto-generated',
            'X-Auto-Response-Suppress': 'All',
            ...(msg.locale ? { 'Content-Language': msg.locale } : {}),
          },
        }).compile();
        mail.build((err, raw) => {
          if (err) return failed(err);
          if (settled) return;
          phase = 'send';
          conn.send({ from: fromAddress, to: [msg.to] }, raw, (sendErr, info) => {
            if (sendErr) return failed(sendErr);
            // A server that accepted nobody answered with a 5xx for the recipient.
            if (info.accepted.length === 0) return finish(fail(`smtp:rejected ${clip(scrubCode(String(info.response ?? ''), msg.code), 160)}`, false));
            finish({ ok: true, sender: name, providerId: mail.messageId(), detail: clip(scrubCode(String(info.response ?? ''), msg.code), 80) }, true);
          });
        });
      };
      conn.connect(() => {
        if (settled) return;
        if (!auth) return sendMessage();
        conn.login(auth, (err) => (err ? failed(err) : sendMessage()));
      });
    });
  }
}
