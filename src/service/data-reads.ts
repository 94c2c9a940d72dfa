/**
 * A record of reads that hand out personal data in full (docs/privacy.md, "Reads in full"): an unmasked page of
 * the audit log, an unmasked export, a subject access request. Who read what is itself something a data
 * protection officer asks for, and the audit log is where every other admin action is already recorded.
 *
 * The record names nobody in clear: a number or address the read was filtered by is masked as the log masks it.
 * It is appended directly, not journaled: a read changes nothing a crash could leave half done.
 */
import { eventId } from './ids.ts';
import { maskedPrefix, numberMasker } from './audit-export.ts';
import type { AuditEvent, Store } from '../store/interface.ts';

export interface PersonalDataRead {
  now: number;
  /** The API key's id, or `cli`. */
  by: string | null;
  /** What was read: `events` (GET /v1/admin/events), `events.export` (the CLI), `subject` (`subject show`). */
  what: 'events' | 'events.export' | 'subject';
  /** Records handed out. */
  count: number;
  /** The read's filters; `number`, and a `prefix` as long as a number, are masked here. */
  filters: Record<string, unknown>;
}

const mask = numberMasker('mask');

export function personalDataReadEvent(r: PersonalDataRead): AuditEvent {
  const filters: Record<string, unknown> = {};
  // A prefix filter may be a whole number (prefix matches are by "starts with"): maskedPrefix masks one longer
  // than any range's, and leaves a range's prefix as it is.
  for (const [k, v] of Object.entries(r.filters)) {
    if (v === undefined) continue;
    filters[k] = typeof v !== 'string' ? v : k === 'number' ? mask(v) : k === 'prefix' ? maskedPrefix(v, mask) : v;
  }
  return { id: eventId(), at: r.now, type: 'data.read', data: { by: r.by, what: r.what, count: r.count, filters } };
}

export async function recordPersonalDataRead(store: Pick<Store, 'appendEvents'>, r: PersonalDataRead): Promise<void> {
  await store.appendEvents([personalDataReadEvent(r)]);
}
