/**
 * An operator's unlock of one person or one address (docs/rate-limits.md, "Unlocking"): the counters that refuse
 * it are reset and the unlock is recorded. For the on-call case "this user gets no code / cannot sign in": a
 * number locked by guesses (up to 30 days for 100 consecutive failures), its send budget spent by a bombing run,
 * an escalated IP. Nothing else is touched: verifications, lists, quarantines and pauses have their own tools.
 */
import { addressUnlockKeys, destinationUnlockKeys } from '../engine/limits.ts';
import type { Policy } from '../engine/policy.ts';
import { CHANNELS, type AuditEvent, type Store } from '../store/interface.ts';
import { parseIp } from '../signals/ip.ts';
import { channelOfDestination, destinationKey } from './destination.ts';
import { eventId } from './ids.ts';
import { recordedStep } from './journal.ts';
import type { Signals } from './ports.ts';

export type UnlockResult =
  | { ok: true; target: { kind: 'destination'; to: string } | { kind: 'ip'; ip: string }; keys: number }
  | { ok: false; message: string };

/**
 * Unlock `target`: an IP address (IPv4, or IPv6, which unlocks its /64 and the failed-check counts of its /56
 * and /48), else a phone number in international form or an email address.
 */
export async function unlock(
  deps: { store: Store; signals: Pick<Signals, 'parsePhone' | 'ipFacts'>; policy: Policy },
  target: string,
  o: { now: number; by: string | null },
): Promise<UnlockResult> {
  const ip = parseIp(target);
  let keys: string[];
  let event: AuditEvent;
  let out: UnlockResult & { ok: true };
  if (ip.ok) {
    const facts = deps.signals.ipFacts(ip.ip);
    if (!facts) return { ok: false, message: 'not an IP address this server reads' };
    keys = addressUnlockKeys(deps.policy, facts);
    event = { id: eventId(), at: o.now, type: 'unlock', ip: facts.ip, data: { by: o.by, keys: keys.length } };
    out = { ok: true, target: { kind: 'ip', ip: facts.ip }, keys: keys.length };
  } else {
    const dest = destinationKey(deps.signals, channelOfDestination(target), target);
    if (!dest.ok) return { ok: false, message: `not an IP address, a phone number in international form or an email address (${dest.message})` };
    keys = destinationUnlockKeys(deps.policy, dest.key, CHANNELS);
    event = { id: eventId(), at: o.now, type: 'unlock', to: dest.key, data: { by: o.by, keys: keys.length } };
    out = { ok: true, target: { kind: 'destination', to: dest.key }, keys: keys.length };
  }
  // Journaled like the other admin steps: a crash between the reset and its event still leaves the event.
  await recordedStep(deps.store, event, () => deps.store.resetLimits(keys));
  return out;
}
