/**
 * The delivery contract every provider adapter implements.
 *
 * A sender never throws for provider or network trouble: it returns a typed `SendResult` so the
 * dispatcher can decide between retrying, falling back to the next sender, or giving up. Throwing is
 * reserved for programming errors, and the dispatcher still contains those.
 */
import type { Channel } from '../store/interface.ts';

export type { Channel };

export interface OutboundMessage {
  verificationId: string;
  /** E.164 destination (or an address for email). */
  to: string;
  channel: Channel;
  locale: string | null;
  /** The plain code. Senders that only need `text` must not log or echo it. */
  code: string;
  /** The fully rendered message (see templates.ts). */
  text: string;
}

export type SendResult =
  | { ok: true; sender: string; providerId: string | null; detail?: string }
  | { ok: false; sender: string; reason: string; retryable: boolean; status?: number };

export interface Sender {
  /** Unique per deployment; recorded on the verification and in logs. */
  readonly name: string;
  /** The adapter kind: 'console' | 'noop' | 'webhook' | 'twilio' | 'smtp'. */
  readonly type: string;
  readonly channels: ReadonlySet<Channel>;
  send(msg: OutboundMessage, signal?: AbortSignal): Promise<SendResult>;
}

/**
 * Thrown by sender factories for configuration that must stop startup (a dev-only sender in
 * production, a missing credential). Startup is the boundary, so failing loudly beats a service that
 * silently cannot deliver.
 */
export class SenderConfigError extends Error {
  override readonly name = 'SenderConfigError';
  readonly kind = 'sender_config' as const;
  /** Which sender (name or type) the problem is about, when known. */
  readonly sender: string | undefined;

  constructor(message: string, sender?: string) {
    super(sender === undefined ? message : `sender "${sender}": ${message}`);
    this.sender = sender;
  }
}

/** The mask used wherever a code could otherwise leak into logs or stored reasons. */
export const CODE_MASK = '******';

/**
 * Replace every occurrence of `code` in `text` with the mask. Providers sometimes echo the request
 * body (and so the code) in error messages; reasons end up in logs and in the store, where a code must
 * never be. Separators a provider might insert between digits (space, dot, dash) are matched too:
 * over-masking a stray number in a reason is harmless, leaking a code is not.
 */
export function scrubCode(text: string, code: string): string {
  if (code.length === 0 || text.length === 0) return text;
  const parts = [...code].map((ch) => ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(parts.join('[\\s.\\-]?'), 'gi');
  const out = text.replace(pattern, CODE_MASK);
  // A reason cut short (`clip` ends it with …) may end inside the code: mask a trailing start of it too. A
  // sender that clips before scrubbing would otherwise leave all but the last digits in clear.
  if (!out.endsWith('…')) return out;
  const head = out.slice(0, -1);
  for (let k = code.length - 1; k >= 1; k--) {
    const start = new RegExp(`${parts.slice(0, k).join('[\\s.\\-]?')}$`, 'i');
    const m = start.exec(head);
    if (m) return `${head.slice(0, m.index)}${'*'.repeat(k)}…`;
  }
  return out;
}
