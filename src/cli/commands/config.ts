import type { Command } from 'commander';
import type { Config } from '../../config/schema.ts';
import { checkConfig } from '../../service/config-checks.ts';
import { configFrom, print } from '../shared.ts';

const SECRET_KEYS = /secret|token|password|authtoken|apikey|key$/i;

/** A copy of the configuration with every credential replaced, for printing and logs. */
export function redactConfig(value: unknown, key = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_KEYS.test(key)) return '[redacted]';
    // URLs can carry credentials (redis://:password@host).
    return value.replace(/\/\/([^/@:]*):([^/@]*)@/, '//$1:[redacted]@');
  }
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, key));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k)]));
  }
  return value;
}

/** What this configuration exposes to the network, in one screen. */
export function exposure(cfg: Config): string[] {
  return [
    `environment:        ${cfg.env}`,
    `listen:             ${cfg.server.host}:${cfg.server.port}`,
    `store:              ${cfg.store.kind}`,
    `channels enabled:   ${cfg.channels.join(', ') || 'none'}`,
    `senders:            ${cfg.senders.map((s) => String(s.name ?? s.type)).join(', ') || 'none'}`,
    `captcha provider:   ${cfg.captcha ? String(cfg.captcha.provider) : 'off'}`,
    `CORS origins:       ${cfg.cors.origins.join(', ') || 'none (browser endpoints same-origin only)'}`,
    `trusted proxies:    ${cfg.server.trustedProxies.join(', ') || 'none (X-Forwarded-For ignored)'}`,
    `admin IP allowlist: ${cfg.admin.ipAllowlist.join(', ') || 'any address (set admin.ipAllowlist in production)'}`,
    `TLS:                ${cfg.server.tls ? `served directly (${cfg.server.tls.certFile})` : cfg.server.behindTlsProxy ? 'terminated by a trusted proxy' : 'none (production refuses the admin API and dashboard)'}`,
    `admin port:         ${cfg.server.adminPort !== undefined ? `${cfg.server.adminHost ?? cfg.server.host}:${cfg.server.adminPort}` : 'same as the API'}`,
    `max in flight:      ${cfg.server.maxInFlight ?? 512} (then 503 + Retry-After)`,
    `widget / demo:      ${cfg.web.widget ? 'on' : 'off'} / ${cfg.web.demo ? 'on' : 'off'}`,
    `dashboard:          ${cfg.web.dashboard ? 'on (/dashboard)' : 'off'}`,
    `metrics side port:  ${cfg.monitoring.metrics.port > 0 ? `${cfg.monitoring.metrics.host}:${cfg.monitoring.metrics.port} (no authentication: keep it internal)` : 'off'}`,
    `/metrics:           ${cfg.monitoring.metrics.enabled ? 'on the API port, admin key required' : 'off'}`,
    `test numbers:       ${cfg.testNumbers.length}`,
    `code secret:        ${cfg.secrets.codeSecret ? 'configured' : 'generated in the data folder (development only)'}`,
  ];
}

export function registerConfig(program: Command): void {
  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the configuration and list what it exposes (credentials redacted)')
    .option('--json', 'print the effective configuration as JSON')
    .action((opts: { json?: boolean }, cmd: Command) => {
      const cfg = configFrom(cmd);
      checkConfig(cfg);
      if (opts.json) return print(JSON.stringify(redactConfig(cfg), null, 2));
      print('configuration is valid');
      for (const line of exposure(cfg)) print(line);
    });
}
