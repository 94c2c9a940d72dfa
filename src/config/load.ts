/**
 * Load configuration: defaults ← file (YAML/JSON) ← environment, then validate.
 * A bad value stops start-up with a message that names the key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Value } from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { deepMerge as merge } from '../lib/merge.ts';
import { ConfigSchema, defaultConfig, type Config } from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Where a configuration file fails to parse, without quoting it: the file may hold secrets (an unclosed quote
 * after `codeSecret: "…`), and this error is printed and logged. YAML's message is quoted up to its first line
 * (the source lines follow it); JSON's messages quote the source (`Unexpected token 'T', ..."codeSecret": T"...`),
 * so only their position is kept.
 */
function parseErrorWithoutSource(err: Error, text: string, json: boolean): string {
  if (!json) return err.message.split('\n')[0]!.replace(/:$/, '');
  const at = /at position (\d+)/.exec(err.message);
  if (!at) return 'not valid JSON';
  const before = text.slice(0, Number(at[1]));
  const line = before.split('\n').length;
  return `not valid JSON at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
}

/** Environment variables and the config path they set. Numbers and lists are parsed. */
const ENV_MAP: Record<string, { path: string[]; type: 'string' | 'int' | 'list' | 'bool' }> = {
  // Applied in this order: the generic PORT of platforms first, so OTPSHIELD_PORT wins when both are set.
  PORT: { path: ['server', 'port'], type: 'int' },
  OTPSHIELD_PORT: { path: ['server', 'port'], type: 'int' },
  OTPSHIELD_HOST: { path: ['server', 'host'], type: 'string' },
  OTPSHIELD_DATA_DIR: { path: ['dataDir'], type: 'string' },
  OTPSHIELD_APP_NAME: { path: ['appName'], type: 'string' },
  OTPSHIELD_STORE: { path: ['store', 'kind'], type: 'string' },
  OTPSHIELD_SQLITE_PATH: { path: ['store', 'sqlitePath'], type: 'string' },
  OTPSHIELD_REDIS_URL: { path: ['store', 'redisUrl'], type: 'string' },
  OTPSHIELD_POSTGRES_URL: { path: ['store', 'postgresUrl'], type: 'string' },
  OTPSHIELD_STORE_PREFIX: { path: ['store', 'prefix'], type: 'string' },
  OTPSHIELD_CODE_SECRET: { path: ['secrets', 'codeSecret'], type: 'string' },
  OTPSHIELD_PREVIOUS_CODE_SECRETS: { path: ['secrets', 'previousCodeSecrets'], type: 'list' },
  OTPSHIELD_TRUSTED_PROXIES: { path: ['server', 'trustedProxies'], type: 'list' },
  OTPSHIELD_CORS_ORIGINS: { path: ['cors', 'origins'], type: 'list' },
  OTPSHIELD_ADMIN_IP_ALLOWLIST: { path: ['admin', 'ipAllowlist'], type: 'list' },
  OTPSHIELD_CHANNELS: { path: ['channels'], type: 'list' },
  OTPSHIELD_POLICY_FILE: { path: ['policyFile'], type: 'string' },
  OTPSHIELD_LOG_LEVEL: { path: ['logLevel'], type: 'string' },
  OTPSHIELD_MASK_NUMBERS: { path: ['privacy', 'maskNumbersInLogs'], type: 'bool' },
  OTPSHIELD_TLS_CERT_FILE: { path: ['server', 'tls', 'certFile'], type: 'string' },
  OTPSHIELD_TLS_KEY_FILE: { path: ['server', 'tls', 'keyFile'], type: 'string' },
  OTPSHIELD_BEHIND_TLS_PROXY: { path: ['server', 'behindTlsProxy'], type: 'bool' },
  OTPSHIELD_ADMIN_PORT: { path: ['server', 'adminPort'], type: 'int' },
  OTPSHIELD_MAX_IN_FLIGHT: { path: ['server', 'maxInFlight'], type: 'int' },
  OTPSHIELD_DASHBOARD: { path: ['web', 'dashboard'], type: 'bool' },
};

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Applied last: used by tests and the CLI to set values directly. */
  overrides?: Partial<Config> & Record<string, unknown>;
}

/** Sections of the policy document, which people put into the configuration file by mistake. */
const POLICY_KEYS = ['limits', 'numbers', 'risk', 'throttle', 'escalation', 'responses', 'pumping', 'monitoring.prices', 'monitoring.budgets'];

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.OTPSHIELD_CONFIG ?? (existsSync('otp-shield.yaml') ? 'otp-shield.yaml' : undefined);
  let doc: Record<string, unknown> | null = null;
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`config file not found: ${file}`);
    const text = readFileSync(file, 'utf8');
    let parsed: unknown;
    try {
      parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw new ConfigError(`cannot parse ${file}: ${parseErrorWithoutSource(err as Error, text, file.endsWith('.json'))}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${file}: the top level must be a mapping`);
      doc = parsed as Record<string, unknown>;
    }
  }

  // The mode picks the defaults (console sender, demo, dashboard …): an `env` written in the file counts as
  // much as NODE_ENV, or `env: production` would run with development defaults.
  const fileEnv = doc?.env;
  const mode = fileEnv === 'production' || fileEnv === 'development' || fileEnv === 'test' ? fileEnv : env.NODE_ENV === 'production' ? 'production' : env.NODE_ENV === 'test' ? 'test' : 'development';
  let cfg: Record<string, unknown> = defaultConfig(mode) as unknown as Record<string, unknown>;
  if (doc) cfg = merge(cfg, doc);

  for (const [name, spec] of Object.entries(ENV_MAP)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    let value: unknown = raw;
    if (spec.type === 'int') {
      value = Number(raw);
      if (!Number.isInteger(value)) throw new ConfigError(`${name}: expected an integer, got "${raw}"`);
    } else if (spec.type === 'list') value = raw.split(',').map((s) => s.trim()).filter(Boolean);
    else if (spec.type === 'bool') {
      // A typo must not read as "off": OTPSHIELD_MASK_NUMBERS=flase would print numbers in full.
      if (/^(1|true|yes|on)$/i.test(raw)) value = true;
      else if (/^(0|false|no|off)$/i.test(raw)) value = false;
      else throw new ConfigError(`${name}: expected 1/0, true/false, yes/no or on/off, got "${raw}"`);
    }
    setPath(cfg, spec.path, value);
  }
  // OTPSHIELD_REDIS_URL alone selects Redis, unless a kind is named (a file's `store.kind: postgres` stays).
  if (env.OTPSHIELD_REDIS_URL && !env.OTPSHIELD_STORE && !storeKindIn(doc) && !storeKindIn(opts.overrides)) setPath(cfg, ['store', 'kind'], 'redis');
  if (opts.overrides) cfg = merge(cfg, opts.overrides as Record<string, unknown>);
  // A store URL given without a kind selects its store (the kind's default, sqlite, would ignore it).
  const kindGiven = Boolean(env.OTPSHIELD_STORE || env.OTPSHIELD_REDIS_URL || storeKindIn(doc) || storeKindIn(opts.overrides));
  const store = cfg.store as { redisUrl?: unknown; postgresUrl?: unknown } | undefined;
  if (!kindGiven && store?.redisUrl && store.postgresUrl) {
    throw new ConfigError('invalid configuration at "store.kind": both store.redisUrl and store.postgresUrl are set; say which store to use');
  }
  if (!kindGiven && store?.redisUrl) setPath(cfg, ['store', 'kind'], 'redis');
  else if (!kindGiven && store?.postgresUrl) setPath(cfg, ['store', 'kind'], 'postgres');

  if (!Value.Check(ConfigSchema, cfg)) {
    const first = [...Value.Errors(ConfigSchema, cfg)][0];
    const key = (first?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.') || '(root)';
    // TypeBox says "schema is false" for a key no object here has: name it as what it is.
    if (first?.message === 'schema is false') {
      const policyKey = POLICY_KEYS.some((k) => key === k || key.startsWith(`${k}.`));
      throw new ConfigError(
        policyKey
          ? `unknown configuration key "${key}": it is a policy setting, which goes in the policy document (PUT /v1/admin/policy, or the file named by policyFile / OTPSHIELD_POLICY_FILE), not in the configuration (docs/policy.md)`
          : `unknown configuration key "${key}" (README.md, "Configuration", lists every key)`,
      );
    }
    throw new ConfigError(`invalid configuration at "${key}": ${first?.message ?? 'invalid'}`);
  }
  const config = cfg as unknown as Config;
  for (const origin of config.cors.origins) {
    // Compared with the browser's Origin header as it is: anything else (a trailing slash, a path, capitals,
    // a bare host, `*`) could never match, and the only symptom would be a widget without evidence.
    if (corsOriginProblem(origin)) throw new ConfigError(`invalid configuration at "cors.origins": ${JSON.stringify(origin)} ${corsOriginProblem(origin)}`);
  }
  if (config.store.kind === 'redis' && !config.store.redisUrl) throw new ConfigError('invalid configuration at "store.redisUrl": required when store.kind is redis');
  if (config.store.kind === 'postgres' && !config.store.postgresUrl) throw new ConfigError('invalid configuration at "store.postgresUrl": required when store.kind is postgres');
  if (config.env === 'production' && !config.secrets.codeSecret) {
    throw new ConfigError('invalid configuration at "secrets.codeSecret": required in production (set OTPSHIELD_CODE_SECRET to 32+ random characters)');
  }
  if (config.env === 'production' && config.codes.length < 6) {
    throw new ConfigError('invalid configuration at "codes.length": production requires at least 6 digits (NIST SP 800-63B)');
  }
  if (config.env === 'production' && config.codes.ttlSeconds > 600) {
    throw new ConfigError('invalid configuration at "codes.ttlSeconds": production allows at most 600 seconds (NIST SP 800-63B)');
  }
  if (config.server.behindTlsProxy && config.server.trustedProxies.length === 0) {
    throw new ConfigError('invalid configuration at "server.trustedProxies": server.behindTlsProxy needs the proxy named in server.trustedProxies');
  }
  if (config.server.tls && !config.server.tls.keyFile) {
    throw new ConfigError('invalid configuration at "server.tls.keyFile": required with server.tls.certFile');
  }
  return config;
}

function storeKindIn(doc: Record<string, unknown> | null | undefined): boolean {
  const store = doc?.store;
  return typeof store === 'object' && store !== null && (store as Record<string, unknown>).kind !== undefined;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    const next = cur[k];
    if (!next || typeof next !== 'object') cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/** Why `origin` is not an origin as browsers send it (`https://shop.example`, `http://localhost:3000`), or null. */
export function corsOriginProblem(origin: string): string | null {
  if (origin === '*') return 'is not allowed: list the origins of your pages (a wildcard would let any site fetch form tokens)';
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return 'is not an origin: write it as scheme://host[:port], e.g. https://shop.example';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'is not an http(s) origin';
  if (url.origin !== origin) return `is not an origin as browsers send it: write ${url.origin} (no path or trailing slash, lowercase host, no default port)`;
  return null;
}

