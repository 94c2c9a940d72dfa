/**
 * The replay's `Signals` port: phone parsing, prefixes, IP and number intel are the server's own
 * (passed in as `base`), only `verifyEvidence` differs: it returns the outcomes recorded in the trace
 * instead of checking tokens, because a trace holds outcomes, not tokens that could be re-verified.
 *
 * The recorded outcomes travel to `verifyEvidence` attached to the very `client` object the driver hands to
 * `VerificationService.send` (a WeakMap keyed by that object), so nothing about the send path changes.
 *
 * Phone parsing, IP facts and number facts are pure for the length of a replay (the intel lists do not
 * change under it), and a trace repeats the same numbers and IPs many times, so their results are memoised:
 * the answers are the server's, computed once per distinct input.
 */
import type { EvidenceFacts } from '../engine/facts.ts';
import { deviceIdOf } from '../signals/evidence.ts';
import { classifyUserAgent } from '../signals/invisible.ts';
import type { ClientEvidenceInput, Signals } from '../service/ports.ts';
import type { TraceClient } from './format.ts';

export interface ReplaySignals extends Signals {
  /** Build the client input for one recorded send; its evidence outcomes are returned by verifyEvidence. */
  clientFor(rec: TraceClient | undefined): ClientEvidenceInput;
}

/** Memoise a one-argument pure function with a bounded cache (cleared wholesale when full: simple, O(1)). */
function memo<K, V>(fn: (k: K) => V, max = 200_000): (k: K) => V {
  const cache = new Map<K, V>();
  return (k) => {
    let v = cache.get(k);
    if (v === undefined && !cache.has(k)) {
      v = fn(k);
      if (cache.size >= max) cache.clear();
      cache.set(k, v);
    }
    return v as V;
  };
}

export function replaySignals(base: Signals): ReplaySignals {
  const recorded = new WeakMap<object, TraceClient>();
  // Facts recorded with an address (pseudonymised exports): they replace its lookup.
  const recordedIpFacts = new Map<string, NonNullable<TraceClient['ipFacts']>>();
  // User agents repeat a lot in any real trace; classifying one is a handful of regexes.
  const uaCache = new Map<string, { script: boolean; headless: boolean }>();
  const classify = (ua: string | null): { script: boolean; headless: boolean } => {
    const key = ua ?? '';
    let hit = uaCache.get(key);
    if (!hit) {
      const c = classifyUserAgent(key);
      hit = { script: c.script !== null, headless: c.headless !== null };
      if (uaCache.size > 10_000) uaCache.clear();
      uaCache.set(key, hit);
    }
    return hit;
  };

  const parse = memo((key: string) => {
    const i = key.indexOf('|');
    const region = key.slice(0, i);
    return base.parsePhone(key.slice(i + 1), region === '' ? undefined : region);
  });
  const ipFacts = memo((ip: string) => base.ipFacts(ip));
  const numberFacts = memo((e164: string) => base.numberFacts(e164));
  // Results are shared between calls: hand out copies, as the live port returns fresh objects.
  const copy = <T extends object | null>(v: T): T => (v === null ? v : ({ ...v } as T));

  return {
    parsePhone: (input, defaultRegion) => (typeof input === 'string' ? copy(parse(`${defaultRegion ?? ''}|${input}`)) : base.parsePhone(input, defaultRegion)),
    prefixOf: (e164, digits) => base.prefixOf(e164, digits),
    ipFacts: (ip) => {
      const f = ipFacts(ip);
      if (f === null) return null;
      const r = recordedIpFacts.get(f.ip);
      return r ? { ...f, ...r, sources: ['recorded'] } : { ...f, sources: [...f.sources] };
    },
    numberFacts: (e164) => {
      const f = numberFacts(e164);
      return { ...f, sources: [...f.sources] };
    },

    clientFor(rec) {
      const client: ClientEvidenceInput = {};
      if (rec?.ip) {
        client.ip = rec.ip;
        if (rec.ipFacts) {
          const parsed = ipFacts(rec.ip);
          if (parsed) recordedIpFacts.set(parsed.ip, rec.ipFacts);
        }
      }
      if (rec?.userAgent) client.userAgent = rec.userAgent;
      if (rec?.deviceId) client.deviceId = rec.deviceId;
      if (rec?.acceptLanguage) client.acceptLanguage = rec.acceptLanguage;
      if (typeof rec?.elapsedMs === 'number') client.elapsedMs = rec.elapsedMs;
      recorded.set(client, rec ?? {});
      return client;
    },

    async verifyEvidence(client, ctx): Promise<EvidenceFacts> {
      const rec = recorded.get(client) ?? {};
      const ua = classify(ctx.userAgent ?? rec.userAgent ?? null);
      // The live evidence layer's rule, as the send path expects of every Signals port.
      const deviceId = deviceIdOf(rec.deviceId);
      const lang = typeof rec.acceptLanguage === 'string' && rec.acceptLanguage.trim() !== '' ? rec.acceptLanguage.trim() : null;
      return {
        formToken: rec.formToken ?? 'missing',
        pow: rec.pow ?? 'missing',
        captcha: rec.captcha ?? 'missing',
        honeypot: rec.honeypot ?? false,
        elapsedMs: typeof rec.elapsedMs === 'number' ? rec.elapsedMs : null,
        headless: rec.headless ?? ua.headless,
        scriptUserAgent: rec.scriptUserAgent ?? ua.script,
        deviceId,
        acceptLanguage: lang,
        powLevel: rec.powLevel ?? null,
      };
    },
  };
}
