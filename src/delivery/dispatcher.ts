/**
 * Chooses senders and applies the retry/fallback policy.
 *
 * Policy, per message: walk the senders that support the channel, in configured order. A retryable
 * failure (timeout, 5xx, 429...) gets exactly one more try after `retryDelayMs`; a non-retryable one
 * (bad number, auth error) moves straight on, since repeating it would only fail again. Bounded on
 * purpose: at most two tries per sender keeps the worst-case latency and provider bill predictable.
 *
 * The code never leaves this module in a reason or log entry: everything a provider says is scrubbed.
 */
import type { Channel } from '../store/interface.ts';
import { scrubCode, type OutboundMessage, type SendResult, type Sender } from './sender.ts';

export interface AttemptLog {
  sender: string;
  ok: boolean;
  /** How long the sender took to answer (or fail), in milliseconds: the provider's latency as this service saw it. */
  ms: number;
  reason?: string;
  retryable?: boolean;
}

export type DeliveryOutcome =
  | { ok: true; sender: string; providerId: string | null; attempts: AttemptLog[] }
  | { ok: false; reason: string; attempts: AttemptLog[] };

export interface DispatcherOptions {
  /** Wait before the single retry of a sender. Default 250 ms. */
  retryDelayMs?: number;
  /** Injected so tests run without real waiting. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * No attempt starts later than this after the delivery began (default 10 minutes), so a delivery ends within
   * it plus one sender's timeout (at most 60 s): the journal's recovery (service/journal.ts) waits longer.
   */
  deadlineMs?: number;
  /** Clock for the deadline; injected by tests. Default performance.now. */
  now?: () => number;
  /** Called after every attempt with the already-scrubbed entry, for logging/metrics. */
  onAttempt?: (entry: AttemptLog, msg: { verificationId: string; channel: Channel }) => void;
}

export interface Dispatcher {
  deliver(msg: OutboundMessage, signal?: AbortSignal): Promise<DeliveryOutcome>;
  sendersFor(channel: Channel): Sender[];
}

export const DEFAULT_RETRY_DELAY_MS = 250;
export const DEFAULT_DELIVERY_DEADLINE_MS = 10 * 60_000;

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function createDispatcher(senders: Sender[], opts: DispatcherOptions = {}): Dispatcher {
  const retryDelayMs = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  if (!Number.isFinite(retryDelayMs) || retryDelayMs < 0) throw new RangeError('retryDelayMs must be >= 0');
  const sleep = opts.sleep ?? defaultSleep;
  const deadlineMs = opts.deadlineMs ?? DEFAULT_DELIVERY_DEADLINE_MS;
  const now = opts.now ?? (() => performance.now());
  const list = [...senders];

  const sendersFor = (channel: Channel): Sender[] => list.filter((s) => s.channels.has(channel));

  async function attempt(sender: Sender, msg: OutboundMessage, signal: AbortSignal | undefined): Promise<SendResult> {
    try {
      return await sender.send(msg, signal);
    } catch (err) {
      // A throwing sender is a bug, not a provider blip: record it and fall back without retrying.
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, sender: sender.name, reason: `sender_error: ${message}`, retryable: false };
    }
  }

  async function deliver(msg: OutboundMessage, signal?: AbortSignal): Promise<DeliveryOutcome> {
    const candidates = sendersFor(msg.channel);
    const attempts: AttemptLog[] = [];
    if (candidates.length === 0) return { ok: false, reason: 'no_sender_for_channel', attempts };

    const record = (entry: AttemptLog): void => {
      attempts.push(entry);
      try {
        opts.onAttempt?.(entry, { verificationId: msg.verificationId, channel: msg.channel });
      } catch {
        // Observability must never change delivery.
      }
    };

    let lastReason = 'delivery_failed';
    const started = now();
    for (const sender of candidates) {
      for (let tryNo = 1; tryNo <= 2; tryNo++) {
        if (signal?.aborted) return { ok: false, reason: 'aborted', attempts };
        if (attempts.length > 0 && now() - started > deadlineMs) return { ok: false, reason: `deadline: ${lastReason}`, attempts };
        const began = now();
        const result = await attempt(sender, msg, signal);
        const ms = Math.round((now() - began) * 10) / 10;
        if (result.ok) {
          record({ sender: sender.name, ok: true, ms });
          return { ok: true, sender: sender.name, providerId: result.providerId, attempts };
        }
        const reason = scrubCode(result.reason, msg.code);
        record({ sender: sender.name, ok: false, reason, retryable: result.retryable, ms });
        lastReason = reason;
        if (!result.retryable || tryNo === 2) break;
        await sleep(retryDelayMs);
      }
    }
    return { ok: false, reason: lastReason, attempts };
  }

  return { deliver, sendersFor };
}
