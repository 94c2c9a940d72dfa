/**
 * The monitoring layer installer (registered in src/service/layers.ts): metrics and the event tap, the
 * hooks (budget breaker, conversion), and the routes — /metrics, stats, pause switch, delivery receipts and
 * the dashboard. Timers start with the HTTP server (metrics route plugin), so contexts built for one-shot
 * commands and replays never send alerts.
 */
import type { AppContext } from '../service/context.ts';
import { Monitoring } from './monitor.ts';
import { metricsRoutes } from '../http/routes/metrics.ts';
import { adminStatsRoutes } from '../http/routes/admin-stats.ts';
import { adminPauseRoutes } from '../http/routes/admin-pause.ts';
import { receiptRoutes } from '../http/routes/receipts.ts';
import { dashboardRoutes } from '../http/routes/dashboard.ts';

export function installMonitoring(ctx: AppContext): void {
  const mon = new Monitoring(ctx);
  ctx.hooks.push(mon.hooks);
  ctx.extraRoutes.push(metricsRoutes, adminStatsRoutes, adminPauseRoutes, receiptRoutes);
  // Unused surface stays off: the dashboard is served only where it is enabled (web.dashboard).
  if (ctx.config.web.dashboard) ctx.extraRoutes.push(dashboardRoutes);
  // Write the last aggregates before the store closes.
  const close = ctx.close;
  ctx.close = async () => {
    await mon.stop();
    await close();
  };
}
