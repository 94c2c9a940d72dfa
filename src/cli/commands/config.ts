import type { Command } from 'commander';
import type { Config } from '../../config/schema.ts';
import { checkConfig, configWarnings } from '../../service/config-checks.ts';
import { loadPolicyFile } from '../../service/context.ts';
import { readTlsFiles, TlsFileError } from '../../http/tls.ts';
import { ConfigError } from '../../config/load.ts';
import { configFrom, print } from '../shared.ts';

const SECRET_KEYS = /secret|token|password|authtoken|apikey|key$/i;

/** Query parameters that carry credentials (`?password=` in libpq URLs, `?access_token=`, `?sig=` …). */
const SECRET_PARAMS = /secret|token|pass|key|sig|auth|credential/i;

/** A copy of the configuration with every credential replaced, for printing and logs. */
export function redactConfig(value: unknown, key = '', path = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_KEYS.test(key)) return '[redacted]';
    return redactUrl(value, ALERT_WEBHOOK_URL.test(path));
  }
  if (Array.isArray(value)) return value.map((v, i) => redactConfig(v, key, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k, path === '' ? k : `${path}.${k}`)]));
  }
  return value;
}

/** Alert sinks are usually capability URLs (Slack, Discord, Teams: the path is the credential). */
const ALERT_WEBHOOK_URL = /^monitoring\.alerts\.webhooks\[\d+\]\.url$/;

/**
 * Credentials inside a URL: the password of `scheme://user:password@host` (every one, for multi-host URLs),
 * the values of query parameters named like credentials, and, for a capability URL, its whole path.
 */
function redactUrl(s: string, capability: boolean): string {
  let out = s.replace(/\/\/([^/@:]*):([^/@]*)@/g, '//$1:[redacted]@');
  out = out.replace(/([?&;])([^=&;#]*)=([^&;#]*)/g, (m, sep: string, name: string) => (SECRET_PARAMS.test(name) ? `${sep}${name}=[redacted]` : m));
  if (capability) out = out.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#]+)[/?#].*$/i, '$1/[redacted]');
  return out;
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
      // What serve reads at start-up beyond the configuration itself: a check that passes where serve would
      // stop is worse than none.
      if (cfg.policyFile) loadPolicyFile(cfg.policyFile);
      if (cfg.server.tls) {
        try {
          readTlsFiles(cfg.server.tls);
        } catch (err) {
          if (err instanceof TlsFileError) throw new ConfigError(err.message);
          throw err;
        }
      }
      for (const w of configWarnings(cfg)) process.stderr.write(`warning: ${w}\n`);
      if (opts.json) return print(JSON.stringify(redactConfig(cfg), null, 2));
      print('configuration is valid');
      for (const line of exposure(cfg)) print(line);
    });
}
