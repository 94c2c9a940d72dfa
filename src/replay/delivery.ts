/**
 * The replay's `Delivery`: sends nothing, remembers the codes "delivered" to each number so that a later
 * `"code": "correct"` check can type the real one, and counts what would have been sent.
 */
import type { Delivery } from '../service/ports.ts';

/** More than any `codesKept` setting allows (max 5), so a "wrong" code can avoid every valid one. */
const KEEP = 6;

/**
 * A number on a channel, as the replay keys its codes and verifications (a number may have a verification per
 * channel). SMS, the common case, is the number alone (no string built per message).
 */
export const channelKey = (to: string, channel: string) => (channel === 'sms' ? to : `${to} ${channel}`);

export class RecordingDelivery implements Delivery {
  private readonly codes = new Map<string, string[]>();
  /** Messages that would have been sent. */
  delivered = 0;
  /** Called for every message (tests count campaign deliveries with it). */
  onDeliver: ((to: string) => void) | null = null;

  /** Set for one send whose live delivery failed: the next delivery fails as it did. */
  failNext = false;

  async deliver(msg: { verificationId: string; to: string; channel: string; code: string }): Promise<{ ok: true; sender: string; providerId: string | null } | { ok: false; reason: string }> {
    if (this.failNext) {
      this.failNext = false;
      return { ok: false, reason: 'failed live' };
    }
    const key = channelKey(msg.to, msg.channel);
    let list = this.codes.get(key);
    if (!list) this.codes.set(key, (list = []));
    list.push(msg.code);
    if (list.length > KEEP) list.shift();
    this.delivered++;
    this.onDeliver?.(msg.to);
    return { ok: true, sender: 'replay', providerId: null };
  }

  /** The newest code delivered to `to` on `channel` (a number may have a verification per channel), or null. */
  lastCode(to: string, channel = 'sms'): string | null {
    return this.codes.get(channelKey(to, channel))?.at(-1) ?? null;
  }

  /**
   * A code of `length` digits that matches none of the recent codes of `to`: a user's typo. Deterministic,
   * so a replay's outcome does not depend on luck.
   */
  wrongCode(to: string, length: number, channel = 'sms'): string {
    const recent = new Set(this.codes.get(channelKey(to, channel)) ?? []);
    const mod = 10 ** length;
    let n = Number(this.lastCode(to, channel) ?? '0');
    for (let i = 0; i <= KEEP; i++) {
      n = (n + 1) % mod;
      const c = String(n).padStart(length, '0');
      if (!recent.has(c)) return c;
    }
    return '0'.repeat(length); // unreachable: KEEP+1 candidates, at most KEEP taken
  }
}
