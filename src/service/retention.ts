/**
 * Event retention: audit events older than `privacy.eventRetentionDays` are deleted, hourly and once at
 * start. Events hold what abuse analysis needs (number, IP, device, decision, reasons) and nothing is kept
 * longer than that analysis is useful (docs/privacy.md). Verifications are swept by the stores themselves
 * a day after they expire.
 *
 * Several instances may purge at once; deleting by a time bound is idempotent.
 */
import type { AppContext } from './context.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export async function purgeExpiredEvents(ctx: Pick<AppContext, 'store' | 'clock' | 'config'>): Promise<number> {
  return ctx.store.purgeEvents(ctx.clock() - ctx.config.privacy.eventRetentionDays * DAY_MS);
}

/**
 * Starts the hourly purge; returns the function that stops it and waits for a purge in progress (so the
 * store is not closed under it). The timers never keep the process alive.
 */
export function startRetention(ctx: Pick<AppContext, 'store' | 'clock' | 'config' | 'log'>, intervalMs = HOUR_MS): () => Promise<void> {
  let running: Promise<void> | null = null;
  const run = () => {
    if (running) return; // a slow purge is not stacked on another
    running = purgeExpiredEvents(ctx)
      .then((removed) => {
        if (removed > 0) ctx.log.info({ removed, retentionDays: ctx.config.privacy.eventRetentionDays }, 'purged expired audit events');
      })
      .catch((err: unknown) => ctx.log.warn({ err }, 'event retention purge failed; will retry'))
      .finally(() => {
        running = null;
      });
  };
  const first = setTimeout(run, 1000);
  const timer = setInterval(run, intervalMs);
  first.unref();
  timer.unref();
  return async () => {
    clearTimeout(first);
    clearInterval(timer);
    await running;
  };
}
