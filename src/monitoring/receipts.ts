/**
 * Delivery receipts: the senders' status callbacks, reduced to delivered / undelivered / failed.
 *
 * - Twilio posts form fields (MessageSid, MessageStatus, To, ErrorCode…) signed with X-Twilio-Signature
 *   (the account's auth token), several times per message (queued, sent, delivered…).
 * - The webhook sender's receiver posts JSON `{ "id": "<verification id>", "status": "delivered", … }`
 *   signed with X-OTPShield-Signature (the sender's secret), the same scheme as the requests it received.
 *
 * Only final statuses are recorded, once per message (a one-time token), as an audit event
 * `delivery.receipt`; metrics, the hourly aggregates and the delivery-rate alert read that event.
 */
import { eventId } from '../service/ids.ts';
import type { AuditEvent, Channel, Store } from '../store/interface.ts';
import { recordedStep, type StepClaim } from '../service/journal.ts';

/** A message's final receipt is recorded once within this long (providers retry for hours, not days). */
const RECEIPT_ONCE_MS = 7 * 86_400_000;
import type { Signals } from '../service/ports.ts';
import type { ReceiptStatus } from './facts.ts';

export interface ReceiptSender {
  name: string;
  type: 'twilio' | 'webhook';
  /** Twilio auth token or webhook secret. */
  secret: string;
  statusCallbackUrl: string | null;
}

/** The senders that can post receipts, by name, from the configuration's `senders`. */
export function receiptSenders(senders: readonly Record<string, unknown>[]): Map<string, ReceiptSender> {
  const out = new Map<string, ReceiptSender>();
  for (const s of senders) {
    const type = s.type;
    if (type !== 'twilio' && type !== 'webhook') continue;
    const secret = type === 'twilio' ? s.authToken : s.secret;
    if (typeof secret !== 'string' || secret.length === 0) continue;
    const name = typeof s.name === 'string' ? s.name : type;
    out.set(name, { name, type, secret, statusCallbackUrl: typeof s.statusCallbackUrl === 'string' ? s.statusCallbackUrl : null });
  }
  return out;
}

/** Twilio MessageStatus → final status, or null for intermediate ones (queued, sending, sent, accepted…). */
export function twilioFinalStatus(s: unknown): ReceiptStatus | null {
  switch (s) {
    case 'delivered':
    case 'read': // WhatsApp: read implies delivered
      return 'delivered';
    case 'undelivered':
      return 'undelivered';
    case 'failed':
      return 'failed';
    default:
      return null;
  }
}

export function webhookFinalStatus(s: unknown): ReceiptStatus | null {
  return s === 'delivered' || s === 'undelivered' || s === 'failed' ? s : null;
}

/**
 * A receiver's error text may quote the message it refused, and so the code: every run of at least a code's
 * length of digits (with the single spaces, dots or dashes a code may be spelled with) becomes `#`s before the
 * text is kept. Shorter runs (status and error numbers such as 30007 for 6-digit codes) stay readable; a
 * quoted phone number is masked too. Scrubbed before it is cut, so a cut cannot leave part of a code.
 */
export function scrubReceiptError(text: string, codeLength: number): string {
  const run = new RegExp(`\\d(?:[\\s.\\-]?\\d){${Math.max(1, codeLength - 1)},}`, 'g');
  return text.replace(run, (m) => '#'.repeat(m.replace(/\D/g, '').length));
}

export interface ReceiptInput {
  sender: string;
  /** The provider's message id (Twilio MessageSid) or our verification id: the de-duplication key. */
  messageId: string;
  to: string | null;
  /** The message's channel: the verification's, or what the provider's callback says (Twilio: a `whatsapp:` address). */
  channel: Channel;
  status: ReceiptStatus;
  error: string | null;
  verificationId: string | null;
  now: number;
}

/**
 * Record a final receipt once. Returns false when this message already had a final receipt (providers
 * retry callbacks, and Twilio may send `failed` after `undelivered`).
 */
export async function recordReceipt(
  deps: { store: Store; signals: Pick<Signals, 'parsePhone' | 'prefixOf'>; prefixDigits: number },
  r: ReceiptInput,
): Promise<boolean> {
  const phone = r.to ? deps.signals.parsePhone(r.to.replace(/^whatsapp:/, '')) : null;
  const e164 = phone?.ok ? phone.e164 : null;
  const event: AuditEvent = {
    id: eventId(),
    at: r.now,
    type: 'delivery.receipt',
    to: e164,
    country: phone?.ok ? phone.region : null,
    prefix: e164 ? deps.signals.prefixOf(e164, deps.prefixDigits) : null,
    decision: r.status,
    reasons: [],
    data: { sender: r.sender, messageId: r.messageId, verificationId: r.verificationId, channel: r.channel, error: r.error },
  };
  // Journaled ahead of the once-only claim (service/journal.ts recordedStep): a claim whose event a crash lost
  // would make the provider's retry a duplicate, and the receipt would never be recorded. Recovery records it
  // unless the claim's holder did — also when the claim's call failed but the claim landed (a timeout).
  const claim: StepClaim = {
    key: `rcpt:${r.sender}:${r.messageId}`,
    ttlMs: RECEIPT_ONCE_MS,
    find: { query: { type: 'delivery.receipt', from: r.now - RECEIPT_ONCE_MS, ...(e164 ? { number: e164 } : {}) }, data: { sender: r.sender, messageId: r.messageId } },
  };
  return recordedStep(deps.store, event, (take) => take(), (first, e) => (first ? e : null), claim);
}
