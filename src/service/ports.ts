/**
 * What the verification service needs from the outside world, as small interfaces.
 * `src/service/context.ts` wires the real implementations; tests and the replay CLI wire their own.
 */
import type { EvidenceFacts, IpFacts } from '../engine/facts.ts';
import type { Channel } from '../store/interface.ts';

export type ParsedPhone =
  | { ok: true; e164: string; region: string; callingCode: string; national: string; type: string }
  | { ok: false; reason: string; message: string };

/** The `client` block of a send request: the end user's raw evidence, as the integrator forwards it. */
export interface ClientEvidenceInput {
  ip?: string;
  userAgent?: string;
  deviceId?: string;
  formToken?: string;
  pow?: string;
  captchaToken?: string;
  honeypot?: string | boolean;
  elapsedMs?: number;
  automation?: { webdriver?: boolean; headless?: boolean; flags?: string[] };
  acceptLanguage?: string;
}

export interface Signals {
  parsePhone(input: unknown, defaultRegion?: string): ParsedPhone;
  /** Calling code + first `digits` national digits, e.g. `+62812`. */
  prefixOf(e164: string, digits: number): string;
  /** Everything known about an IP (null when the string is not an IP). */
  ipFacts(ip: string): IpFacts | null;
  numberFacts(e164: string): { disposable: boolean; sources: string[] };
  /**
   * Verify the client evidence; `consume` marks one-time tokens used (false for lookups). The returned
   * `deviceId` must be `deviceIdOf(client.deviceId)`: the send path names its counters with that before the
   * evidence is verified.
   */
  verifyEvidence(client: ClientEvidenceInput, ctx: { ip: string | null; userAgent: string | null; consume: boolean; now: number }): Promise<EvidenceFacts>;
}

export interface Delivery {
  deliver(msg: { verificationId: string; to: string; channel: Channel; locale: string | null; code: string }): Promise<
    ({ ok: true; sender: string; providerId: string | null; /** How long the delivering sender took. */ ms?: number } | { ok: false; reason: string }) & {
      /** Attempts that failed on the way (a sender that fell over before another took it), already scrubbed of the code. */
      failed?: { sender: string; reason: string; ms?: number }[];
    }
  >;
}

/** Creates the challenge a `challenge` decision returns (form token + proof-of-work). */
export interface Challenger {
  /** `startedAt`: when the person started the form, for a token handed out in a challenge_required answer. */
  issue(opts: { ip: string | null; userAgent: string | null; level: 'normal' | 'elevated' | 'high'; now: number; startedAt?: number }): Promise<Record<string, unknown>>;
}
