/**
 * The send journal: a write-ahead record of a code that is about to leave, so that a crash while a provider
 * holds the message cannot leave a delivered SMS without its audit event.
 *
 * The audit event of a send carries the sender's answer, so it can only be written after the delivery. Before
 * the code is handed to a sender, the service writes the event as it would be without that answer into a
 * setting `journal:send:<event id>`, in the same store step that makes the send real (the first send's
 * atomic limits + verification, or a resend's new code): one SQLite commit, one Redis round trip, no extra
 * wait. The final event and the entry's deletion again leave together. An entry left behind means the
 * process stopped (or the store failed) between the two.
 *
 * `recoverSendJournal` (the maintenance loop, every minute) turns such an entry into the audit event, marked
 * `delivery: { ok: null, interrupted: true }`: the code may or may not have reached the phone. It waits
 * `RECOVER_AFTER_MS` after the send, longer than any delivery can take (a sender's timeout is at most 60 s,
 * two tries each), so an entry whose delivery is still running on another instance is left alone. An entry
 * whose verification does not hold the send (its limits refused it, or the store step failed) wrote nothing
 * that left the building: it is dropped without an event.
 *
 * Stores that keep nothing across a restart (the memory store, and so the replay) need no journal.
 */
import type { AuditEvent, Store } from '../store/interface.ts';

export const SEND_JOURNAL_PREFIX = 'journal:send:';
/** An entry younger than this may belong to a delivery still running on another instance. */
export const RECOVER_AFTER_MS = 15 * 60_000;

export interface SendJournalEntry {
  /** The send's audit event as it stands before the delivery (decision, reasons, facts, verification). */
  event: AuditEvent;
  verificationId: string;
  /** The verification's send count once this send's code is stored: a resend that failed to store has fewer. */
  sends: number;
}

export function sendJournalKey(eventId: string): string {
  return SEND_JOURNAL_PREFIX + eventId;
}

/** The audit event of a journaled send whose delivery outcome nobody recorded. */
export function interruptedSendEvent(entry: SendJournalEntry): AuditEvent {
  return { ...entry.event, data: { ...entry.event.data, delivery: { ok: null, interrupted: true } } };
}

export interface JournalRecovery {
  /** Entries written as audit events with an unknown delivery outcome. */
  recovered: number;
  /** Entries whose send never happened (nothing was stored for it): removed without an event. */
  dropped: number;
}

/**
 * Writes the events of sends whose outcome was never recorded, then forgets their entries. Instances that run
 * it at once claim each entry first (a one-time token), so an entry becomes at most one event; a claimer that
 * dies before deleting leaves the entry to be claimed again once the claim lapses.
 */
export async function recoverSendJournal(store: Store, now: number): Promise<JournalRecovery> {
  const out: JournalRecovery = { recovered: 0, dropped: 0 };
  if (store.kind === 'memory') return out;
  const entries = await store.listSettings<SendJournalEntry>(SEND_JOURNAL_PREFIX, now);
  for (const { key, value } of entries) {
    if (!isEntry(value)) {
      // Not ours to interpret; leaving it would retry it every minute forever.
      await store.deleteSetting(key);
      out.dropped++;
      continue;
    }
    if (value.event.at > now - RECOVER_AFTER_MS) continue;
    if (!(await store.useOnce(`journal-claim:${key}`, RECOVER_AFTER_MS, now))) continue;
    const v = await store.getVerification(value.verificationId);
    if (v && v.sends >= value.sends) {
      await store.appendEvents([interruptedSendEvent(value)]);
      out.recovered++;
    } else out.dropped++;
    await store.deleteSetting(key);
  }
  return out;
}

function isEntry(x: unknown): x is SendJournalEntry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Partial<SendJournalEntry>;
  return (
    typeof e.verificationId === 'string' &&
    typeof e.sends === 'number' &&
    typeof e.event === 'object' &&
    e.event !== null &&
    typeof e.event.id === 'string' &&
    typeof e.event.at === 'number' &&
    typeof e.event.type === 'string'
  );
}
