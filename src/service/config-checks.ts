/**
 * The checks of a configuration that need more than its schema: building the senders, compiling the message
 * templates, the test numbers and the CIDR lists. `buildContext` runs them before it opens anything, and
 * `otp-shield config check` runs the same function, so "configuration is valid" means the server will start
 * with it. Every failure is a `ConfigError` naming the key, printed as one line by the CLI.
 */
import { ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { buildSenders, type SenderConfig } from '../delivery/build.ts';
import { SenderConfigError } from '../delivery/sender.ts';
import { createTemplates, isValidOtpDomain, TemplateConfigError } from '../delivery/templates.ts';
import { compileCidrs } from '../http/client-ip.ts';
import { normalizePhone } from '../signals/phone.ts';
import { channelOfDestination, destinationKey } from './destination.ts';
import type { Signals } from './ports.ts';

/**
 * Fixed codes of the configured test destinations, by destination key: the E.164 number, or for an email
 * address (an entry with an `@`) the key the email channel gives it, so `QA+1@Example.com` configured matches
 * `qa+1@example.com` sent (service/destination.ts). A test number is one on every phone channel.
 */
export function testNumbersOf(cfg: Config, signals: Pick<Signals, 'parsePhone'> = { parsePhone: (input) => normalizePhone(input) }): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of cfg.testNumbers) {
    const dest = destinationKey(signals, channelOfDestination(t.number), t.number);
    if (!dest.ok) {
      throw new ConfigError(`invalid configuration at "testNumbers": ${t.number} is not a valid ${dest.code === 'invalid_email_address' ? 'email address' : 'number'}`);
    }
    if (t.code.length !== cfg.codes.length) throw new ConfigError(`invalid configuration at "testNumbers": code for ${t.number} must have ${cfg.codes.length} digits`);
    out.set(dest.key, t.code);
  }
  return out;
}

/**
 * What starts but cannot work: an enabled channel no configured sender supports (its every send fails with
 * 502 `delivery_failed`). `serve` logs these; `config check` prints them too.
 */
export function configWarnings(cfg: Config, senders: readonly { channels: ReadonlySet<string> }[] = buildSenders(cfg.senders as unknown as SenderConfig[], cfg.env)): string[] {
  const out: string[] = [];
  for (const ch of cfg.channels) {
    if (!senders.some((s) => s.channels.has(ch))) out.push(`channel ${ch} is enabled but no configured sender supports it: its sends fail with 502 delivery_failed`);
  }
  return out;
}

/** Throws a ConfigError for the first part of `cfg` the server could not build. */
export function checkConfig(cfg: Config): void {
  try {
    buildSenders(cfg.senders as unknown as SenderConfig[], cfg.env);
  } catch (err) {
    if (err instanceof SenderConfigError) throw new ConfigError(`invalid configuration at "senders": ${err.message}`);
    throw err;
  }
  try {
    createTemplates(cfg.templates);
  } catch (err) {
    if (err instanceof TemplateConfigError) throw new ConfigError(`invalid configuration at "templates": ${err.problems.join('; ')}`);
    throw err;
  }
  testNumbersOf(cfg);
  const domain = cfg.codes.webOtpDomain;
  if (domain !== undefined && domain !== null && !isValidOtpDomain(domain)) {
    throw new ConfigError(`invalid configuration at "codes.webOtpDomain": "${domain}" is not a bare host name like "example.com" (no scheme, port or path)`);
  }
  for (const [key, list] of [['server.trustedProxies', cfg.server.trustedProxies], ['admin.ipAllowlist', cfg.admin.ipAllowlist]] as const) {
    try {
      compileCidrs(list);
    } catch (err) {
      throw new ConfigError(`invalid configuration at "${key}": ${(err as Error).message}`);
    }
  }
}
