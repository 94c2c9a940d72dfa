/** Factory-time validation shared by the senders, so every adapter rejects bad config the same way. */
import { CHANNELS, type Channel } from '../store/interface.ts';
import { SenderConfigError } from './sender.ts';

export const MAX_TIMEOUT_MS = 60_000;

/** Names go into logs, metrics labels and the store: keep them boring. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new SenderConfigError(`invalid sender name ${JSON.stringify(name)} (use letters, digits, _ . -; max 64)`);
  }
  return name;
}

export function resolveChannels(
  channels: readonly Channel[] | undefined,
  supported: readonly Channel[],
  fallback: readonly Channel[],
  senderName: string,
): ReadonlySet<Channel> {
  const list = channels ?? fallback;
  if (list.length === 0) throw new SenderConfigError('channels must not be empty', senderName);
  for (const ch of list) {
    if (!CHANNELS.includes(ch)) throw new SenderConfigError(`unknown channel ${JSON.stringify(ch)}`, senderName);
    if (!supported.includes(ch)) {
      throw new SenderConfigError(`channel "${ch}" is not supported (supported: ${supported.join(', ')})`, senderName);
    }
  }
  return new Set(list);
}

export function resolveTimeout(timeoutMs: number | undefined, fallback: number, senderName: string): number {
  const t = timeoutMs ?? fallback;
  if (!Number.isInteger(t) || t < 1 || t > MAX_TIMEOUT_MS) {
    throw new SenderConfigError(`timeoutMs must be an integer in 1..${MAX_TIMEOUT_MS}`, senderName);
  }
  return t;
}
