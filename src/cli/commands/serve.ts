import type { Command } from 'commander';
import { buildContext } from '../../service/context.ts';
import { buildServer } from '../../http/server.ts';
import { configFrom, print } from '../shared.ts';
import { startMaintenance } from '../../service/maintenance.ts';
import { limitHeapGrowth } from '../../lib/heap-growth.ts';
import { isStoreUnavailable } from '../../store/errors.ts';
import { redactConfig } from './config.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP service')
    .option('-p, --port <port>', 'port to listen on (default 8080, or OTPSHIELD_PORT)')
    .action(async (opts: { port?: string }, cmd: Command) => {
      const cfg = configFrom(cmd);
      if (opts.port) cfg.server.port = Number(opts.port);
      // Bounded transient heap under key-rotating attacks (src/lib/heap-growth.ts says why).
      limitHeapGrowth();
      const ctx = await buildContext(cfg).catch((err: unknown) => {
        if (!isStoreUnavailable(err)) throw err;
        // One line that says which store, credentials redacted as `config check` does (src/cli/errors.ts prints it).
        const where = cfg.store.kind === 'redis' ? cfg.store.redisUrl : cfg.store.kind === 'postgres' ? cfg.store.postgresUrl : cfg.store.sqlitePath ?? cfg.dataDir;
        const place = String(redactConfig(where ?? '', 'store'));
        throw Object.assign(new Error(`cannot reach the ${cfg.store.kind} store at ${place}: ${(err as Error).message}`), { name: 'ConfigError' });
      });
      for (const w of (await ctx.store.durabilityWarnings?.().catch(() => [])) ?? []) ctx.log.warn(w);
      const app = await buildServer(ctx);
      const address = await app.listen({ host: cfg.server.host, port: cfg.server.port });
      const stopMaintenance = startMaintenance({ store: ctx.store, clock: ctx.clock, log: ctx.log, retentionDays: cfg.privacy.eventRetentionDays });
      const keys = await ctx.store.listApiKeys();
      print(`OTP Shield ${ctx.version} listening on ${address} (${cfg.env}, store: ${ctx.store.kind}, senders: ${cfg.senders.map((s) => String(s.type)).join(', ') || 'none'})`);
      if (keys.length === 0) print('No API keys yet. Create one with:  npx otp-shield keys create --scope verify');
      print(`OpenAPI document: ${address}/openapi.json`);
      let closing = false;
      const shutdown = async (signal: string) => {
        if (closing) return;
        closing = true;
        ctx.log.info({ signal }, 'shutting down');
        stopMaintenance();
        await app.close();
        await ctx.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void shutdown('SIGINT'));
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
    });
}
