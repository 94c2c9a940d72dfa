/**
 * Monitoring settings, in two parts with different owners and trust:
 *
 * - `MonitoringPolicySchema` (policy document key `monitoring`): prices, budgets and alert rules. These are
 *   operating decisions an admin tunes from the dashboard, so they live in the versioned, validated policy.
 * - `MonitoringConfigSchema` (configuration file key `monitoring`): where things go and what is exposed —
 *   alert webhook URLs and their signing secrets, the metrics port, receipt URLs. Secrets never belong in the
 *   policy (it is shown in the dashboard and kept in version history), and a policy edit must not be able to
 *   redirect alerts or open a port.
 *
 * Both are merged over the defaults below (objects merge, arrays and scalars replace), so either may be
 * partial. Pure module: no I/O.
 */
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { deepMerge } from '../lib/merge.ts';

const Country = Type.String({ pattern: '^[A-Z]{2}$' });
const Money = Type.Number({ minimum: 0, maximum: 1_000_000 });
const Ratio = Type.Number({ minimum: 0, maximum: 1 });
const Minutes = Type.Integer({ minimum: 1, maximum: 24 * 60 });
const strict = { additionalProperties: false } as const;

const ChannelPrices = Type.Object(
  { sms: Type.Optional(Money), whatsapp: Type.Optional(Money), voice: Type.Optional(Money), email: Type.Optional(Money) },
  strict,
);
export type ChannelPrices = Static<typeof ChannelPrices>;

export const MonitoringPolicySchema = Type.Object(
  {
    prices: Type.Object(
      {
        /** Informational: every amount in this section and in the stats is in this currency. */
        currency: Type.String({ pattern: '^[A-Z]{3}$' }),
        /** Price of one message (or call) per channel for countries not listed below. */
        default: Type.Object({ sms: Money, whatsapp: Money, voice: Money, email: Money }, strict),
        /** Per-country overrides; a missing channel falls back to `default`. */
        countries: Type.Record(Country, ChannelPrices),
      },
      strict,
    ),
    budgets: Type.Object(
      {
        /** Daily spend (UTC day) over all countries that raises the `daily_spend` alert. null = none. */
        dailyTotal: Type.Union([Money, Type.Null()]),
        /** Daily spend per country; reaching it raises an alert and, with `circuitBreaker`, pauses the country. */
        countries: Type.Record(Country, Money),
        /** Budget for every country without its own entry. null = none. */
        defaultCountry: Type.Union([Money, Type.Null()]),
        /** Pause sends to a country for the rest of the UTC day when it reaches its budget. */
        circuitBreaker: Type.Boolean(),
      },
      strict,
    ),
    alerts: Type.Object(
      {
        enabled: Type.Boolean(),
        /** An alert (rule + scope) is not repeated within this time, on any instance. */
        cooldownMinutes: Minutes,
        checkFailureRate: Type.Object(
          { enabled: Type.Boolean(), windowMinutes: Minutes, minChecks: Type.Integer({ minimum: 1 }), maxFailureRatio: Ratio },
          strict,
        ),
        requestSpike: Type.Object(
          {
            enabled: Type.Boolean(),
            windowMinutes: Minutes,
            /** Send requests in the window above which a spike is reported; 0 turns one dimension off. */
            perNumber: Type.Integer({ minimum: 0 }),
            perIp: Type.Integer({ minimum: 0 }),
            perPrefix: Type.Integer({ minimum: 0 }),
            perCountry: Type.Integer({ minimum: 0 }),
          },
          strict,
        ),
        conversionDrop: Type.Object(
          {
            enabled: Type.Boolean(),
            windowMinutes: Minutes,
            baselineHours: Type.Integer({ minimum: 1, maximum: 24 }),
            /** Verifications started in the window below which the rule stays quiet (too few to judge). */
            minVerifications: Type.Integer({ minimum: 1 }),
            /** Alert when conversion in the window < dropRatio × baseline conversion. */
            dropRatio: Ratio,
          },
          strict,
        ),
        unexpectedRegion: Type.Object(
          {
            enabled: Type.Boolean(),
            windowMinutes: Minutes,
            minRequests: Type.Integer({ minimum: 1 }),
            /** Countries (of the number or the IP) you serve. Empty = learned: countries seen in the past `learnHours`. */
            expectedCountries: Type.Array(Country),
            learnHours: Type.Integer({ minimum: 1, maximum: 24 }),
          },
          strict,
        ),
        outsideHours: Type.Object(
          {
            enabled: Type.Boolean(),
            /** Normal traffic hours [fromHour, toHour) in local time of `utcOffsetMinutes`; may wrap midnight. */
            fromHour: Type.Integer({ minimum: 0, maximum: 23 }),
            toHour: Type.Integer({ minimum: 0, maximum: 24 }),
            utcOffsetMinutes: Type.Integer({ minimum: -14 * 60, maximum: 14 * 60 }),
            windowMinutes: Minutes,
            minRequests: Type.Integer({ minimum: 1 }),
          },
          strict,
        ),
        deliveryRateDrop: Type.Object(
          { enabled: Type.Boolean(), windowMinutes: Minutes, minReceipts: Type.Integer({ minimum: 1 }), minRate: Ratio },
          strict,
        ),
        quarantineStarted: Type.Object({ enabled: Type.Boolean() }, strict),
        senderFailures: Type.Object(
          { enabled: Type.Boolean(), windowMinutes: Minutes, minAttempts: Type.Integer({ minimum: 1 }), maxFailureRatio: Ratio },
          strict,
        ),
        dailySpend: Type.Object({ enabled: Type.Boolean() }, strict),
      },
      strict,
    ),
  },
  strict,
);
export type MonitoringPolicy = Static<typeof MonitoringPolicySchema>;

const WebhookSink = Type.Object(
  {
    name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' })),
    url: Type.String({ pattern: '^https?://' }),
    /** HMAC key of the X-OTPShield-Signature header (same scheme as the webhook sender). */
    secret: Type.String({ minLength: 16 }),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000 })),
  },
  strict,
);
export type WebhookSinkConfig = Static<typeof WebhookSink>;

export const MonitoringConfigSchema = Type.Object(
  {
    metrics: Type.Object(
      {
        /** Serve GET /metrics on the main port (a metrics, read or admin key). */
        enabled: Type.Boolean(),
        /** Also serve /metrics without a key on this separate port (bind it to a private interface). 0 = off. */
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        host: Type.String(),
      },
      strict,
    ),
    stats: Type.Object(
      {
        /** How often each instance writes its hourly aggregates to the store. */
        flushSeconds: Type.Integer({ minimum: 1, maximum: 300 }),
        /** How long hourly aggregates are kept (the stats API cannot look further back). */
        retentionDays: Type.Integer({ minimum: 1, maximum: 400 }),
        /** Distinct prefixes kept per hour and instance; the rest are summed under "other". */
        maxPrefixesPerHour: Type.Integer({ minimum: 10, maximum: 100_000 }),
      },
      strict,
    ),
    alerts: Type.Object(
      {
        /** How often the alert rules are evaluated while the server runs. */
        evaluateSeconds: Type.Integer({ minimum: 1, maximum: 3600 }),
        log: Type.Boolean(),
        webhooks: Type.Array(WebhookSink, { maxItems: 10 }),
      },
      strict,
    ),
    receipts: Type.Object(
      {
        enabled: Type.Boolean(),
        /**
         * Public base URL (e.g. https://otp.example.com) used to rebuild the URL Twilio signed when a
         * sender has no `statusCallbackUrl`; otherwise the request's own protocol and host are used.
         */
        publicUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
        toleranceSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
      },
      strict,
    ),
  },
  strict,
);
export type MonitoringConfig = Static<typeof MonitoringConfigSchema>;

/**
 * Illustrative list prices (USD per message) so spend and savings are meaningful out of the box. They are
 * not quotes: set your contract's prices. High-cost destinations are listed because they are where SMS
 * pumping is aimed.
 */
export const DEFAULT_MONITORING_POLICY: MonitoringPolicy = {
  prices: {
    currency: 'USD',
    default: { sms: 0.08, whatsapp: 0.03, voice: 0.1, email: 0.001 },
    countries: {
      US: { sms: 0.0083 },
      CA: { sms: 0.0083 },
      GB: { sms: 0.04 },
      DE: { sms: 0.09 },
      FR: { sms: 0.08 },
      ES: { sms: 0.08 },
      IT: { sms: 0.09 },
      NL: { sms: 0.11 },
      AU: { sms: 0.05 },
      BR: { sms: 0.06 },
      MX: { sms: 0.05 },
      IN: { sms: 0.08 },
      ID: { sms: 0.4 },
      PH: { sms: 0.2 },
      VN: { sms: 0.15 },
      NG: { sms: 0.25 },
      EG: { sms: 0.3 },
      PK: { sms: 0.3 },
      TR: { sms: 0.05 },
      RU: { sms: 0.6 },
      AZ: { sms: 0.35 },
      UZ: { sms: 0.35 },
    },
  },
  budgets: { dailyTotal: null, countries: {}, defaultCountry: null, circuitBreaker: true },
  alerts: {
    enabled: true,
    cooldownMinutes: 60,
    checkFailureRate: { enabled: true, windowMinutes: 10, minChecks: 50, maxFailureRatio: 0.6 },
    requestSpike: { enabled: true, windowMinutes: 10, perNumber: 15, perIp: 100, perPrefix: 300, perCountry: 3000 },
    conversionDrop: { enabled: true, windowMinutes: 60, baselineHours: 24, minVerifications: 30, dropRatio: 0.5 },
    unexpectedRegion: { enabled: true, windowMinutes: 10, minRequests: 10, expectedCountries: [], learnHours: 24 },
    outsideHours: { enabled: false, fromHour: 6, toHour: 23, utcOffsetMinutes: 0, windowMinutes: 10, minRequests: 20 },
    deliveryRateDrop: { enabled: true, windowMinutes: 60, minReceipts: 20, minRate: 0.8 },
    senderFailures: { enabled: true, windowMinutes: 15, minAttempts: 10, maxFailureRatio: 0.2 },
    quarantineStarted: { enabled: true },
    dailySpend: { enabled: true },
  },
};

export const DEFAULT_MONITORING_CONFIG: MonitoringConfig = {
  metrics: { enabled: true, port: 0, host: '127.0.0.1' },
  stats: { flushSeconds: 5, retentionDays: 8, maxPrefixesPerHour: 2000 },
  alerts: { evaluateSeconds: 15, log: true, webhooks: [] },
  receipts: { enabled: true, toleranceSeconds: 300 },
};

export type Resolved<T> = { ok: true; value: T } | { ok: false; value: T; errors: { path: string; message: string }[] };

function resolve<T>(schema: typeof MonitoringPolicySchema | typeof MonitoringConfigSchema, defaults: T, over: unknown): Resolved<T> {
  if (over === undefined || over === null) return { ok: true, value: defaults };
  if (typeof over !== 'object' || Array.isArray(over)) return { ok: false, value: defaults, errors: [{ path: '/', message: 'must be an object' }] };
  const merged = deepMerge(structuredClone(defaults) as Record<string, unknown>, over as Record<string, unknown>);
  if (!Value.Check(schema, merged)) {
    const errors = [...Value.Errors(schema, merged)].slice(0, 20).map((e) => ({ path: e.instancePath || '/', message: e.message }));
    return { ok: false, value: defaults, errors };
  }
  return { ok: true, value: merged as T };
}

/** Validate a (partial) policy `monitoring` section over the defaults. Invalid → the defaults plus errors. */
export function resolveMonitoringPolicy(over: unknown): Resolved<MonitoringPolicy> {
  return resolve(MonitoringPolicySchema, DEFAULT_MONITORING_POLICY, over);
}

/** Validate a (partial) configuration `monitoring` section over the defaults. */
export function resolveMonitoringConfig(over: unknown): Resolved<MonitoringConfig> {
  return resolve(MonitoringConfigSchema, DEFAULT_MONITORING_CONFIG, over);
}

/** The `monitoring` key of a policy or config object, whether or not its schema declares it yet. */
export function monitoringSection(doc: unknown): unknown {
  return doc !== null && typeof doc === 'object' ? (doc as { monitoring?: unknown }).monitoring : undefined;
}
