/**
 * The application context: every long-lived part built once at start-up from the configuration and
 * handed to the HTTP routes and CLI commands. Nothing else constructs stores, senders or secrets.
 */
import { disposableDomains } from '../signals/email.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { maskNumbersInText, redactApiKeys } from './log-privacy.ts';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../config/load.ts';
import { captchaOnlyRules, DEFAULT_POLICY, enforcedPolicy, parsePolicy, type Policy } from '../engine/policy.ts';
import { refreshPolicy, type StoredPolicy } from './policy-store.ts';
import { buildSenders, type SenderConfig } from '../delivery/build.ts';
import { createDispatcher } from '../delivery/dispatcher.ts';
import { createTemplates, renderMessage } from '../delivery/templates.ts';
import { checkConfig, configWarnings, testNumbersOf } from './config-checks.ts';
import { openStore, storeConfigOf } from '../store/factory.ts';
import type { Channel, Store } from '../store/interface.ts';
import { compileCidrs } from '../http/client-ip.ts';
import type { CidrParsed } from '../signals/ip.ts';
import { makeKeyring, type Keyring } from './codes.ts';
import { SharedState, type SharedStateOptions } from './state.ts';
import { VerificationService, type ServiceHooks } from './verifications.ts';
import { buildSignals, buildChallenger } from './signals.ts';
import { layers } from './layers.ts';
import type { Challenger, Delivery, Signals } from './ports.ts';

export interface AppContext {
  config: Config;
  version: string;
  store: Store;
  clock: () => number;
  log: Logger;
  policy: () => Policy;
  policyVersion: () => number;
  setPolicy: (p: Policy, version: number) => void;
  challenger: Challenger;
  keyring: Keyring;
  signals: Signals;
  state: SharedState;
  verifications: VerificationService;
  trustedProxies: CidrParsed[];
  adminAllowlist: CidrParsed[];
  /** Route plugins added by later layers (admin, challenges, dashboard…). */
  extraRoutes: ((ctx: AppContext) => FastifyPluginAsync)[];
  /** Listeners on the verification flow (SMS-pumping defense, alerts, metrics). */
  hooks: ServiceHooks[];
  /**
   * Periodic work that must happen with no request to trigger it (a quarantine's end, an idle scope's
   * relaxation): run by the HTTP server while it listens (src/http/server.ts), so one-shot commands and the
   * replay run none of it.
   */
  background: BackgroundTask[];
  /** Set by `serve` at SIGTERM: /readyz answers 503 and responses close their connections (server.drainMs). */
  lifecycle: { draining: boolean };
  close(): Promise<void>;
}

export interface BackgroundTask {
  name: string;
  everyMs: number;
  run(now: number): Promise<unknown>;
}

export interface ContextOverrides {
  store?: Store;
  clock?: () => number;
  log?: Logger;
  delivery?: Delivery;
  /** Shared-state options (the replay's store reports which shared settings changed). */
  sharedState?: SharedStateOptions;
}

import { VERSION } from './version.ts';

export { VERSION };

/** Development secret: generated once and kept in the data folder so codes survive restarts. */
function resolveCodeSecret(cfg: Config, log: Logger): string {
  if (cfg.secrets.codeSecret) return cfg.secrets.codeSecret;
  mkdirSync(cfg.dataDir, { recursive: true });
  const file = join(cfg.dataDir, 'code-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  log.warn({ file }, 'generated a development code secret; set OTPSHIELD_CODE_SECRET in production');
  return secret;
}

export function loadPolicyFile(file: string): Policy {
  if (!existsSync(file)) throw new ConfigError(`policy file not found: ${file}`);
  const text = readFileSync(file, 'utf8');
  let doc: unknown;
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`cannot parse policy ${file}: ${(err as Error).message}`);
  }
  const res = parsePolicy(doc ?? {});
  if (!res.ok) throw new ConfigError(`invalid policy ${file}: ${res.errors.map((e) => `${e.path} ${e.message}`).join('; ')}`);
  return res.policy;
}

export function makeLogger(cfg: Config, destination?: NodeJS.WritableStream): Logger {
  const mask = cfg.privacy.maskNumbersInLogs;
  const opts: LoggerOptions = {
    level: cfg.logLevel,
    // Masked once on the serialized line: walking every logged object (Fastify's raw request included)
    // cost more than the request itself (docs/benchmarks.md).
    // API keys are redacted from every line; numbers only while masking is on.
    hooks: { streamWrite: mask ? (line: string) => maskNumbersInText(line) : (line: string) => redactApiKeys(line) },
    // Secrets and codes must never reach a log line, even through a careless `log.info(obj)`.
    redact: {
      paths: [
        'code', '*.code', 'secret', '*.secret', 'authToken', '*.authToken', 'password', '*.password', 'codeSecret', '*.codeSecret',
        'formToken', '*.formToken', 'captchaToken', '*.captchaToken', 'pow', '*.pow',
        'req.headers.authorization', 'headers.authorization', 'req.headers.cookie', 'headers.cookie',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}

export async function buildContext(cfg: Config, o: ContextOverrides = {}): Promise<AppContext> {
  // What the schema cannot say (senders, templates, test numbers, CIDRs), before anything is opened; the
  // same checks as `otp-shield config check`.
  checkConfig(cfg);
  const log = o.log ?? makeLogger(cfg);
  const clock = o.clock ?? Date.now;
  const store =
    o.store ??
    (await openStore(storeConfigOf(cfg)));

  const codeSecret = resolveCodeSecret(cfg, log);
  const keyring = makeKeyring(codeSecret, cfg.secrets.previousCodeSecrets);

  // Policy: the stored current version wins (it was set through the admin API), then the file, then defaults.
  // A policy file pins the policy (GitOps style); otherwise the stored version wins and is followed.
  let policy: Policy = cfg.policyFile ? loadPolicyFile(cfg.policyFile) : DEFAULT_POLICY;
  let policyVersion = 0;
  // A stored policy that does not load keeps the policy in force (at start: the defaults), loudly: the
  // operator must learn that their rules are not applied. Its version is remembered so the error is logged
  // once, not at every refresh; the next valid save replaces it.
  const adopt = (stored: StoredPolicy): void => {
    policyVersion = stored.version;
    if (stored.policy === null) {
      log.error({ version: stored.version, errors: stored.errors }, 'the stored policy does not load: deciding with the policy in force before it (at start: the built-in defaults) until a valid one is saved (PUT /v1/admin/policy)');
      return;
    }
    const ignored = stored.warnings.filter((w) => w.message.startsWith('ignored:')).map((w) => w.path);
    const refused = stored.warnings.filter((w) => !w.message.startsWith('ignored:'));
    if (ignored.length > 0) log.warn({ version: stored.version, ignored }, 'the stored policy has keys this version does not know (saved by a newer version?): deciding without them');
    if (refused.length > 0) log.warn({ version: stored.version, warnings: refused }, 'the stored policy has settings that a new save would refuse (fix them with the next PUT /v1/admin/policy)');
    policy = stored.policy;
  };
  if (!cfg.policyFile) {
    const stored = await refreshPolicy(store, 0);
    if (stored) adopt(stored);
  }

  const templates = createTemplates(cfg.templates);
  let delivery = o.delivery;
  if (!delivery) {
    const senders = buildSenders(cfg.senders as unknown as SenderConfig[], cfg.env, { now: clock });
    for (const w of configWarnings(cfg, senders)) log.warn(w);
    const dispatcher = createDispatcher(senders, {
      // Entries arrive already scrubbed of the code.
      onAttempt: (entry, msg) => log[entry.ok ? 'debug' : 'warn']({ ...entry, verificationId: msg.verificationId, channel: msg.channel }, 'delivery attempt'),
    });
    delivery = {
      async deliver(m) {
        // The WebOTP line only in an SMS: browsers read it from SMS alone, and in other channels it is noise.
        const domain = m.channel === 'sms' && cfg.codes.webOtpDomain ? { domain: cfg.codes.webOtpDomain } : {};
        const text = renderMessage(templates, { locale: m.locale, code: m.code, app: cfg.appName, minutes: Math.round(cfg.codes.ttlSeconds / 60), ...domain });
        const out = await dispatcher.deliver({ ...m, text });
        // The failed attempts go into the send's event, where monitoring counts them per sender (a primary that
        // fails while a fallback delivers was visible only as a log line).
        // Each with how long its sender took (monitoring's per-sender latency histogram).
        const failed = out.attempts.filter((a) => !a.ok).map((a) => ({ sender: a.sender, reason: a.reason ?? 'failed', ms: a.ms }));
        const extra = failed.length > 0 ? { failed } : {};
        const ms = out.ok ? out.attempts.at(-1)?.ms : undefined;
        return out.ok ? { ok: true, sender: out.sender, providerId: out.providerId, ...(ms !== undefined ? { ms } : {}), ...extra } : { ok: false, reason: out.reason, ...extra };
      },
    };
  }

  const signals = await buildSignals(cfg, store, clock, codeSecret);
  const challenger = buildChallenger(cfg, codeSecret);
  const needCaptcha = captchaOnlyRules(policy);
  if (!cfg.captcha && needCaptcha.length > 0) {
    log.warn(
      { rules: needCaptcha },
      'no CAPTCHA provider configured: the rules only a CAPTCHA clears are not enforced (number.* and ip.many_countries in shadow, quarantines block good evidence too); configure `captcha` to enforce them (docs/policy.md)',
    );
  }
  const state = new SharedState(store, clock, o.sharedState);
  if (!cfg.policyFile) {
    state.addRefresher(async () => {
      const next = await refreshPolicy(store, policyVersion);
      if (next) adopt(next);
    });
  }
  const testNumbers = testNumbersOf(cfg);

  const ctx: AppContext = {
    config: cfg,
    version: VERSION,
    store,
    clock,
    log,
    policy: () => policy,
    policyVersion: () => policyVersion,
    setPolicy: (p, version) => {
      policy = p;
      policyVersion = version;
    },
    challenger,
    keyring,
    signals,
    state,
    verifications: null as unknown as VerificationService,
    trustedProxies: compileCidrs(cfg.server.trustedProxies),
    adminAllowlist: compileCidrs(cfg.admin.ipAllowlist),
    extraRoutes: [],
    hooks: [],
    background: [],
    lifecycle: { draining: false },
    close: async () => {
      signals.close();
      await store.close();
    },
  };
  ctx.verifications = new VerificationService({
    store,
    clock,
    // Without a CAPTCHA provider, rules only a CAPTCHA clears are not enforced (engine/policy.ts withoutCaptcha).
    policy: enforcedPolicy(() => policy, Boolean(cfg.captcha)),
    keyring: () => keyring,
    signals,
    delivery,
    challenger,
    state,
    log,
    codes: cfg.codes,
    channels: cfg.channels as Channel[],
    testNumbers,
    hooks: ctx.hooks,
  });
  // The disposable-domain list is read now, not by the first email send (signals/email.ts).
  if (cfg.channels.includes('email')) disposableDomains();
  ctx.background.push({ name: 'relax idle throttles', everyMs: 60_000, run: (now) => ctx.verifications.relaxIdleThrottles(now) });
  for (const install of layers) await install(ctx);
  return ctx;
}
