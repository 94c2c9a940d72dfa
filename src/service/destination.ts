/**
 * A request's destination, as the engine sees it (`NumberFacts`): a phone number for the sms, whatsapp and
 * voice channels, an email address for the email channel (docs/verification.md, "Email destinations"). One
 * function for the send path, the check path and `otp-shield lookup`, so that the three agree on the key.
 */
import type { NumberFacts } from '../engine/facts.ts';
import { DISPOSABLE_EMAIL_SOURCE, isDisposableEmailDomain, normalizeEmailAddress } from '../signals/email.ts';
import type { Channel } from '../store/interface.ts';
import type { Signals } from './ports.ts';

export type Destination =
  | {
      ok: true;
      number: NumberFacts;
      /** The national significant number; null for an email address. */
      national: string | null;
    }
  | { ok: false; code: 'invalid_phone_number' | 'invalid_email_address'; reason: string; message: string };

/**
 * The channel a destination given without one belongs to: an address is the email channel's, anything else
 * a number (sms). A check by `to`, the events filter and a subject request read it so.
 */
export function channelOfDestination(to: unknown): Channel {
  return typeof to === 'string' && to.includes('@') ? 'email' : 'sms';
}

/** The destination key of what a client typed (the send's `to`, a check's `to`), or why it is none. */
export function destinationKey(
  signals: Pick<Signals, 'parsePhone'>,
  channel: Channel,
  to: unknown,
  defaultRegion?: string,
): { ok: true; key: string } | { ok: false; code: 'invalid_phone_number' | 'invalid_email_address'; reason: string; message: string } {
  if (channel === 'email') {
    const e = normalizeEmailAddress(to);
    return e.ok ? { ok: true, key: e.address } : { ok: false, code: 'invalid_email_address', reason: e.reason, message: e.message };
  }
  const p = signals.parsePhone(to, defaultRegion);
  return p.ok ? { ok: true, key: p.e164 } : { ok: false, code: 'invalid_phone_number', reason: p.reason, message: p.message };
}

/** Everything the engine knows about the destination of a send. */
export function destinationFacts(
  signals: Pick<Signals, 'parsePhone' | 'prefixOf' | 'numberFacts'>,
  channel: Channel,
  to: unknown,
  defaultRegion: string | undefined,
  prefixDigits: number,
): Destination {
  if (channel === 'email') {
    const e = normalizeEmailAddress(to);
    if (!e.ok) return { ok: false, code: 'invalid_email_address', reason: e.reason, message: e.message };
    const disposable = isDisposableEmailDomain(e.domain);
    return {
      ok: true,
      national: null,
      number: {
        e164: e.address,
        region: null,
        callingCode: null,
        type: 'EMAIL',
        prefix: null,
        disposable,
        sources: disposable ? [DISPOSABLE_EMAIL_SOURCE] : [],
      },
    };
  }
  const phone = signals.parsePhone(to, defaultRegion);
  if (!phone.ok) return { ok: false, code: 'invalid_phone_number', reason: phone.reason, message: phone.message };
  const intel = signals.numberFacts(phone.e164);
  return {
    ok: true,
    national: phone.national,
    number: {
      e164: phone.e164,
      region: phone.region,
      callingCode: phone.callingCode,
      type: phone.type,
      prefix: signals.prefixOf(phone.e164, prefixDigits),
      disposable: intel.disposable,
      sources: intel.sources,
    },
  };
}
