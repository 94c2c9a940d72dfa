/**
 * `GET /metrics` (Prometheus text format) with an admin key, optionally also on a separate port without a
 * key (`monitoring.metrics.port`, bound to `monitoring.metrics.host`, 127.0.0.1 by default) for scrapers on
 * a private network. Also installs the request counter and latency histogram of every route, and runs the
 * monitoring timers for as long as the server runs.
 */
import { createServer, type Server } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import type { AppContext } from '../../service/context.ts';
import { monitoringOf } from '../../monitoring/monitor.ts';
import { authenticate } from '../auth.ts';
import { asText } from '../schemas.ts';

/** Fastify's marker (what fastify-plugin sets): this plugin's hooks apply to every route, not only its own. */
const SKIP_OVERRIDE = Symbol.for('skip-override');

export function metricsRoutes(ctx: AppContext): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async function metrics(app) {
    const mon = monitoringOf(ctx);
    if (!mon) return;
    const m = mon.metrics;

    app.addHook('onResponse', async (req, reply) => {
      // Route patterns only (bounded label values); unmatched URLs are one series.
      const route = req.routeOptions.url ?? 'unmatched';
      const labels = { route, method: req.method };
      m.httpRequests.inc({ ...labels, status: String(reply.statusCode) });
      m.httpDuration.observe(labels, reply.elapsedTime / 1000);
    });

    // The gauges of pauses, quarantines and throttles read the shared-state snapshot, which otherwise only a
    // send request refreshes: an idle instance would report a pause lifted minutes ago. A store that cannot
    // be read leaves the last snapshot (the scrape still answers: the store error counters matter most then).
    const render = async () => {
      await ctx.state.fresh().catch(() => {});
      return m.registry.metrics();
    };
    let side: Server | null = null;
    app.addHook('onReady', async () => {
      await mon.start();
      const cfg = mon.config().metrics;
      if (cfg.port > 0) {
        side = createServer((req, res) => {
          if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
            res.writeHead(404).end();
            return;
          }
          render().then(
            (text) => res.writeHead(200, { 'content-type': m.registry.contentType }).end(text),
            () => res.writeHead(500).end(),
          );
        });
        await new Promise<void>((resolve, reject) => {
          side!.once('error', reject);
          side!.listen(cfg.port, cfg.host, () => resolve());
        });
        ctx.log.info({ host: cfg.host, port: cfg.port }, 'metrics listener started');
      }
    });
    app.addHook('onClose', async () => {
      if (side) await new Promise<void>((resolve) => side!.close(() => resolve()));
      await mon.stop();
    });

    if (!mon.config().metrics.enabled) return;
    app.get(
      '/metrics',
      {
        preHandler: authenticate(ctx),
        config: { scope: 'metrics' },
        schema: { operationId: 'getMetrics', tags: ['monitoring'], summary: 'Prometheus metrics (a metrics, read or admin key)', security: [{ apiKey: [] }], response: { 200: asText('text/plain; version=0.0.4', 'Prometheus text exposition format') } },
      },
      async (_req, reply) => {
        const text = await render();
        return reply.header('content-type', m.registry.contentType).send(text);
      },
    );
  };
  (plugin as unknown as Record<symbol, boolean>)[SKIP_OVERRIDE] = true;
  return plugin;
}
