/**
 * What may reach a log line. The logger is built with `loggerOptions(cfg)` (src/service/context.ts
 * `makeLogger`), so every line, including Fastify's request logs and errors thrown deep in a sender, goes
 * through the same rules:
 *  - codes, secrets, tokens and the Authorization header are removed by path (pino `redact`);
 *  - API keys (`osk_<id>_<secret>`) lose their secret wherever they appear in a string;
 *  - phone numbers are masked (`+62812*****890`) unless `privacy.maskNumbersInLogs` is false: any string
 *    that looks like an E.164 number, and the digits under keys that hold numbers (`to`, `phone`…).
 * Logs are copied to places with weaker access control than the database; the audit events in the store
 * keep the full number for abuse analysis (docs/privacy.md).
 */
import type { LoggerOptions } from 'pino';
import type { Config } from '../config/schema.ts';
import { maskPhone } from '../signals/phone.ts';

const REDACT_PATHS = [
  'code',
  '*.code',
  'secret',
  '*.secret',
  'codeSecret',
  '*.codeSecret',
  'previousCodeSecrets',
  '*.previousCodeSecrets',
  'authToken',
  '*.authToken',
  'formToken',
  '*.formToken',
  'captchaToken',
  '*.captchaToken',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

const API_KEY_RE = /osk_([A-Za-z0-9]{12})_[A-Za-z0-9_-]{43}/g;
/** A + and 6–15 digits not inside a longer run of digits: what E.164 looks like in free text. */
const E164_RE = /\+\d{6,15}(?!\d)/g;
const PHONE_KEYS = new Set(['to', 'phone', 'number', 'e164', 'msisdn', 'from', 'destination']);
const DIGITS_RE = /^\+?\d{6,15}$/;
/** Log objects are small; anything deeper or bigger is cut rather than walked (a log call must not be a DoS). */
const MAX_DEPTH = 8;
const MAX_KEYS = 200;

export function scrubString(s: string, maskNumbers: boolean): string {
  let out = s.includes('osk_') ? s.replace(API_KEY_RE, 'osk_$1_[redacted]') : s;
  if (maskNumbers && out.includes('+')) out = out.replace(E164_RE, (m) => maskPhone(m));
  return out;
}

/** A copy of `value` with keys and numbers scrubbed; the input is not modified. */
export function scrubLogValue(value: unknown, maskNumbers: boolean, key = '', depth = 0): unknown {
  if (typeof value === 'string') {
    if (maskNumbers && PHONE_KEYS.has(key) && DIGITS_RE.test(value)) return maskPhone(value.startsWith('+') ? value : `+${value}`);
    return scrubString(value, maskNumbers);
  }
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[depth]';
  if (value instanceof Error) {
    // Keep what diagnoses the fault; messages and stacks can quote input.
    const code = (value as { code?: unknown }).code;
    return {
      type: value.name,
      message: scrubString(value.message, maskNumbers),
      ...(typeof code === 'string' ? { code } : {}),
      ...(value.stack ? { stack: scrubString(value.stack, maskNumbers) } : {}),
    };
  }
  if (Array.isArray(value)) return value.slice(0, MAX_KEYS).map((v) => scrubLogValue(v, maskNumbers, key, depth + 1));
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(value)) {
    if (n++ >= MAX_KEYS) break;
    out[k] = scrubLogValue(v, maskNumbers, k, depth + 1);
  }
  return out;
}

/** Options for `pino(...)`: level, redaction and scrubbing. The destination stays the caller's choice. */
export function loggerOptions(cfg: Pick<Config, 'logLevel' | 'privacy'>): LoggerOptions {
  const mask = cfg.privacy.maskNumbersInLogs;
  return {
    level: cfg.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: {
      log: (obj) => scrubLogValue(obj, mask) as Record<string, unknown>,
    },
    hooks: {
      // The message string too: `log.info('sent to %s', to)` must not leak what the object form would hide.
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubString(a, mask) : a)) as Parameters<typeof method>;
        method.apply(this, scrubbed);
      },
    },
  };
}
