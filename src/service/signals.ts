/**
 * Wires the signal modules (`src/signals/`) into the service's `Signals` and `Challenger` ports.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { IpFacts } from '../engine/facts.ts';
import { normalizePhone, prefixOf } from '../signals/phone.ts';
import { networkKey, parseIp, siteKey, subnetKey } from '../signals/ip.ts';
import { Intel } from '../signals/intel.ts';
import { verifyClientEvidence, issueChallenge } from '../signals/evidence.ts';
import { createCaptchaVerifier, type CaptchaConfig } from '../signals/captcha.ts';
import type { Store } from '../store/interface.ts';
import type { Challenger, Signals } from './ports.ts';

export async function buildSignals(cfg: Config, store: Store, clock: () => number, secret: string): Promise<Signals & { close(): void }> {
  // List files under <dataDir>/intel are polled and reloaded on change: no restart needed.
  const intel = await Intel.load({ dir: join(cfg.dataDir, 'intel'), now: clock, watch: cfg.env !== 'test' });
  const captcha = cfg.captcha ? createCaptchaVerifier(cfg.captcha as unknown as CaptchaConfig) : undefined;
  const secrets = { current: secret, previous: cfg.secrets.previousCodeSecrets };
  return {
    close: () => intel.close(),
    parsePhone: (input, defaultRegion) => normalizePhone(input, defaultRegion ? { defaultRegion } : {}),
    prefixOf,
    ipFacts(ip: string): IpFacts | null {
      const parsed = parseIp(ip);
      if (!parsed.ok) return null;
      const subnet = subnetKey(parsed);
      const network = networkKey(parsed);
      if (!subnet || !network) return null;
      return { ip: parsed.ip, subnet, network, site: siteKey(parsed), ...intel.ipFacts(parsed.ip) };
    },
    numberFacts: (e164) => intel.numberFacts(e164),
    async verifyEvidence(client, ctx) {
      const v = await verifyClientEvidence(client, {
        secrets,
        store,
        now: ctx.now,
        ...(captcha ? { captcha } : {}),
        ip: ctx.ip,
        userAgent: ctx.userAgent,
        consume: ctx.consume,
      });
      return {
        formToken: v.formToken,
        pow: v.pow,
        captcha: v.captcha,
        honeypot: v.honeypot,
        elapsedMs: v.elapsedMs,
        headless: v.headless,
        scriptUserAgent: v.scriptUserAgent,
        deviceId: v.deviceId,
        acceptLanguage: v.acceptLanguage,
        powLevel: v.powLevel,
      };
    },
  };
}

export function buildChallenger(cfg: Config, secret: string): Challenger {
  const secrets = { current: secret, previous: cfg.secrets.previousCodeSecrets };
  return {
    async issue({ ip, userAgent, level, now, startedAt }) {
      const c = await issueChallenge({ secrets, ip, userAgent, now, difficulty: level, ...(startedAt !== undefined ? { startedAt } : {}) });
      return { formToken: c.formToken, issuedAt: c.issuedAt, expiresAt: c.expiresAt, pow: c.pow, powDifficulty: c.powDifficulty };
    },
  };
}
