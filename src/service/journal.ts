/**
 * The journal: a write-ahead record of an irreversible step whose audit event is written after it, so that a
 * crash (or a store failure) in between cannot leave the step without its event.
 *
 * - **send**: the audit event of a send carries the sender's answer, so it can only be written after the
 *   delivery. The store step that stores the code (`Store.consumeLimitsAndCreate`, `Store.addCode`) writes the
 *   event as it stands without that answer, atomically and only when the step happens, so before the code is
 *   handed to a sender. An entry is therefore proof that a code was about to leave.
 * - **approval**: the approved check's event (without the attempt's number), written with the reservation of
 *   the check's attempt, so before any transition to `approved` (which may not come: a wrong code, a failure,
 *   a racing check; recovery asks the verification). Every check that reserves an attempt writes one.
 * - **step**: an admin's list change, pause, resume or policy save, a cancel, a quarantine's start or end, a
 *   throttle flip, a delivery receipt, a key made or revoked (`recordedStep`): the event as known before the step, written
 *   before it. Recovery cannot tell whether the step then happened, so the event it writes says
 *   `interrupted: true`: attempted, outcome unknown (the state shows it). A step that is a once-only claim
 *   (a receipt, a quarantine's end) names its claim: recovery takes a claim nobody holds, and drops the entry
 *   when the claim's holder recorded the step.
 *
 * Entries live in the store's journal (`Store.putJournal`), apart from the settings. The request's final audit
 * event deletes its entry in the same atomic store step (`Store.appendEvents(events, forget)`), so an entry is
 * left behind only when the process stopped (or the store failed) between the step and its event.
 *
 * `recoverJournal` (the maintenance loop, every minute) turns such an entry into its audit event — a send's
 * marked `delivery: { ok: null, interrupted: true }`: the code may or may not have reached the phone. It waits
 * `RECOVER_AFTER_MS` after the entry was written: a request still running on another instance finishes before
 * that, since a delivery starts no attempt after 10 minutes. An approval entry becomes an event only when the
 * verification was approved by that very check (its `approvedBy` is the entry's event id); otherwise it is
 * dropped, as is a claiming step's whose claim holder recorded it.
 *
 * Stores that keep nothing across a restart (the memory store, and so the replay) need no journal.
 */
import type { AuditEvent, EventQuery, JournalRecord, Store } from '../store/interface.ts';

/**
 * An entry younger than this may belong to a request still running on another instance: a delivery starts no
 * attempt after 10 minutes (`DEFAULT_DELIVERY_DEADLINE_MS`, delivery/dispatcher.ts) and an attempt times out
 * within 60 s.
 */
export const RECOVER_AFTER_MS = 15 * 60_000;
/** Entries recovered per maintenance run; the rest wait for the next minute. */
const RECOVER_BATCH = 500;

export type JournalEntry =
  | {
      kind: 'send';
      /** The send's audit event as it stands before the delivery (decision, reasons, facts, verification). */
      event: AuditEvent;
    }
  | {
      kind: 'approval';
      /** The approved check's audit event. */
      event: AuditEvent;
      verificationId: string;
    }
  | {
      kind: 'step';
      /** The step's audit event as known before the step. */
      event: AuditEvent;
      /** The step's once-only claim, when it has one. */
      claim?: StepClaim;
    };

/**
 * A step that takes a once-only claim (`Store.useOnce(key, ttlMs)`) before its event, e.g. a receipt's
 * deduplication: `find` says how to find the event of whoever holds the claim (events matching `query` whose
 * `data` has every field of `data`).
 */
export interface StepClaim {
  key: string;
  ttlMs: number;
  find: { query: Omit<EventQuery, 'limit'>; data: Record<string, string | number | null> };
}

export function journalKey(kind: JournalEntry['kind'], eventId: string): string {
  return `${kind}:${eventId}`;
}

/** The audit event a journal entry stands for, as recovery writes it. */
/**
 * Final events this process knows but could not write: a send whose code left while the store failed its
 * closing write (answered 201). Recovery in this process writes the known event (its delivery's outcome) instead
 * of "interrupted" (a chaos review filling the disk found delivered codes recorded as interrupted). Keyed by
 * journal key; lost with the process, when "interrupted" is what recovery can truthfully say. Bounded.
 */
const knownOutcomes = new Map<string, { event: AuditEvent; at: number }>();
/** Rarely more than a few (a store failing between a delivery and its event); bounded against a long outage. */
const MAX_KNOWN_OUTCOMES = 1_000;

export function rememberOutcome(key: string, event: AuditEvent): void {
  knownOutcomes.delete(key);
  // Oldest first: those another instance recovered (or that a long outage left) go after two recovery delays.
  for (const [k, v] of knownOutcomes) {
    if (event.at - v.at <= 2 * RECOVER_AFTER_MS && knownOutcomes.size < MAX_KNOWN_OUTCOMES) break;
    knownOutcomes.delete(k);
  }
  knownOutcomes.set(key, { event: structuredClone(event), at: event.at });
}

export function recoveredEvent(entry: JournalEntry): AuditEvent {
  if (entry.kind === 'approval') return entry.event;
  if (entry.kind === 'step') return { ...entry.event, data: { ...entry.event.data, interrupted: true } };
  return { ...entry.event, data: { ...entry.event.data, delivery: { ok: null, interrupted: true } } };
}

export interface JournalRecovery {
  /** Entries written as their audit events. */
  recovered: number;
  /**
   * Entries whose step did not happen (an approval that failed or lost its race), whose claim's holder recorded
   * the step, or unreadable: removed.
   */
  dropped: number;
}

/**
 * Writes the events of steps whose event was never recorded, each with its entry's deletion. Instances that run
 * it at once claim each entry first (a one-time token), so an entry becomes at most one event; a claimer that
 * dies before writing leaves the entry to be claimed again once the claim lapses.
 */
export async function recoverJournal(store: Store, now: number, afterRecovered?: (entry: JournalEntry, now: number) => Promise<void>): Promise<JournalRecovery> {
  const out: JournalRecovery = { recovered: 0, dropped: 0 };
  if (store.kind === 'memory') return out;
  const entries: JournalRecord<JournalEntry>[] = await store.listJournal<JournalEntry>(now - RECOVER_AFTER_MS, RECOVER_BATCH);
  for (const { key, value } of entries) {
    const known = knownOutcomes.get(key)?.event;
    if (!(await store.useOnce(`journal-claim:${key}`, RECOVER_AFTER_MS, now))) {
      // Another instance recovers it (as interrupted: it cannot know better).
      knownOutcomes.delete(key);
      continue;
    }
    if (!isEntry(value)) {
      // Not ours to interpret; leaving it would retry it every minute forever.
      await store.deleteJournal(key);
      out.dropped++;
    } else if (await stepHappened(store, value, now)) {
      await store.appendEvents([known ?? recoveredEvent(value)], key);
      knownOutcomes.delete(key);
      out.recovered++;
      // The step's after-steps (a send's spend and SMS-pumping tally, an approval's trust counters), which the
      // stopped request never ran. Best effort: the event is what must not be lost.
      await afterRecovered?.(value, now).catch(() => {});
    } else {
      await store.deleteJournal(key);
      out.dropped++;
    }
  }
  return out;
}

/**
 * A send's entry exists only with its stored code; an approval's is written before the transition it records;
 * a step's, whose outcome is unknown, is recorded as interrupted. A claiming step's is recorded unless whoever
 * holds the claim recorded it: when nobody holds it (a crash before the claim), recovery takes it, so that a
 * later retry of the step is the duplicate, not this record.
 */
async function stepHappened(store: Store, e: JournalEntry, now: number): Promise<boolean> {
  if (e.kind === 'step') {
    if (!e.claim) return true;
    // Recorded by whoever held the claim: dropped. Asked first, since a claim shorter than the recovery's
    // wait (a throttle flip's) has lapsed by now and would be free to take, recording the step twice.
    if (await claimRecorded(store, e.claim)) return false;
    await store.useOnce(e.claim.key, e.claim.ttlMs, now);
    return true;
  }
  if (e.kind !== 'approval') return true;
  const v = await store.getVerification(e.verificationId);
  return v !== null && v.status === 'approved' && v.approvedBy === e.event.id;
}

/** Whether the event of the claim's holder is in the audit log. */
async function claimRecorded(store: Store, claim: StepClaim): Promise<boolean> {
  const events = await store.queryEvents({ ...claim.find.query, limit: 1000 });
  return events.some((ev) => Object.entries(claim.find.data).every(([k, v]) => ev.data?.[k] === v));
}

function isEntry(x: unknown): x is JournalEntry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as { kind?: unknown; verificationId?: unknown; event?: Partial<AuditEvent> | null };
  const eventOk = typeof e.event === 'object' && e.event !== null && typeof e.event.id === 'string' && typeof e.event.at === 'number' && typeof e.event.type === 'string';
  if (!eventOk) return false;
  return e.kind === 'send' || e.kind === 'step' || (e.kind === 'approval' && typeof e.verificationId === 'string');
}

/**
 * Run a step whose audit event is written after it (an admin's list change, a pause, a policy save, a cancel, a
 * quarantine …) with that event journaled ahead, so that a crash or a store failure in between cannot leave the
 * step without a record: the entry before the step, the event after it, deleting the entry in the same atomic
 * store step. An entry left behind is recovered as the event with `interrupted: true`. A step that throws
 * deletes its entry again (best effort) and records nothing, as before: it failed, or its outcome was lost with
 * the store's reply, and its caller fails either way (503; exit 1 for the CLI). `finish` completes the event from
 * the step's result (null: nothing to record, e.g. nothing was removed).
 *
 * Costs one more store write before the step (a round trip on Redis and PostgreSQL, a flush on SQLite): these
 * steps are rare. The few on a send's path (a throttle flip, a quarantine's start or end, the budget breaker's
 * pause) happen when traffic surges or calms, once per attack or once a day, not per request.
 *
 * A step that is a once-only claim (a quarantine's end, a receipt's deduplication) writes its entry before the
 * claim, so that an instance that claims and stops leaves the record behind, and names the claim (`claim`):
 * recovery then records the entry only when nobody else recorded the claimed step (`stepHappened`), so an
 * entry left by a crash before the claim, or by an instance that lost it, does not duplicate the winner's. The
 * step takes the claim with the `take` it is given (at the event's time). Once `take` was called, a step that
 * throws keeps its entry: the claim may have been taken by a call whose reply was lost (a timeout), and every
 * retry would then find it held and record nothing. A step that throws before it (an admin's lift whose
 * deletion failed) did not happen, and deletes its entry like any other.
 */
export async function recordedStep<T>(
  store: Store,
  event: AuditEvent,
  step: (take: () => Promise<boolean>) => Promise<T>,
  finish: (result: T, event: AuditEvent) => AuditEvent | null = (_r, e) => e,
  claim?: StepClaim,
): Promise<T> {
  const key = store.kind === 'memory' ? undefined : journalKey('step', event.id);
  const forget = () => {
    if (key !== undefined) store.deleteJournal(key).catch(() => {});
  };
  let claiming = false;
  const take = () => {
    if (!claim) throw new Error('recordedStep: take() without a claim');
    claiming = true;
    return store.useOnce(claim.key, claim.ttlMs, event.at);
  };
  let result: T;
  try {
    if (key !== undefined) await store.putJournal(key, event.at, { kind: 'step', event, ...(claim ? { claim } : {}) } satisfies JournalEntry);
    result = await step(take);
  } catch (err) {
    if (!claiming) forget();
    throw err;
  }
  const final = finish(result, event);
  await store.appendEvents(final ? [final] : [], key);
  return result;
}
