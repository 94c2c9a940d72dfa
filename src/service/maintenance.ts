/**
 * Background upkeep of a running server: steps a crash interrupted get their audit events (the journal),
 * expired counters, tokens and settings are swept, and audit events older than the retention period are
 * purged. Every instance may run it; the operations are idempotent. The timer is unref'd so it never keeps a
 * process alive.
 */
import type { Logger } from 'pino';
import type { Store } from '../store/interface.ts';
import { recoverJournal, type JournalEntry } from './journal.ts';
import { every } from '../lib/every.ts';

export interface MaintenanceOptions {
  store: Store;
  clock: () => number;
  log: Logger;
  retentionDays: number;
  intervalMs?: number;
  /** The after-steps of a step recovered from the journal (`VerificationService.afterRecovered`). */
  afterRecovered?: (entry: JournalEntry, now: number) => Promise<void>;
}

export async function runMaintenance(
  o: Omit<MaintenanceOptions, 'intervalMs'>,
): Promise<{ swept: number; purged: number; recovered: number }> {
  const now = o.clock();
  // Before the sweep: recovery reads the verification of each journal entry, which a sweep may delete.
  // A failure here must not cost the sweep and the purge their turn.
  const journal = await recoverJournal(o.store, now, o.afterRecovered).catch((err: unknown) => {
    o.log.warn({ err }, 'journal recovery failed; retried in the next run');
    return { recovered: 0, dropped: 0 };
  });
  if (journal.recovered > 0) {
    o.log.warn({ recovered: journal.recovered }, 'steps interrupted before their audit event was written (sends: delivery.interrupted): events written from the journal');
  }
  // One after the other (together they held both of PostgreSQL's slow-query slots: docs/postgres.md), each with
  // its own chance: a sweep that failed (a timeout after a backlog) skipped retention's purge too.
  const swept = await Promise.allSettled([Promise.resolve().then(async () => (await o.store.sweep?.(now)) ?? 0)]).then(([r]) => r!);
  const purged = await Promise.allSettled([o.store.purgeEvents(now - o.retentionDays * 86_400_000)]).then(([r]) => r!);
  for (const r of [swept, purged]) if (r.status === 'rejected') o.log.warn({ err: r.reason }, 'maintenance: a sweep or purge failed; retried in the next run');
  if (swept.status === 'rejected' && purged.status === 'rejected') throw purged.reason;
  return { swept: swept.status === 'fulfilled' ? swept.value : 0, purged: purged.status === 'fulfilled' ? purged.value : 0, recovered: journal.recovered };
}

export function startMaintenance(o: MaintenanceOptions): () => void {
  const timer = every(
    o.intervalMs ?? 60_000,
    async () => {
      const r = await runMaintenance(o);
      if (r.swept || r.purged || r.recovered) o.log.debug(r, 'maintenance');
    },
    (err) => o.log.warn({ err }, 'maintenance failed'),
  );
  return () => clearInterval(timer);
}
