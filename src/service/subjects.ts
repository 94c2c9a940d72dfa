/**
 * Requests about one person (GDPR Art. 15 access, Art. 17 erasure; docs/privacy.md): every stored record that
 * names a phone number or an email address, and their erasure in one store step. A privacy review found no way
 * to answer either: the events filter missed list and pause events quoting the number, and retention leaves
 * list entries, long-lived counters and (on SQLite) free pages behind.
 */
import { limitKeyOf } from '../engine/limits.ts';
import type { AuditEvent, Store, SubjectRecords, Verification } from '../store/interface.ts';
import { channelOfDestination, destinationKey } from './destination.ts';
import { eventId } from './ids.ts';
import { recordedStep } from './journal.ts';
import type { Signals } from './ports.ts';

export type SubjectResult =
  | { ok: true; destination: string; names: string[]; records: SubjectRecords }
  | { ok: false; message: string };

/**
 * The names a destination is stored under: its key (verifications, events, list values), and for counter,
 * marker and setting keys also its limit key (an address without its `+tag`: the budget it shares). Records of
 * the base address itself (`bob@x` for `bob+1@x`) are another destination's and stay.
 */
export function subjectNames(signals: Pick<Signals, 'parsePhone'>, input: string): { ok: true; names: string[]; keyParts: string[] } | { ok: false; message: string } {
  const channel = channelOfDestination(input);
  const d = destinationKey(signals, channel, input);
  if (!d.ok) return { ok: false, message: d.message };
  const limitKey = limitKeyOf(d.key);
  return { ok: true, names: [d.key], keyParts: limitKey === d.key ? [d.key] : [d.key, limitKey] };
}

/**
 * Find (and with `erase`, delete) one destination's records. An erasure is recorded as a `subject.erase` event
 * that names nobody: its counts, who, and the operator's note (a ticket number), journaled ahead like every
 * admin step. Logs, alert webhooks, providers and backups are outside the store: docs/privacy.md says what to do.
 */
export async function subjectRequest(
  ctx: { store: Store; signals: Pick<Signals, 'parsePhone'>; state?: { invalidate(): void } },
  input: string,
  opts: { erase: boolean; now: number; by: string; note?: string | null },
): Promise<SubjectResult> {
  const parsed = subjectNames(ctx.signals, input);
  if (!parsed.ok) return parsed;
  const { names, keyParts } = parsed;
  if (!opts.erase) return { ok: true, destination: names[0]!, names, records: await ctx.store.subjectRecords(names, false, keyParts) };
  const event: AuditEvent = { id: eventId(), at: opts.now, type: 'subject.erase', data: { by: opts.by, note: opts.note ?? null } };
  try {
    const records = await recordedStep(ctx.store, event, () => ctx.store.subjectRecords(names, true, keyParts), (r, e) => ({ ...e, data: { ...e.data, erased: counts(r) } }));
    return { ok: true, destination: names[0]!, names, records };
  } finally {
    // Its list entries are gone: instances re-read the lists.
    ctx.state?.invalidate();
  }
}

export function counts(r: SubjectRecords): Record<keyof SubjectRecords, number> {
  return { verifications: r.verifications.length, events: r.events.length, listEntries: r.listEntries.length, keys: r.keys.length, journal: r.journal.length };
}

/** What an erasure cannot reach; said with every erasure, on the CLI and over HTTP. */
export const NOT_IN_THE_STORE = 'Not in the store, so not erased: your logs, alert webhook receivers, the SMS/email providers, backups (docs/privacy.md).';

/**
 * The records as an access request hands them out: a verification's stored code hashes are left out (they are
 * the service's secret-keyed proof of a code, not the person's data, and no use to them), its codes' key ids
 * and expiry times stay.
 */
export function subjectView(r: SubjectRecords): SubjectRecords {
  return { ...r, verifications: r.verifications.map((v) => ({ ...v, codes: v.codes.map(({ kid, expiresAt }) => ({ kid, expiresAt })) as Verification['codes'] })) };
}
