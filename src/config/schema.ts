/**
 * Service configuration (how OTP Shield runs), as opposed to the policy (how it decides).
 * One YAML or JSON file plus `OTPSHIELD_*` environment overrides, validated at start-up.
 */
import { Type, type Static } from 'typebox';
import { DEFAULT_MONITORING_CONFIG, MonitoringConfigSchema } from '../monitoring/config.ts';
import { CaptchaConfigSchema } from '../signals/captcha.ts';

const Channel = Type.Union([Type.Literal('sms'), Type.Literal('whatsapp'), Type.Literal('voice'), Type.Literal('email')]);

export const ConfigSchema = Type.Object(
  {
    env: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')]),
    appName: Type.String({ minLength: 1, maxLength: 40 }),
    dataDir: Type.String({ minLength: 1 }),
    server: Type.Object(
      {
        host: Type.String(),
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        /** Maximum request body in bytes. */
        bodyLimit: Type.Integer({ minimum: 1024, maximum: 10 * 1024 * 1024 }),
        /** CIDRs of proxies whose X-Forwarded-For is trusted (browser-facing endpoints only). */
        trustedProxies: Type.Array(Type.String()),
        requestTimeoutMs: Type.Integer({ minimum: 1000 }),
        /** Serve HTTPS directly. The files are re-read when they change, so renewals need no restart. */
        tls: Type.Optional(
          Type.Object(
            {
              certFile: Type.String({ minLength: 1 }),
              keyFile: Type.String({ minLength: 1 }),
              /** How often the files are checked for changes (default 5000). */
              reloadIntervalMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
            },
            { additionalProperties: false },
          ),
        ),
        /** TLS ends at a proxy listed in trustedProxies (production refuses admin over plain HTTP otherwise). */
        behindTlsProxy: Type.Optional(Type.Boolean()),
        /** When set, /v1/admin/*, /dashboard and /metrics are served only on this port (and host). */
        adminPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
        adminHost: Type.Optional(Type.String()),
        /** Requests handled at once; beyond this the server answers 503 with Retry-After (default 512). */
        maxInFlight: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
        /**
         * On SIGTERM/SIGINT, /readyz answers 503 and responses close their connections for this long while the
         * server keeps serving, so a load balancer stops routing before the listener closes (default 0).
         */
        drainMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 300_000 })),
        /**
         * After the drain, requests in flight get this long to finish; then, or at a second signal, the store
         * is closed (what was acknowledged is on disk) and the process exits with 1 (default 25000).
         */
        shutdownTimeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000 })),
      },
      { additionalProperties: false },
    ),
    store: Type.Object(
      {
        kind: Type.Union([Type.Literal('sqlite'), Type.Literal('redis'), Type.Literal('memory'), Type.Literal('postgres')]),
        sqlitePath: Type.Optional(Type.String()),
        redisUrl: Type.Optional(Type.String()),
        postgresUrl: Type.Optional(Type.String()),
        prefix: Type.Optional(Type.String({ maxLength: 64 })),
        /** Redis: audit events kept at most (approximately); the oldest go first. Default 1,000,000. */
        redisMaxEvents: Type.Optional(Type.Integer({ minimum: 1000, maximum: 1_000_000_000 })),
        /** Redis and PostgreSQL: a store call that takes longer fails with 503. Default 5000. */
        timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 120_000 })),
        /** PostgreSQL: connections per instance. Default 10; a quarter of them (at least 1) at most for event search, export, purge and sweep. */
        postgresPoolSize: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000 })),
      },
      { additionalProperties: false },
    ),
    secrets: Type.Object(
      {
        /** HMAC key for codes. Required in production; generated into dataDir in development. */
        codeSecret: Type.Optional(Type.String({ minLength: 32 })),
        /** Older code secrets that still verify codes issued under them until those expire. */
        previousCodeSecrets: Type.Array(Type.String({ minLength: 32 })),
      },
      { additionalProperties: false },
    ),
    codes: Type.Object(
      {
        length: Type.Integer({ minimum: 4, maximum: 10 }),
        ttlSeconds: Type.Integer({ minimum: 30, maximum: 3600 }),
        maxAttempts: Type.Integer({ minimum: 1, maximum: 20 }),
        /** How many of a verification's codes stay valid after resends (newest first). */
        codesKept: Type.Integer({ minimum: 1, maximum: 5 }),
        /**
         * The site's host name: SMS end with the origin-bound `@host #code` line (WebOTP; iOS and Android autofill
         * the code only on that site, so a phishing page cannot get it filled). Null: no such line.
         */
        webOtpDomain: Type.Optional(Type.Union([Type.String({ maxLength: 253 }), Type.Null()])),
      },
      { additionalProperties: false },
    ),
    channels: Type.Array(Channel),
    senders: Type.Array(Type.Record(Type.String(), Type.Unknown())),
    templates: Type.Record(Type.String({ maxLength: 16 }), Type.String({ maxLength: 500 })),
    /** Numbers with a fixed code that never send (QA, app-store review). */
    testNumbers: Type.Array(
      Type.Object({ number: Type.String(), code: Type.String({ pattern: '^[0-9]{4,10}$' }) }, { additionalProperties: false }),
    ),
    policyFile: Type.Optional(Type.String()),
    privacy: Type.Object(
      {
        maskNumbersInLogs: Type.Boolean(),
        eventRetentionDays: Type.Integer({ minimum: 1, maximum: 3650 }),
      },
      { additionalProperties: false },
    ),
    cors: Type.Object({ origins: Type.Array(Type.String()) }, { additionalProperties: false }),
    /** Server-side CAPTCHA verification (src/signals/captcha.ts). */
    captcha: Type.Optional(CaptchaConfigSchema),
    web: Type.Object(
      {
        /** Serve /widget.js (and its worker and /fp.js) for browser integrations. */
        widget: Type.Boolean(),
        /** Serve the /demo sign-in page and its backend. Off in production unless asked for. */
        demo: Type.Boolean(),
        /** Serve the /dashboard (admin key sign-in). Off in production unless asked for. */
        dashboard: Type.Boolean(),
      },
      { additionalProperties: false },
    ),
    admin: Type.Object(
      {
        /** CIDRs allowed to use admin-scoped endpoints. Empty = any address. */
        ipAllowlist: Type.Array(Type.String()),
      },
      { additionalProperties: false },
    ),
    logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /** Alert sinks (webhook URLs and secrets), metrics port, delivery receipts (docs/monitoring.md). */
    monitoring: MonitoringConfigSchema,
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

export function defaultConfig(env: Config['env']): Config {
  return {
    env,
    appName: 'OTP Shield',
    dataDir: './data',
    server: { host: '0.0.0.0', port: 8080, bodyLimit: 16 * 1024, trustedProxies: [], requestTimeoutMs: 10_000 },
    store: { kind: 'sqlite' },
    secrets: { previousCodeSecrets: [] },
    codes: { length: 6, ttlSeconds: 600, maxAttempts: 5, codesKept: 2 },
    channels: ['sms'],
    senders: env === 'production' ? [] : [{ type: 'console' }],
    templates: {},
    testNumbers: [],
    privacy: { maskNumbersInLogs: true, eventRetentionDays: 90 },
    cors: { origins: [] },
    web: { widget: true, demo: env !== 'production', dashboard: env !== 'production' },
    admin: { ipAllowlist: [] },
    logLevel: env === 'test' ? 'silent' : 'info',
    monitoring: DEFAULT_MONITORING_CONFIG,
  };
}
