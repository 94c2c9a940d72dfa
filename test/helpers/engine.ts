/**
 * Facts and policies for tests of the pure engine: an ordinary Indonesian mobile request from a browser that
 * ran the widget (valid form token, solved proof-of-work, human timing), each part overridable.
 */
import assert from 'node:assert/strict';
import { NO_STATE, type SendFacts } from '../../src/engine/facts.ts';
import { parsePolicy, type Policy } from '../../src/engine/policy.ts';

export type FactsOverrides = Partial<Omit<SendFacts, 'evidence' | 'state' | 'number'>> & {
  evidence?: Partial<SendFacts['evidence']>;
  state?: Partial<SendFacts['state']>;
  number?: Partial<SendFacts['number']>;
};

export function facts(over: FactsOverrides = {}): SendFacts {
  return {
    now: 0,
    channel: 'sms',
    ip: { ip: '36.72.10.5', subnet: '36.72.10.0/24', network: '36.72.10.0/24', site: null, country: 'ID', asn: 7713, hosting: false, tor: false, proxy: false, vpn: false, sources: [] },
    lists: [],
    ...over,
    number: { e164: '+6281234567890', region: 'ID', callingCode: '62', type: 'MOBILE', prefix: '+62812', disposable: false, sources: [], ...over.number },
    evidence: { formToken: 'valid', pow: 'solved', captcha: 'missing', honeypot: false, elapsedMs: 5400, headless: false, scriptUserAgent: false, deviceId: 'dev-1', acceptLanguage: 'id-ID', ...over.evidence },
    state: { ...NO_STATE, ...over.state },
  };
}

/** A policy from a (partial) document; fails the test if the document is invalid. */
export function policy(doc: unknown): Policy {
  const r = parsePolicy(doc);
  assert.ok(r.ok, JSON.stringify(r));
  return r.policy;
}
