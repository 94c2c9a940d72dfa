/**
 * Config → senders. The TypeBox schema lets the config loader validate the shape (and report every
 * error at once); the factories then check what a schema cannot (URL syntax, production rules,
 * from-or-service) and throw `SenderConfigError`.
 */
import type { Writable } from 'node:stream';
import { Type, type Static } from 'typebox';
import type { Channel } from '../store/interface.ts';
import { SenderConfigError, type Sender } from './sender.ts';
import { createConsoleSender } from './console.ts';
import { createNoopSender } from './noop.ts';
import { createWebhookSender, MIN_SECRET_LENGTH } from './webhook.ts';
import { createTwilioSender } from './twilio.ts';
import { createSmtpSender, type SmtpSenderOptions } from './smtp.ts';
import { MAX_TIMEOUT_MS } from './options.ts';

export type SenderConfig =
  | { type: 'console' }
  | { type: 'noop' }
  | { type: 'webhook'; name?: string; url: string; secret: string; channels?: Channel[]; timeoutMs?: number }
  | {
      type: 'twilio';
      name?: string;
      accountSid: string;
      authToken: string;
      from?: string;
      messagingServiceSid?: string;
      baseUrl?: string;
      statusCallbackUrl?: string;
      channels?: Channel[];
      timeoutMs?: number;
    }
  | ({ type: 'smtp' } & Omit<SmtpSenderOptions, 'env'>);

const ChannelSchema = Type.Union([Type.Literal('sms'), Type.Literal('whatsapp'), Type.Literal('voice'), Type.Literal('email')]);
const ChannelsSchema = Type.Array(ChannelSchema, { minItems: 1, uniqueItems: true });
const NameSchema = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' });
const TimeoutSchema = Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_MS });
const strict = { additionalProperties: false } as const;

export const SenderConfigSchema = Type.Union([
  Type.Object({ type: Type.Literal('console') }, strict),
  Type.Object({ type: Type.Literal('noop') }, strict),
  Type.Object(
    {
      type: Type.Literal('webhook'),
      name: Type.Optional(NameSchema),
      url: Type.String({ pattern: '^https?://' }),
      secret: Type.String({ minLength: MIN_SECRET_LENGTH }),
      channels: Type.Optional(ChannelsSchema),
      timeoutMs: Type.Optional(TimeoutSchema),
    },
    strict,
  ),
  Type.Object(
    {
      type: Type.Literal('twilio'),
      name: Type.Optional(NameSchema),
      accountSid: Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' }),
      authToken: Type.String({ minLength: 1 }),
      from: Type.Optional(Type.String({ minLength: 1 })),
      messagingServiceSid: Type.Optional(Type.String({ pattern: '^MG[0-9a-fA-F]{32}$' })),
      baseUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
      statusCallbackUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
      channels: Type.Optional(ChannelsSchema),
      timeoutMs: Type.Optional(TimeoutSchema),
    },
    strict,
  ),
  // The email channel only (its channels are not configurable).
  Type.Object(
    {
      type: Type.Literal('smtp'),
      name: Type.Optional(NameSchema),
      host: Type.String({ minLength: 1, maxLength: 253 }),
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_535 })),
      secure: Type.Optional(Type.Boolean()),
      requireTls: Type.Optional(Type.Boolean()),
      user: Type.Optional(Type.String({ minLength: 1 })),
      password: Type.Optional(Type.String({ minLength: 1 })),
      from: Type.String({ minLength: 3, maxLength: 320 }),
      subject: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
      timeoutMs: Type.Optional(TimeoutSchema),
    },
    strict,
  ),
]);

// Compile-time guard: the hand-written union and the schema must describe the same shapes.
type SchemaConfig = Static<typeof SenderConfigSchema>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesType: Same<SchemaConfig, SenderConfig> = true;
void schemaMatchesType;

export interface BuildDeps {
  stdout?: Writable;
  /** Epoch ms clock for webhook signature timestamps. */
  now?: () => number;
}

export function buildSenders(
  configs: SenderConfig[],
  env: 'development' | 'production' | 'test',
  deps: BuildDeps = {},
): Sender[] {
  const senders: Sender[] = [];
  for (const config of configs) senders.push(buildOne(config, env, deps));
  // Names identify the sender on verifications, in logs and metrics: two with one name is ambiguous.
  const seen = new Set<string>();
  for (const sender of senders) {
    if (seen.has(sender.name)) {
      throw new SenderConfigError('duplicate sender name; give each sender a unique "name"', sender.name);
    }
    seen.add(sender.name);
  }
  return senders;
}

function buildOne(config: SenderConfig, env: 'development' | 'production' | 'test', deps: BuildDeps): Sender {
  switch (config.type) {
    case 'console':
      return createConsoleSender(deps.stdout === undefined ? { env } : { env, stdout: deps.stdout });
    case 'noop':
      return createNoopSender();
    case 'webhook': {
      const { type: _type, ...rest } = config;
      return createWebhookSender(deps.now === undefined ? rest : { ...rest, now: deps.now });
    }
    case 'twilio': {
      const { type: _type, ...rest } = config;
      return createTwilioSender(rest);
    }
    case 'smtp': {
      const { type: _type, ...rest } = config;
      return createSmtpSender({ ...rest, env });
    }
    default: {
      // Reachable only with unvalidated input (e.g. a typo'd type in JSON).
      const type = (config as { type?: unknown }).type;
      throw new SenderConfigError(`unknown sender type ${JSON.stringify(type)}`);
    }
  }
}
