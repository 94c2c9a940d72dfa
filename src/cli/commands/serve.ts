import type { Command } from 'commander';
import { buildContext } from '../../service/context.ts';
import { buildServer } from '../../http/server.ts';
import { configFrom, note } from '../shared.ts';
import { startMaintenance } from '../../service/maintenance.ts';
import { limitHeapGrowth } from '../../lib/heap-growth.ts';
import { isStoreUnavailable } from '../../store/errors.ts';
import { ConfigError } from '../../config/load.ts';
import { isSqliteError } from '../errors.ts';
import { redactConfig } from './config.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP service')
    .option('-p, --port <port>', 'port to listen on (default 8080, or OTPSHIELD_PORT)')
    .action(async (opts: { port?: string }, cmd: Command) => {
      const cfg = configFrom(cmd);
      if (opts.port !== undefined) {
        const port = Number(opts.port);
        if (!/^\d{1,5}$/.test(opts.port) || port > 65535) throw new ConfigError(`--port must be a port number 0..65535, got "${opts.port}"`);
        cfg.server.port = port;
      }
      // Bounded transient heap under key-rotating attacks (src/lib/heap-growth.ts says why).
      limitHeapGrowth();
      const ctx = await buildContext(cfg).catch((err: unknown) => {
        if (!isStoreUnavailable(err) && !isSqliteError(err)) throw err;
        // One line that says which store, credentials redacted as `config check` does (src/cli/errors.ts prints it).
        const where = cfg.store.kind === 'redis' ? cfg.store.redisUrl : cfg.store.kind === 'postgres' ? cfg.store.postgresUrl : cfg.store.sqlitePath ?? cfg.dataDir;
        const place = String(redactConfig(where ?? '', 'store'));
        // A file is opened (a full disk or a read-only folder is why it fails), a server is reached.
        const verb = cfg.store.kind === 'sqlite' ? 'cannot open' : 'cannot reach';
        throw Object.assign(new Error(`${verb} the ${cfg.store.kind} store at ${place}: ${(err as Error).message}`), { name: 'ConfigError' });
      });
      for (const w of (await ctx.store.durabilityWarnings?.().catch(() => [])) ?? []) ctx.log.warn(w);
      const app = await buildServer(ctx);
      const address = await app.listen({ host: cfg.server.host, port: cfg.server.port }).catch(async (err: NodeJS.ErrnoException) => {
        // A port in use or not allowed is the operator's to fix: one line, not a stack.
        const why = { EADDRINUSE: 'the address is already in use', EACCES: 'permission denied', EADDRNOTAVAIL: 'no such local address' }[err.code ?? ''];
        if (!why) throw err;
        await app.close().catch(() => {});
        await ctx.close().catch(() => {});
        throw new ConfigError(`cannot listen on ${cfg.server.host}:${cfg.server.port}: ${why} (${err.code})`);
      });
      const stopMaintenance = startMaintenance({
        store: ctx.store,
        clock: ctx.clock,
        log: ctx.log,
        retentionDays: cfg.privacy.eventRetentionDays,
        afterRecovered: (entry, now) => ctx.verifications.afterRecovered(entry, now),
      });
      const keys = await ctx.store.listApiKeys();
      // By name (what the events, metrics and alerts call a sender), with its type when the two differ.
      const senders = cfg.senders.map((s) => (typeof s.name === 'string' && s.name !== s.type ? `${s.name} (${String(s.type)})` : String(s.type)));
      // stdout carries the JSON log lines (one object a line, for log shippers); the banner for the person who
      // started the server goes to stderr, and its facts into the log as one record.
      ctx.log.info({ address, version: ctx.version, env: cfg.env, store: ctx.store.kind, senders, apiKeys: keys.length }, 'listening');
      note(`OTP Shield ${ctx.version} listening on ${address} (${cfg.env}, store: ${ctx.store.kind}, senders: ${senders.join(', ') || 'none'})`);
      if (keys.length === 0) note('No API keys yet. Create one with:  npx otp-shield keys create --scope verify');
      note(`OpenAPI document: ${address}/openapi.json`);
      // Shutdown: drain (readiness 503, connections closed after each response, still serving), then close the
      // listener and wait for requests in flight, at most shutdownTimeoutMs. Past that, or at a second signal,
      // the store is closed — everything acknowledged is on disk already — and the process exits with 1.
      const drainMs = cfg.server.drainMs ?? 0;
      const shutdownTimeoutMs = cfg.server.shutdownTimeoutMs ?? 25_000;
      let closing = false;
      let forced = false;
      const force = async (why: string) => {
        if (forced) return;
        forced = true;
        ctx.log.warn({ why }, 'shutting down without waiting for the requests in flight');
        await Promise.race([ctx.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
        process.exit(1);
      };
      const shutdown = async (signal: string) => {
        if (closing) return void force(`second signal (${signal})`);
        closing = true;
        ctx.log.info({ signal, drainMs, shutdownTimeoutMs }, 'shutting down');
        ctx.lifecycle.draining = true;
        if (drainMs > 0) await new Promise((r) => setTimeout(r, drainMs));
        setTimeout(() => void force(`requests still in flight after ${shutdownTimeoutMs} ms`), shutdownTimeoutMs);
        stopMaintenance();
        await app.close();
        await ctx.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void shutdown('SIGINT'));
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
    });
}
