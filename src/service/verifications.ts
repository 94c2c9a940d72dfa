/**
 * The verification service: the I/O around the pure engine.
 *
 *   send:  parse number → [verify evidence ∥ observe (one store call) ∥ pending verification] (one round trip;
 *          one more for an IP's first country of the day) → decideSend (pure) → send limits + new verification
 *          with its code and its journal entry (one atomic store call; a resend: limits, then its code and
 *          entry) → deliver → [audit (deletes the entry) ∥ after-send hooks]
 *   check: normalise code → failure counters (lock) → [reserve attempt (atomic) ∥ journal entry] →
 *          constant-time compare → approve (atomic, exactly once) → [counters ∥ audit (deletes the entry) ∥ hooks]
 *
 * Calls in brackets do not depend on each other and are issued together: with Redis they share one round
 * trip (auto-pipelining), with SQLite one commit. An allowed first send waits for 3 store round trips (4 for
 * an IP's first country of the day; a resend 4), an approved check for 5 (test/http/round-trips.test.ts
 * counts them). The journal (service/journal.ts) costs no round trip of its own (except a raced resend's
 * rewrite and the expired-verification fallback): a send's entry is written by the step that stores its code
 * (so it exists exactly when the code does), a check's with its attempt.
 *
 * Every branch records exactly one audit event. The code exists only in this function's locals and in
 * the message handed to the sender.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { decideSend, isRuleTrip, type Decision } from '../engine/decide.ts';
import { NO_STATE, type EvidenceFacts, type IpFacts, type NumberFacts, type SendFacts, type StateFacts } from '../engine/facts.ts';
import {
  addressOf,
  checkAddressFailureSpecs,
  checkFailureSpecs,
  cooldownKey,
  cooldownMs,
  escalationLevel,
  escalationSpec,
  escalationKeys,
  observationSpecs,
  type ObservationLayout,
  resendWaitMs,
  sendLimitSpecs,
  trustSpec,
  verifiedNumberSpec,
  numberFailureKeys,
  throttleScopeSpec,
} from '../engine/limits.ts';
import type { Policy } from '../engine/policy.ts';
import { stepThrottle, type ThrottleChange, type ThrottleState } from '../engine/throttle.ts';
import type { AuditEvent, Channel, JournalWrite, LimitOutcome, LimitSpec, Store, Verification } from '../store/interface.ts';
import { generateCode, hashCode, matchCode, normalizeCodeInput, type Keyring } from './codes.ts';
import { ApiError } from './errors.ts';
import { isStoreUnavailable } from '../store/errors.ts';
import { deviceIdOf } from '../signals/evidence.ts';
import { withoutPort } from '../signals/ip.ts';
import type { Challenger, ClientEvidenceInput, Delivery, Signals } from './ports.ts';
import { SETTING, type SharedState } from './state.ts';
import { KeyedSerializer } from '../lib/keyed-serializer.ts';
import { channelOfDestination, destinationFacts, destinationKey } from './destination.ts';
import { journalKey, recordedStep, rememberOutcome, type JournalEntry, type StepClaim } from './journal.ts';
import { eventId, pooledRandom } from './ids.ts';

export interface VerificationDeps {
  store: Store;
  clock: () => number;
  policy: () => Policy;
  keyring: () => Keyring;
  signals: Signals;
  delivery: Delivery;
  challenger: Challenger;
  state: SharedState;
  log: Logger;
  codes: { length: number; ttlSeconds: number; maxAttempts: number; codesKept: number };
  channels: readonly Channel[];
  testNumbers: ReadonlyMap<string, string>;
  /** Hook for metrics: called once per send decision and per check outcome. */
  observe?: (e: AuditEvent) => void;
  /** Later layers (SMS-pumping defense, alerts) listen here; errors in hooks propagate. */
  hooks: ServiceHooks[];
  /** How a tarpitted send waits (default: a real timer). Replay passes a no-op: its clock is the trace's. */
  sleep?: (ms: number) => Promise<void>;
}

/** Scopes whose last throttle write time this instance remembers (`keepThrottle`). */
const MAX_PERSIST_TIMES = 50_000;

/** A limit that refuses every request, so that a consume including it counts nothing (a read of waits). */
const REFUSE_ALL: Omit<LimitSpec, 'key'> = { reason: 'probe', limit: 0, windowMs: 1, cost: 1 };

/** A message handed to a sender, as the after-send listeners need it (also rebuilt from a journal entry). */
export interface SentMessage {
  to: string;
  /** Null for an email address (NumberFacts). */
  prefix: string | null;
  region: string | null;
  channel: Channel;
  verificationId: string;
}

export interface ServiceHooks {
  /** A message was handed to a sender (not for tarpit or test numbers). */
  afterSent?(m: SentMessage, now: number): Promise<void> | void;
  /** A verification was approved. */
  afterApproved?(v: Verification, now: number): Promise<void> | void;
  /** Every send decision, after it was recorded. */
  afterDecision?(facts: SendFacts, decision: Decision, now: number): Promise<void> | void;
  /**
   * More limits for an allowed send, consumed atomically with its own (all or nothing): the budget's price
   * reservation. A send that these refuse is blocked (403 `request_blocked`, like a pause), not rate-limited,
   * even when a rate limit refuses it too: waiting a few minutes does not help.
   */
  sendLimits?(facts: SendFacts, now: number): LimitSpec[];
}

export interface SendInput {
  to: unknown;
  channel: Channel;
  locale?: string | null;
  defaultRegion?: string;
  client?: ClientEvidenceInput;
}

export interface PublicVerification {
  id: string;
  to: string;
  channel: Channel;
  status: Verification['status'];
  createdAt: string;
  expiresAt: string;
  resendAfter: string;
  attemptsLeft: number;
  sends: number;
}

export interface SendResult {
  verification: PublicVerification;
  decision: Decision;
  /** True when the verification already existed and this was a resend. */
  resend: boolean;
}

/**
 * A check's answer. `verification` is the verification the code was compared with, after this check (Twilio
 * Verify's check answers its verification too): a check by number learns which one it was (its id, its channel)
 * without a second request.
 */
export type CheckResult = { status: 'approved'; verification: PublicVerification } | { status: 'denied'; attemptsLeft: number; verification: PublicVerification };

const iso = (ms: number) => new Date(ms).toISOString();

export function publicView(v: Verification): PublicVerification {
  return {
    id: v.id,
    to: v.to,
    channel: v.channel,
    status: v.status === 'pending' && v.tarpit ? 'pending' : v.status,
    createdAt: iso(v.createdAt),
    expiresAt: iso(v.expiresAt),
    resendAfter: iso(v.resendAfter),
    attemptsLeft: Math.max(0, v.maxAttempts - v.attempts),
    sends: v.sends,
  };
}

/** Verification ids: 128 random bits, URL-safe, prefixed so they are recognisable in logs. */
export function newVerificationId(): string {
  return `vf_${pooledRandom(16)}`;
}

/**
 * The verification a check by number without a channel means: of the pending ones (one per channel at most),
 * a real one before a tarpit's (as `Store.findPending` chooses within a channel), then the one whose code left
 * last — by its last message, not its creation: an SMS resent after a WhatsApp send holds the code the user
 * reads (a diff review found the WhatsApp verification chosen, and an attempt spent on it).
 */
export function newestPending(found: readonly (Verification | null)[]): Verification | null {
  let best: Verification | null = null;
  for (const v of found) {
    if (!v) continue;
    if (!best || (best.tarpit && !v.tarpit)) best = v;
    else if (best.tarpit === v.tarpit && (v.lastSentAt > best.lastSentAt || (v.lastSentAt === best.lastSentAt && v.createdAt > best.createdAt))) best = v;
  }
  return best;
}

/** The trust context of a request: its device and network (/24 or /64), hashed. Exported for `otp-shield lookup`. */
export function contextHash(deviceId: string | null, subnet: string | null): string | null {
  if (!deviceId || !subnet) return null;
  return createHash('sha256').update(`${deviceId}|${subnet}`).digest('base64url').slice(0, 16);
}

export class VerificationService {
  /** Moving average of real delivery time, so tarpitted responses take as long as real ones. */
  private deliveryMs = 50;
  private readonly throttlePersistedAt = new Map<string, number>();
  /** Checks sharing a number or an address, one at a time (see `check`). */
  private readonly checkQueue = new KeyedSerializer();

  constructor(private readonly d: VerificationDeps) {}

  // ------------------------------------------------------------------ send

  /**
   * The facts of the end user's IP, null when none was given (absent or empty: "unknown"). A port or brackets
   * that proxies add are taken off (`withoutPort`); anything else that does not parse is refused rather than
   * ignored: ignoring it would switch off every per-IP limit, list and check for that request.
   */
  private clientIpFacts(raw: string | undefined): IpFacts | null {
    if (raw === undefined || raw.trim() === '') return null;
    const facts = this.d.signals.ipFacts(withoutPort(raw));
    if (!facts) throw new ApiError('invalid_request', { message: 'client.ip must be an IPv4 or IPv6 address (omit it when unknown)' });
    return facts;
  }

  async send(input: SendInput): Promise<SendResult> {
    const d = this.d;
    const now = d.clock();
    // Read again after the shared state's refresh below, which also reloads a policy another instance saved:
    // deciding with this one let sends through under a policy replaced seconds before (a multi-instance review).
    let policy = d.policy();
    if (!d.channels.includes(input.channel)) throw new ApiError('channel_disabled');

    // A phone number, or for the email channel an email address (service/destination.ts).
    const dest = destinationFacts(d.signals, input.channel, input.to, input.defaultRegion, policy.limits.prefixDigits);
    if (!dest.ok) throw new ApiError(dest.code, { message: dest.message });
    const client = input.client ?? {};
    const number = dest.number;
    const e164 = number.e164;

    const testCode = d.testNumbers.get(e164);
    if (testCode !== undefined) return this.sendTestNumber(e164, input, testCode, now);

    const ipFacts = this.clientIpFacts(client.ip);
    const deviceId = deviceIdOf(client.deviceId);
    const layout = observationSpecs({ number, ip: ipFacts, evidence: { deviceId } }, policy, contextHash(deviceId, ipFacts?.subnet ?? null));
    // The calls that do not depend on each other leave together (one Redis round trip with auto-pipelining,
    // one SQLite commit): the evidence's one-time tokens, the observation counters, the number's pending
    // verification (needed for the send limits and the resend; a read wasted on a refused request) and the
    // shared state's refresh.
    const [evidence, observed, pending] = await Promise.all([
      d.signals.verifyEvidence(client, { ip: ipFacts?.ip ?? null, userAgent: client.userAgent ?? null, consume: true, now }),
      d.store.consumeLimits(layout.specs, now),
      d.store.findPending(e164, input.channel, now),
      d.state.fresh(),
    ]);
    if (evidence.deviceId !== deviceId) throw new Error('Signals.verifyEvidence returned another device id than deviceIdOf(client.deviceId)');
    // The decision and the send limits follow the policy as refreshed (the number's prefix and this request's
    // observation counters were taken with the one before: one request's worth).
    policy = d.policy();

    const facts: SendFacts = { now, channel: input.channel, number, ip: ipFacts, evidence, lists: [], state: NO_STATE };
    facts.lists = d.state.listHits({ e164, region: number.region, ip: ipFacts?.ip ?? null, ipCountry: ipFacts?.country ?? null, deviceId }, now);
    const { state, throttleChanges } = await this.observe(facts, policy, layout, observed.counts, now);
    facts.state = state;

    let decision = decideSend(facts, policy);
    const event = this.sendEvent(facts, now, client.userAgent ?? null);
    const journal: JournalSlot = { key: null };

    if (decision.decision === 'allow' || decision.decision === 'tarpit') {
      // An allowed send still needs its send limits (all-or-nothing); a tarpit consumes none.
      const extraLimits = decision.decision === 'allow' ? d.hooks.flatMap((h) => h.sendLimits?.(facts, now) ?? []) : [];
      const limits = decision.decision === 'allow' ? [...sendLimitSpecs(facts, policy, pending?.sends ?? 0), ...extraLimits] : null;
      const issued = await this.issue(facts, input, pending, decision, policy, now, event, limits, journal);
      if ('denied' in issued) {
        const denied = issued.denied;
        const reasons = [...new Set(denied.map((x) => x.reason))];
        decision = { ...decision, decision: 'block', reasons };
        // A budget among the refusals blocks (waiting a few minutes does not help; its window is days long, and a
        // Retry-After from it said 48 hours: a diff review).
        if (denied.some((x) => extraLimits.some((s) => s.key === x.key))) {
          await this.finishSend(event, decision, {}, facts, policy);
          throw new ApiError('request_blocked', { extra: policy.responses.exposeReasons ? { reasons } : {} });
        }
        const retryAfter = Math.ceil(Math.max(...denied.map((x) => x.retryAfterMs)) / 1000);
        await this.finishSend(event, decision, { retryAfter }, facts, policy);
        // A cooldown means a verification is pending: its id lets a backend whose first answer was lost (a timeout,
        // then a retry) check the code its user is reading (a migration review found no way back to it).
        const pendingId = reasons.includes('cooldown') && pending ? { verificationId: pending.id } : {};
        throw new ApiError('rate_limited', { retryAfter, extra: policy.responses.exposeReasons ? { reasons, ...pendingId } : {} });
      }
      if (!issued.sent) {
        await this.finishSend(event, decision, {}, facts, policy, throttleChanges, issued.sent, journal);
        return issued.result;
      }
      // The code has left: the answer is the verification, whatever happens to the bookkeeping after it. A 503
      // here would send the client to retry into the cooldown without the id of the code its user is reading.
      // The journal entry (deleted only by the event's write) makes the maintenance loop write the event and
      // run the after-steps later (service/journal.ts).
      try {
        await this.finishSend(event, decision, {}, facts, policy, throttleChanges, issued.sent, journal);
      } catch (err) {
        if (!isStoreUnavailable(err)) throw err;
        // The recovery in this process writes the event as it is now (delivered), not as interrupted.
        if (journal.key !== null) rememberOutcome(journal.key, event);
        d.log.error({ err, verificationId: issued.sent.id }, 'the store failed after a code was sent: answered 201; the journal keeps its event for the maintenance loop');
      }
      return issued.result;
    }

    await this.finishSend(event, decision, {}, facts, policy, throttleChanges);
    const extra: Record<string, unknown> = policy.responses.exposeReasons ? { reasons: decision.reasons } : {};
    if (decision.decision === 'challenge') {
      // The page answers it at once, by script: the person's time on the form is what this request's verified
      // token measured (elapsedMs: at most the server's own count since that token was issued), not the
      // seconds the new puzzle takes, or a fast device's retry would be "too fast" and challenged again.
      // A request that came without a token (a native app, a page without the widget) was typed by someone all
      // the same: its new token counts from the shortest human time, or an app that solves the puzzle in half a
      // second and retries at once was refused as "too fast" (a mobile review). Not for an invalid, expired or
      // reused token: that client had one and misused it (a diff review).
      const ev = facts.evidence;
      const startedAt = ev.formToken === 'valid' && ev.elapsedMs !== null ? now - ev.elapsedMs : ev.formToken === 'missing' ? now - policy.risk.minHumanMs : undefined;
      extra.challenge = await d.challenger.issue({ ip: ipFacts?.ip ?? null, userAgent: client.userAgent ?? null, level: decision.powLevel, now, ...(startedAt !== undefined ? { startedAt } : {}) });
      throw new ApiError('challenge_required', { extra });
    }
    throw new ApiError('request_blocked', { extra });
  }

  /**
   * Consume the send `limits` (null: none, for a tarpit), create or extend the verification and deliver the
   * code (or, for tarpit, pretend to). A first send consumes its limits and creates its verification in one
   * atomic store step (`Store.consumeLimitsAndCreate`: one round trip); a resend consumes them before adding
   * its code. When a limit denies, nothing was created or sent: `denied` says which. `sent` is the
   * verification whose code was handed to a sender (null for a tarpit): `finishSend` runs the `afterSent`
   * hooks for it, together with the audit write. Once its code is stored and before it is handed to a sender,
   * the send is journaled (service/journal.ts); `journal` names the entry, which the final event deletes.
   */
  private async issue(
    facts: SendFacts,
    input: SendInput,
    pending: Verification | null,
    decision: Decision,
    policy: Policy,
    now: number,
    event: AuditEvent,
    limits: LimitSpec[] | null,
    journal: JournalSlot,
  ): Promise<{ result: SendResult; sent: Verification | null } | { denied: LimitOutcome['denied'] }> {
    const d = this.d;
    const tarpit = decision.decision === 'tarpit';
    const ttlMs = d.codes.ttlSeconds * 1000;
    const e164 = facts.number.e164;

    if (tarpit) {
      // Same shape and about the same latency as a real send; no code exists that could match. Repeated, it
      // answers as a real one does: the cooldown, then a resend of the same verification (a new one each time
      // told a bot in two requests that it was tarpitted).
      if (pending?.tarpit) {
        const waitMs = resendWaitMs(policy, pending, now);
        if (waitMs > 0) return { denied: [{ reason: 'cooldown', key: cooldownKey(e164, input.channel), retryAfterMs: waitMs }] };
        // A decoy code: a tarpitted verification compares none (checkCode), this only moves its counters.
        const decoy = hashCode(d.keyring(), { id: pending.id, to: e164, channel: input.channel }, generateCode(d.codes.length), now + ttlMs);
        const again = await d.store.addCode(pending.id, decoy, { now, resendAfter: now + cooldownMs(policy, pending.sends + 1), keep: d.codes.codesKept });
        if (again) {
          await this.asLongAsADelivery();
          event.data = { ...event.data, verificationId: again.id, tarpit: true, resend: true, sends: again.sends };
          return { result: { verification: publicView(again), decision, resend: true }, sent: null };
        }
      }
      const v = this.newVerification(facts, input, now, ttlMs, policy, true);
      await d.store.createVerification(v);
      await this.asLongAsADelivery();
      event.data = { ...event.data, verificationId: v.id, tarpit: true };
      return { result: { verification: publicView(v), decision, resend: false }, sent: null };
    }

    const code = generateCode(d.codes.length);
    // The send is journaled by the very store step that stores its code (service/journal.ts): the entry exists
    // exactly when the code does, before it is handed to a sender, at no round trip of its own.
    const entry = (id: string, sends: number, resend: boolean) => this.sendEntry(journal, event, decision, facts, id, sends, resend);
    let v: Verification;
    let resend = false;
    /** The resend's own code: withdrawn again if its delivery fails (it must not push out one that left). */
    let resendCode: string | null = null;
    if (pending && !pending.tarpit) {
      let budgetFreeAt: number | null = null;
      if (limits) {
        // The cooldown, from the verification's own last send (engine/limits.ts resendWaitMs says why).
        const waitMs = resendWaitMs(policy, pending, now);
        if (waitMs > 0) return { denied: [{ reason: 'cooldown', key: cooldownKey(e164, input.channel), retryAfterMs: waitMs }] };
        const out = await d.store.consumeLimits(limits, now);
        if (!out.allowed) return { denied: out.denied };
        budgetFreeAt = await this.numberBudgetFreeAt(limits, out.counts, now);
      }
      const id = pending.id;
      const stored = hashCode(d.keyring(), { id, to: e164, channel: input.channel }, code, now + ttlMs);
      // When the next message is allowed: after the cooldown, and after the number's budget frees up if this
      // send used it up (the third in ten minutes is always a resend), so a countdown shown from it is true.
      const resendAfter = Math.max(now + cooldownMs(policy, pending.sends + 1), budgetFreeAt ?? 0);
      const updated = await this.journaled(journal, () =>
        d.store.addCode(id, stored, { now, resendAfter, keep: d.codes.codesKept, journal: entry(id, pending.sends + 1, true) }),
      );
      if (updated) {
        v = updated;
        resend = true;
        resendCode = stored.hash;
        // A resend that raced this one counted too: the entry says how many sends this one really made.
        if (journal.key !== null && v.sends !== pending.sends + 1) await this.journal(journal, entry(id, v.sends, true)!);
      } else {
        // It expired or was checked meanwhile: a new verification (the limits are consumed already), journaled
        // by a write of its own on this rare path.
        journal.key = null;
        const created = await this.createWithCode(facts, input, now, ttlMs, policy, code, null);
        if ('denied' in created) return created;
        v = created;
        const written = entry(v.id, v.sends, false);
        if (written) await this.journal(journal, written);
      }
    } else {
      const created = await this.journaled(journal, () => this.createWithCode(facts, input, now, ttlMs, policy, code, limits, entry));
      if ('denied' in created) {
        journal.key = null;
        return created;
      }
      v = created;
    }

    const started = performance.now();
    const outcome = await d.delivery.deliver({ verificationId: v.id, to: e164, channel: input.channel, locale: input.locale ?? null, code });
    this.deliveryMs = this.deliveryMs * 0.9 + (performance.now() - started) * 0.1;
    event.data = { ...event.data, verificationId: v.id, resend, sends: v.sends };
    if (!outcome.ok) {
      event.data = { ...event.data, delivery: { ok: false, reason: outcome.reason, ...(outcome.failed ? { failed: outcome.failed } : {}) }, score: decision.score, shadow: decision.shadow, state: facts.state };
      event.type = 'send.failed';
      event.decision = decision.decision;
      event.reasons = decision.reasons;
      // The failure's event first (it deletes the journal entry, which says "may have been delivered"), then
      // the verification's status: should that fail, the record is still right. A resend's failure leaves the
      // verification pending: the codes delivered before it stay valid (a provider's blip must not void the code
      // the user is typing), and its own code, which never left, is withdrawn, so that it does not take the place
      // of one that did among the codes kept.
      await this.appendEvents([event], journal);
      if (!resend) await d.store.transition(v.id, 'failed', d.clock(), { failureReason: outcome.reason });
      else if (resendCode !== null) await d.store.withdrawCode(v.id, resendCode, d.clock());
      // The decision was recorded (as send.failed): its listeners hear of it like any other's.
      for (const h of d.hooks) await h.afterDecision?.(facts, decision, now);
      // The attempt counted (the provider may have sent it): the next one is allowed after the cooldown, or when
      // the number's budget frees up if this attempt used it up (a resend's resendAfter says which).
      const waitMs = Math.max(cooldownMs(policy, v.sends), v.resendAfter - now);
      // The verification (failed for a first send; still pending, with its earlier codes, for a resend), named
      // under the same switch as the reasons: some backends forward error bodies to the browser.
      throw new ApiError('delivery_failed', { retryAfter: Math.ceil(waitMs / 1000) || null, extra: policy.responses.exposeReasons ? { verificationId: v.id } : {} });
    }
    event.data = { ...event.data, delivery: { ok: true, sender: outcome.sender, providerId: outcome.providerId, ...(outcome.ms !== undefined ? { ms: outcome.ms } : {}), ...(outcome.failed ? { failed: outcome.failed } : {}) } };
    return { result: { verification: publicView(v), decision, resend }, sent: v };
  }

  /**
   * When the number's own send budget lets one more message through, if the send that left `counts` (the
   * store's counts after it) used one of its windows up; null when it did not. Asked only then (the third send
   * in ten minutes, the tenth of a day): a consume that includes a spec refusing everything counts nothing and
   * returns each refusing spec's exact wait (`LimitOutcome.denied`), so this costs no store call otherwise.
   */
  private async numberBudgetFreeAt(limits: LimitSpec[], counts: number[], now: number): Promise<number | null> {
    const full = limits.filter((spec, i) => spec.reason === 'rate_limited.number' && (counts[i] ?? 0) >= spec.limit);
    if (full.length === 0) return null;
    // The refusing spec's key is the number's own: PostgreSQL locks every key a consume names, and one shared key
    // would make every such probe wait for the others.
    const out = await this.d.store.consumeLimits([...full, { ...REFUSE_ALL, key: `probe:${full[0]!.key}` }], now);
    const waits = out.denied.filter((x) => x.reason === 'rate_limited.number').map((x) => x.retryAfterMs);
    return waits.length > 0 ? now + Math.max(...waits) : null;
  }

  /** A new verification holding `code`, created together with consuming `limits` (null: none to consume). */
  private async createWithCode(
    facts: SendFacts,
    input: SendInput,
    now: number,
    ttlMs: number,
    policy: Policy,
    code: string,
    limits: LimitSpec[] | null,
    entry?: (id: string, sends: number, resend: boolean) => JournalWrite | undefined,
  ): Promise<Verification | { denied: LimitOutcome['denied'] }> {
    const v = this.newVerification(facts, input, now, ttlMs, policy, false);
    v.codes = [hashCode(this.d.keyring(), { id: v.id, to: v.to, channel: v.channel }, code, now + ttlMs)];
    if (limits === null) await this.d.store.createVerification(v);
    else {
      const out = await this.d.store.consumeLimitsAndCreate(limits, v, now, entry?.(v.id, v.sends, false));
      if (!out.allowed) return { denied: out.denied };
    }
    return v;
  }

  private newVerification(facts: SendFacts, input: SendInput, now: number, ttlMs: number, policy: Policy, tarpit: boolean): Verification {
    const c = input.client ?? {};
    return this.pendingVerification(facts.number.e164, input, now, ttlMs, {
      resendAfter: now + cooldownMs(policy, 1),
      // Evidence as received, minus the bulky one-time tokens (already verified and recorded as outcomes).
      client: {
        ip: facts.ip?.ip ?? c.ip ?? null,
        userAgent: c.userAgent ?? null,
        deviceId: c.deviceId ?? null,
        subnet: facts.ip?.subnet ?? null,
        evidence: facts.evidence,
      },
      tarpit,
      sender: null,
    });
  }

  /** A fresh pending verification with one send and no code yet. */
  private pendingVerification(
    to: string,
    input: SendInput,
    now: number,
    ttlMs: number,
    o: Pick<Verification, 'resendAfter' | 'client' | 'tarpit' | 'sender'>,
  ): Verification {
    return {
      id: newVerificationId(),
      to,
      channel: input.channel,
      locale: input.locale ?? null,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
      expiresAt: now + ttlMs,
      attempts: 0,
      maxAttempts: this.d.codes.maxAttempts,
      sends: 1,
      lastSentAt: now,
      codes: [],
      failureReason: null,
      ...o,
    };
  }

  private async sendTestNumber(e164: string, input: SendInput, code: string, now: number): Promise<SendResult> {
    const d = this.d;
    const ttlMs = d.codes.ttlSeconds * 1000;
    const v = this.pendingVerification(e164, input, now, ttlMs, { resendAfter: now, client: { testNumber: true }, tarpit: false, sender: 'test-number' });
    v.codes = [hashCode(d.keyring(), { id: v.id, to: e164, channel: input.channel }, code, now + ttlMs)];
    await d.store.createVerification(v);
    const decision: Decision = { decision: 'allow', reasons: ['test_number'], shadow: [], score: 0, powLevel: 'normal' };
    await this.appendEvent({ id: eventId(), at: now, type: 'send', to: e164, decision: 'allow', reasons: ['test_number'], data: { verificationId: v.id, testNumber: true } });
    return { verification: publicView(v), decision, resend: false };
  }

  /**
   * What the observation counters say (`counts`, from the one store call `send` made with `layout.specs`),
   * after recording the IP's country when it is its first request for it today (`ipCountrySpecs`: a second
   * store call), then the throttle state machine for the request's scopes.
   */
  private async observe(f: SendFacts, p: Policy, layout: ObservationLayout, c: number[], now: number): Promise<{ state: StateFacts; throttleChanges: ThrottleChange[] }> {
    const d = this.d;
    const idx = layout.index;
    // A country this IP (or, for IPv6, its /56) did not ask for today: record it. Of racing first requests
    // one counts it (the `seen` spec's limit is 1); either way the call returns the countries with this one
    // included, which is why the decision waits for it. The /64's and the /56's are separate calls issued
    // together (one round trip with Redis auto-pipelining): each `seen` may deny on its own.
    const countriesOf = async (seenAt: number | undefined, countAt: number | undefined, record: LimitSpec[] | undefined): Promise<number> => {
      const count = countAt !== undefined ? (c[countAt] ?? 0) : 0;
      if (!record || seenAt === undefined || (c[seenAt] ?? 0) > 0) return count;
      const recorded = await d.store.consumeLimits(record, now);
      return recorded.counts[1] ?? count + 1;
    };
    const [ipOwn, subnetOwn] = await Promise.all([
      countriesOf(idx.ipCountrySeen, idx.ipCountries, layout.ipCountryRecord),
      countriesOf(idx.subnetCountrySeen, idx.subnetCountries, layout.subnetCountryRecord),
    ]);
    const ipCountries = Math.max(ipOwn, subnetOwn);

    // The throttle's scopes of this request: an email address has no country or prefix scope.
    const scopes: [string, number][] = [['global', c[idx.global] ?? 0]];
    if (idx.country !== undefined) scopes.push([`country:${f.number.region}`, c[idx.country] ?? 0]);
    if (idx.prefix !== undefined) scopes.push([`prefix:${f.number.prefix}`, c[idx.prefix] ?? 0]);
    const throttled: string[] = [];
    const changes: ThrottleChange[] = [];
    for (const [scope, count] of scopes) {
      const prev = d.state.throttle(scope);
      const { state, change } = stepThrottle(scope, prev, count, p, now);
      const kept = await this.keepThrottle(scope, prev, state, change, p, now);
      // A change neither recorded here nor by another instance (none is expected) keeps its event with the
      // request's final ones.
      if (change && kept === 'none') changes.push(change);
      if (state.tightenedSince !== null) throttled.push(scope);
    }

    const q = d.state.quarantineFor(f.number.prefix, f.number.region, now);
    return {
      state: {
        throttled,
        quarantine: q ? { scope: q.scope, mode: q.mode } : null,
        escalation: escalationLevel(idx.escalation.map((i) => c[i] ?? 0), p, escalationKeys(f)),
        paused: d.state.pausedFor(f.number.e164, f.number.region, f.channel),
        velocity: { device: idx.device !== undefined ? (c[idx.device] ?? 0) : 0, ip: idx.ip !== undefined ? (c[idx.ip] ?? 0) : 0 },
        trusted: idx.trust !== undefined && (c[idx.trust] ?? 0) > 0,
        numberVerifiedBefore: (c[idx.verified] ?? 0) > 0,
        unverifiedSends: c[idx.unverified] ?? 0,
        failedChecks: c[idx.failures] ?? 0,
        ipCountries,
      },
      throttleChanges: changes,
    };
  }

  /**
   * Keep a scope's stepped throttle state: this instance's snapshot at once, the store for a flip (with its
   * event, journaled ahead) or a baseline update at most once a minute. A flip is recorded by one instance:
   * every instance steps a scope on the same shared counts, so several may flip it at the same moment (each
   * recorded its own `throttle.tightened` before); the others keep it in their own view ('theirs').
   */
  private async keepThrottle(scope: string, prev: ThrottleState | null, state: ThrottleState, change: ThrottleChange | null, p: Policy, now: number): Promise<'recorded' | 'theirs' | 'none'> {
    const d = this.d;
    if (state === prev) return 'none';
    d.state.setThrottleLocal(scope, state);
    // Persist a flip at once, a baseline update at most once a minute per scope: a rising scope would
    // otherwise be written on every request. Kept a week; a scope nobody uses costs nothing after that.
    const last = this.throttlePersistedAt.get(scope) ?? -Infinity;
    if (!change && now - last < 60_000) return 'none';
    // Bounded: requests to ever new prefixes must not grow it without end (the oldest go; at worst a scope's
    // baseline is written once more than needed).
    this.throttlePersistedAt.delete(scope);
    if (this.throttlePersistedAt.size >= MAX_PERSIST_TIMES) this.throttlePersistedAt.delete(this.throttlePersistedAt.keys().next().value!);
    this.throttlePersistedAt.set(scope, now);
    const persist = () => d.store.putSetting(SETTING.throttle + scope, state, 7 * 86_400_000, now);
    if (!change) {
      await persist();
      return 'none';
    }
    // A flip is recorded with its own write, journaled ahead (service/journal.ts recordedStep), not with
    // the request's final events: a crash or a store failure in between would lose it. The event's once-only
    // claim is taken inside the step, so an instance that claims and stops leaves its entry to recovery. Every
    // instance that flips writes the state (the same flip), so a winner that failed to cannot leave the store
    // saying "normal" (and the baseline learning the attack) while the claim keeps the others from recording.
    // A scope stays tightened at least minTightenedMinutes, so it cannot tighten again within that; a claim for
    // relaxing lasts as long, at most a minute.
    // The claim names its slot of that length: every instance flipping at the same moment names the same one,
    // and a claim that recovery takes long after (service/journal.ts) cannot stand in the way of a later flip.
    const min = p.throttle.minTightenedMinutes * 60_000;
    const ttlMs = change.to === 'tightened' ? Math.max(1_000, min) : Math.min(60_000, Math.max(1_000, min));
    const slot = Math.floor(now / ttlMs) * ttlMs;
    const claim: StepClaim = { key: `throttle:flip:${scope}:${change.to}:${slot}`, ttlMs, find: { query: { type: `throttle.${change.to}`, from: slot }, data: { scope } } };
    const event = throttleEvent(change, now);
    const won = await recordedStep(
      d.store,
      event,
      async (take) => {
        const first = await take();
        await persist();
        return first;
      },
      (first, e) => (first ? e : null),
      claim,
    );
    if (!won) return 'theirs';
    d.observe?.(event);
    return 'recorded';
  }

  /**
   * Relax the tightened scopes no request comes to any more. The throttle steps on each request to its scope,
   * so a surge that stopped dead left its scope tightened, and reported so by the metrics and the monitoring
   * state, until the next request came. Run every minute with the server (`ctx.background`): it reads each
   * tightened scope's 10-minute count (no request counted) and steps it as a request would. Of several
   * instances, one records the flip (keepThrottle's claim). Returns the scopes relaxed.
   */
  async relaxIdleThrottles(now: number): Promise<string[]> {
    const d = this.d;
    await d.state.fresh();
    const tightened = d.state.tightenedScopes();
    if (tightened.length === 0) return [];
    const p = d.policy();
    const counts = await d.store.peekLimits(tightened.map(throttleScopeSpec), now);
    const relaxed: string[] = [];
    for (const [i, scope] of tightened.entries()) {
      const prev = d.state.throttle(scope);
      if (prev?.tightenedSince == null) continue;
      const { state, change } = stepThrottle(scope, prev, counts[i] ?? 0, p, now);
      if (change?.to !== 'normal') continue;
      if ((await this.keepThrottle(scope, prev, state, change, p, now)) === 'recorded') relaxed.push(scope);
    }
    return relaxed;
  }

  /** A tarpit's answer takes about as long as a real delivery (the moving average, ±20 %). */
  private asLongAsADelivery(): Promise<void> {
    return (this.d.sleep ?? sleep)(this.deliveryMs * (0.8 + Math.random() * 0.4));
  }

  private sendEvent(f: SendFacts, now: number, userAgent: string | null): AuditEvent {
    return {
      id: eventId(),
      at: now,
      type: 'send',
      to: f.number.e164,
      prefix: f.number.prefix,
      country: f.number.region,
      ip: f.ip?.ip ?? null,
      deviceId: f.evidence.deviceId,
      data: {
        channel: f.channel,
        userAgent,
        number: { region: f.number.region, type: f.number.type, disposable: f.number.disposable, sources: f.number.sources },
        ipFacts: f.ip,
        evidence: f.evidence,
        lists: f.lists,
      },
    };
  }

  private async finishSend(
    event: AuditEvent,
    decision: Decision,
    extra: Record<string, unknown>,
    facts: SendFacts,
    policy: Policy,
    throttleChanges: ThrottleChange[] = [],
    sent: Verification | null = null,
    journal: JournalSlot = { key: null },
  ): Promise<void> {
    event.decision = decision.decision;
    event.reasons = decision.reasons;
    event.data = { ...event.data, score: decision.score, shadow: decision.shadow, state: facts.state, ...extra };
    const events: AuditEvent[] = [event, ...throttleChanges.map((ch) => throttleEvent(ch, event.at))];
    // Rule trips feed escalation: a key that keeps getting refused by the risk rules is treated more strictly.
    // Rate-limit denials do not count: the limit already did its job, and counting them would let an
    // attacker who hammers a victim's number (or a user who taps "resend" early) escalate innocent keys.
    // Forced challenges of the adaptive layers (throttled, quarantine, escalation) do not count either: they
    // hit innocent users of a surging scope too.
    // Rules about the number or its range (its unverified sends, a quarantine's CAPTCHA) are no trips either.
    // These writes do not depend on each other: they leave together (one round trip, one commit).
    const writes: (Promise<unknown> | void)[] = [this.appendEvents(events, journal)];
    if (isRuleTrip(decision, policy)) writes.push(this.d.store.consumeLimits(escalationKeys(facts).map((k) => escalationSpec(k, policy)), event.at));
    if (sent) {
      const m: SentMessage = { to: facts.number.e164, prefix: facts.number.prefix, region: facts.number.region, channel: facts.channel, verificationId: sent.id };
      for (const h of this.d.hooks) writes.push(h.afterSent?.(m, event.at));
    }
    await Promise.all(writes);
    for (const h of this.d.hooks) await h.afterDecision?.(facts, decision, event.at);
  }

  /**
   * The after-steps of a send or an approval whose request stopped before them (a crash while the provider held
   * the message, a store that failed the closing write), run when the journal records its event
   * (`recoverJournal`, from the maintenance loop): a send's listeners (spend and budgets, the SMS-pumping tally),
   * an approval's trust counters and listeners. Counted at `now`, the recovery's time. Where only the closing
   * write failed, the listeners may have run already and count twice: budgets then err on the side of the money.
   */
  async afterRecovered(entry: JournalEntry, now: number): Promise<void> {
    const d = this.d;
    if (entry.kind === 'send') {
      const e = entry.event;
      const data = e.data ?? {};
      // An email send has no prefix or country (null): its spend is still counted.
      if (e.decision !== 'allow' || !e.to) return;
      if (typeof data.channel !== 'string' || typeof data.verificationId !== 'string') return;
      const m: SentMessage = { to: e.to, prefix: e.prefix ?? null, region: e.country ?? null, channel: data.channel as Channel, verificationId: data.verificationId };
      for (const h of d.hooks) await h.afterSent?.(m, now);
    } else if (entry.kind === 'approval') {
      const v = await d.store.getVerification(entry.verificationId);
      if (!v || v.status !== 'approved') return;
      await d.store.consumeLimits(this.approvalSpecs(v), now);
      for (const h of d.hooks) await h.afterApproved?.(v, now);
    }
  }

  /** What an approval counts: the number verified and, with its device and network, a trusted context. */
  private approvalSpecs(v: Verification): LimitSpec[] {
    const client = v.client as { deviceId?: string | null; subnet?: string | null };
    const trustCtx = contextHash(client.deviceId ?? null, client.subnet ?? null);
    return trustCtx ? [verifiedNumberSpec(v.to), trustSpec(v.to, trustCtx)] : [verifiedNumberSpec(v.to)];
  }

  // ------------------------------------------------------------------ check

  async check(input: { id?: string; to?: unknown; channel?: Channel; code: string; client?: { ip?: string; deviceId?: string } }): Promise<CheckResult> {
    const d = this.d;
    const now = d.clock();
    const code = normalizeCodeInput(input.code, d.codes.length);
    const ipFacts = this.clientIpFacts(input.client?.ip);
    // Before the lookup: a malformed code must get the same answer whether or not the number has a code
    // pending, or it would tell that for free (no attempt, no failure counted).
    if (code === null) throw new ApiError('invalid_code');

    // The shared state's refresh (and with it the policy another instance saved) leaves with the lookup: checks
    // never refreshed it, and an instance serving only checks applied a lowered failed-check limit up to a
    // minute late (a multi-instance review). Its failure surfaces at the await, not as an unhandled rejection.
    const refreshed = d.state.fresh();
    refreshed.catch(() => {});
    let v: Verification | null;
    if (input.id !== undefined) v = await d.store.getVerification(input.id);
    else {
      // Without a channel, an address is the email channel's destination, and a number any phone channel's.
      const channel = input.channel ?? channelOfDestination(input.to);
      const dest = destinationKey(d.signals, channel, input.to);
      if (!dest.ok) {
        // A check takes no defaultRegion (the send did): say what works instead of suggesting one.
        const message = dest.reason === 'needs_region' ? 'a check by number needs the number in international form: a leading + and the country code (as the send returned it in "to")' : dest.message;
        throw new ApiError(dest.code, { message });
      }
      if (input.channel !== undefined || channel === 'email') v = await d.store.findPending(dest.key, channel, now);
      else {
        // A number's newest pending verification on any enabled phone channel: a user who asked for the code by
        // WhatsApp after an SMS types the WhatsApp one (Twilio Verify keeps one verification across channels;
        // here each channel has its own, and checking only the SMS one spent an attempt on the wrong code).
        const phoneChannels = d.channels.filter((c) => c !== 'email');
        const found = await Promise.all(phoneChannels.map((c) => d.store.findPending(dest.key, c, now)));
        v = newestPending(found);
      }
    }
    await refreshed;
    const policy = d.policy();
    const base: AuditEvent = { id: eventId(), at: now, type: 'check', to: v?.to ?? null, ip: ipFacts?.ip ?? null, deviceId: input.client?.deviceId ?? null };
    if (!v) {
      // Counted against the address's failed-check budgets (not the number's: nothing of it was tried), so that
      // probing many numbers for a pending code meets the lock that guessing meets.
      const specs = ipFacts === null ? [] : checkAddressFailureSpecs(policy, ipFacts);
      const counted = specs.length === 0 ? null : await d.store.consumeLimits(specs, now);
      const denied = counted?.denied[0];
      await this.appendEvent({ ...base, decision: denied ? 'locked' : 'not_found', reasons: denied ? [denied.reason] : [] });
      if (denied) {
        // The answer a check of a pending verification gets from the same lock (checkCode): the whole window as
        // Retry-After, not the time left, or the two would tell apart the numbers that have a code pending.
        const windowMs = specs.find((s) => s.key === denied.key)?.windowMs ?? denied.retryAfterMs;
        throw new ApiError('rate_limited', { retryAfter: Math.ceil(windowMs / 1000), extra: policy.responses.exposeReasons ? { reasons: [denied.reason] } : {} });
      }
      throw new ApiError('verification_not_found');
    }

    // Checks of one number or from one address run one after the other in this process (KeyedSerializer): the
    // failure budgets are read before the compare and counted after it, so parallel guesses would otherwise
    // all read the same count (60 parallel wrong codes from one address were all compared against a limit of
    // 30). Across instances the overshoot is at most one check per other instance. An IPv6 address queues by its
    // /56, whose failures are counted too (checkFailureSpecs), so its /64s cannot race each other; the /48's
    // count can be overshot by one check per /56 sending at the same moment, which is bounded (256 per /48)
    // where queueing by the /48 would make one check wait for every other subscriber of a carrier's /48.
    const found = v;
    const queue = ipFacts === null ? [`n:${found.to}`] : [`n:${found.to}`, `a:${ipFacts.site === null ? addressOf(ipFacts) : ipFacts.network}`];
    return this.checkQueue.run(queue, () => this.checkCode(found, code, input, ipFacts, base, policy, now));
  }

  private async checkCode(
    v: Verification,
    code: string,
    input: { client?: { ip?: string; deviceId?: string } },
    ipFacts: IpFacts | null,
    base: AuditEvent,
    policy: Policy,
    now: number,
  ): Promise<CheckResult> {
    const d = this.d;
    // The channel, so that an export's check line replays against the right verification of a number that has
    // one per channel; a test number's checks are no traffic: marked, so that metrics, stats and alerts leave
    // them out as they leave out its sends.
    const tagged = <T extends Record<string, unknown>>(x: T): T => ({ ...x, channel: v.channel, ...(v.sender === 'test-number' ? { testNumber: true } : {}) });
    const ctx = contextHash(input.client?.deviceId ?? null, ipFacts?.subnet ?? null);
    // One read for the trust counter and the failure counters of both budgets (which budget applies depends
    // on the trust): the two budgets differ only in their first spec (checkFailureSpecs).
    const untrustedSpecs = checkFailureSpecs(policy, v.to, ipFacts, false);
    const trustedSpecs = checkFailureSpecs(policy, v.to, ipFacts, true);
    const read = ctx === null ? untrustedSpecs : [trustSpec(v.to, ctx), trustedSpecs[0]!, ...untrustedSpecs];
    const counts = await d.store.peekLimits(read, now);
    const trusted = ctx !== null && (counts[0] ?? 0) > 0;
    const failureSpecs = trusted ? trustedSpecs : untrustedSpecs;
    const failures = ctx === null ? counts : [counts[trusted ? 1 : 2] ?? 0, ...counts.slice(3)];
    const lockedBy = failureSpecs.find((s, i) => (failures[i] ?? 0) >= s.limit);
    if (lockedBy) {
      await this.appendEvent({ ...base, decision: 'locked', reasons: [lockedBy.reason], data: tagged({ verificationId: v.id }) });
      throw new ApiError('rate_limited', { retryAfter: Math.ceil(lockedBy.windowMs / 1000), extra: policy.responses.exposeReasons ? { reasons: [lockedBy.reason] } : {} });
    }

    // Journal the approval this attempt may make (service/journal.ts) together with the attempt's reservation
    // (one round trip, one commit): it is in the store before any transition. Every path from here writes its
    // event with the entry's deletion. Recovery writes the entry only if this check did approve.
    const journal: JournalSlot = { key: null };
    const approval: AuditEvent = { ...base, decision: 'approved', reasons: [], data: tagged({ verificationId: v.id }) };
    const [reserved] = await Promise.all([
      d.store.reserveAttempt(v.id, now),
      // Covered by the transition's own durable write (or the closing event's), which comes before anything
      // irreversible: SQLite need not flush for the entry by itself.
      this.journal(journal, { kind: 'approval', event: approval, verificationId: v.id }, { covered: true }),
    ]);
    if (!reserved.ok) {
      await this.appendEvents([{ ...base, decision: reserved.reason, reasons: [], data: tagged({ verificationId: v.id }) }], journal);
      if (reserved.reason === 'expired') throw new ApiError('verification_expired');
      if (reserved.reason === 'locked') throw new ApiError('verification_locked');
      if (reserved.reason === 'not_found') throw new ApiError('verification_not_found');
      throw new ApiError('verification_not_pending');
    }
    const rv = reserved.verification;
    const ok = !rv.tarpit && matchCode(d.keyring(), { id: rv.id, to: rv.to, channel: rv.channel }, rv.codes, code, now);
    const data = tagged({ verificationId: rv.id, attempt: rv.attempts });

    if (ok) {
      const approved: AuditEvent = { ...approval, data };
      // approvedBy names this check: recovery writes a journal entry only for the check that approved.
      const won = await d.store.transition(rv.id, 'approved', now, { approvedBy: base.id });
      if (!won) {
        await this.appendEvents([{ ...base, decision: 'not_pending', reasons: [], data }], journal);
        throw new ApiError('verification_not_pending');
      }
      // The approval is decided (the transition above won): what follows are independent writes, sent
      // together (one round trip, one commit).
      const writes: (Promise<unknown> | void)[] = [
        d.store.consumeLimits(this.approvalSpecs(rv), now),
        // Failures count until the owner succeeds: "consecutive" failures in NIST's sense.
        d.store.resetLimits(numberFailureKeys(policy, rv.to)),
        this.appendEvents([approved], journal),
      ];
      for (const h of d.hooks) writes.push(h.afterApproved?.(rv, now));
      await Promise.all(writes);
      return { status: 'approved', verification: publicView({ ...rv, status: 'approved' }) };
    }

    const attemptsLeft = Math.max(0, rv.maxAttempts - rv.attempts);
    await Promise.all([
      d.store.consumeLimits(failureSpecs, now),
      attemptsLeft === 0 ? d.store.transition(rv.id, 'locked', now) : null,
      this.appendEvents([{ ...base, decision: 'denied', reasons: rv.tarpit ? ['tarpit'] : [], data: { ...data, attemptsLeft } }], journal),
    ]);
    return { status: 'denied', attemptsLeft, verification: publicView(attemptsLeft === 0 ? { ...rv, status: 'locked' } : rv) };
  }

  // ------------------------------------------------------------------ read / cancel

  async get(id: string): Promise<PublicVerification> {
    const v = await this.d.store.getVerification(id);
    // Not before what was read is on disk: an approval seen here must survive a crash (Store.settled).
    await this.d.store.settled?.();
    if (!v) throw new ApiError('verification_not_found');
    const now = this.d.clock();
    if (v.status === 'pending' && v.expiresAt <= now) return { ...publicView(v), status: 'expired' };
    return publicView(v);
  }

  async cancel(id: string): Promise<PublicVerification> {
    const now = this.d.clock();
    const v = await this.d.store.getVerification(id);
    if (!v) throw new ApiError('verification_not_found');
    // It reads as expired (get) and a check answers 410: a cancel says the same rather than "canceled".
    if (v.status === 'pending' && v.expiresAt <= now) throw new ApiError('verification_expired');
    const event: AuditEvent = { id: eventId(), at: now, type: 'cancel', to: v.to, data: { verificationId: id } };
    const canceled = await recordedStep(this.d.store, event, () => this.d.store.transition(id, 'canceled', now), (ok, e) => (ok ? e : null));
    if (!canceled) throw new ApiError('verification_not_pending');
    this.d.observe?.(event);
    return publicView({ ...v, status: 'canceled' });
  }

  // ------------------------------------------------------------------ audit

  /**
   * The journal entry of a send whose code a store step is about to store (service/journal.ts): its audit event
   * as it stands before the sender answers. Undefined for a store that keeps nothing across a restart. `slot`
   * remembers its key; the entry's time is the write's, not the request's: recovery's wait counts from when the
   * entry could exist.
   */
  private sendEntry(
    slot: JournalSlot,
    event: AuditEvent,
    decision: Decision,
    facts: SendFacts,
    verificationId: string,
    sends: number,
    resend: boolean,
  ): JournalWrite | undefined {
    if (this.d.store.kind === 'memory') return undefined;
    const value: JournalEntry = {
      kind: 'send',
      event: {
        ...event,
        decision: decision.decision,
        reasons: decision.reasons,
        data: { ...event.data, verificationId, resend, sends, score: decision.score, shadow: decision.shadow, state: facts.state },
      },
    };
    slot.key = journalKey('send', event.id);
    return { key: slot.key, at: this.d.clock(), value };
  }

  /**
   * Run a store step that writes the journal entry named by `slot` when it succeeds. A step reported failed may
   * still have landed (a Redis command timeout, a connection lost after COMMIT): its entry is deleted again,
   * best effort, so that a request answered 503 leaves nothing that recovery would record.
   */
  private async journaled<T>(slot: JournalSlot, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (slot.key !== null) this.d.store.deleteJournal(slot.key).catch(() => {});
      throw err;
    }
  }

  /**
   * Write a journal entry with a write of its own (nothing for a store that keeps nothing across a restart);
   * `slot` remembers its key. See `journaled` for a write reported failed.
   */
  private async journal(slot: JournalSlot, entry: JournalEntry | JournalWrite, opts?: { covered?: boolean }): Promise<void> {
    if (this.d.store.kind === 'memory') return;
    const write = 'kind' in entry ? { key: journalKey(entry.kind, entry.event.id), at: this.d.clock(), value: entry } : entry;
    slot.key = write.key;
    await this.journaled(slot, () => this.d.store.putJournal(write.key, write.at, write.value, opts));
  }

  private async appendEvent(e: AuditEvent): Promise<void> {
    await this.appendEvents([e]);
  }

  /** Append the request's events; `journal`: its journal entry, deleted in the same atomic store step. */
  private async appendEvents(events: AuditEvent[], journal?: JournalSlot): Promise<void> {
    await this.d.store.appendEvents(events, journal?.key ?? undefined);
    if (this.d.observe) for (const e of events) this.d.observe(e);
  }
}

/** The journal entry of one request, once written (`key` null: none). */
interface JournalSlot {
  key: string | null;
}


/** The audit event of a throttle flip. */
function throttleEvent(ch: ThrottleChange, at: number): AuditEvent {
  return { id: eventId(), at, type: `throttle.${ch.to}`, decision: null, reasons: [], data: { ...ch } };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type { EvidenceFacts };
