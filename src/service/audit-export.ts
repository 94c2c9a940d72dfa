/**
 * Reading the audit log out: the API view of an event, NDJSON export and phone-number masking.
 * (Retention — deleting events older than `privacy.eventRetentionDays` — is the maintenance loop's job.)
 *
 * Export lines are replay input (docs/replay.md): a send becomes `{"at","type":"send","to","channel","client":{…
 * verified outcomes …}}` and a check `{"at","type":"check","to","code":"correct"|"wrong"}`, plus the recorded
 * decision, reasons, score, sender and result, which replay ignores. So yesterday's traffic can be replayed
 * against a new policy and the two decision columns compared.
 *
 * Masking: `mask` replaces the middle digits by stars (`+62812*****890`), readable but no longer a number,
 * so a masked export cannot be replayed. `pseudonymize` keeps the calling code and the first three national
 * digits (the prefix) and replaces the rest by digits of a keyed hash: the same number always gets the same
 * pseudonym within one export (with one key), different numbers almost never collide, and the result still
 * parses as a number of that range, so a pseudonymised export replays with per-number and per-prefix
 * behaviour intact (dense/sequential-range detection is lost: pseudonyms are scattered across the range).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { cidrPseudonym, ipPseudonymizer } from '../lib/ip-pseudonym.ts';
import { parseCidr, parseIp } from '../signals/ip.ts';
import { callingCodeOf, maskPhone } from '../signals/phone.ts';
import { EMAIL_IN_TEXT_RE, isEmailKey, maskEmail } from '../signals/email.ts';
import type { AuditEvent, EventQuery, Store } from '../store/interface.ts';

export type MaskMode = 'none' | 'mask' | 'pseudonymize';

export interface NumberMasker {
  mode: MaskMode;
  (e164: string): string;
  /**
   * Pseudonymize only: an IP address's keyed pseudonym (lib/ip-pseudonym.ts: its /24 or /48 kept, the host
   * part permuted) and a device id's. Absent in the other modes, which leave both as they are.
   */
  ip?: (ip: string) => string;
  device?: (id: string) => string;
}

const E164_RE = /^\+[1-9]\d{6,15}$/;
/** National digits kept in clear by both masks: the prefix an operator needs to see ranges. */
const KEPT_NATIONAL_DIGITS = 3;

export function numberMasker(mode: MaskMode, key?: string): NumberMasker {
  let fn: (e164: string) => string;
  if (mode === 'none') fn = (s) => s;
  else if (mode === 'mask') fn = (s) => (E164_RE.test(s) ? maskPhone(s) : isEmailKey(s) ? maskEmail(s) : s);
  else {
    // Only a missing key means "random": an empty one is a mistake the caller refuses (events export).
    const secret = key === undefined ? randomBytes(32).toString('base64url') : key;
    if (secret.length === 0) throw new Error('numberMasker: an empty pseudonym key');
    fn = (s) => {
      // An address keeps its domain (as a number its prefix); its local part becomes a keyed pseudonym.
      if (isEmailKey(s)) return `u${createHmac('sha256', secret).update(s).digest('hex').slice(0, 12)}${s.slice(s.lastIndexOf('@'))}`;
      if (!E164_RE.test(s)) return s;
      const digits = s.slice(1);
      const cc = callingCodeOf(digits) ?? digits.slice(0, 1);
      const head = digits.slice(0, cc.length + KEPT_NATIONAL_DIGITS);
      const restLen = digits.length - head.length;
      if (restLen <= 0) return s;
      const mac = createHmac('sha256', secret).update(s).digest();
      let rest = '';
      for (let i = 0; rest.length < restLen; i++) rest += String(mac[i % mac.length]! % 10);
      return `+${head}${rest}`;
    };
    const device = (id: string) => `d${createHmac('sha256', secret).update(`device|${id}`).digest('hex').slice(0, 32)}`;
    return Object.assign(fn, { mode, ip: ipPseudonymizer(secret), device });
  }
  return Object.assign(fn, { mode });
}

const ipOf = (m: NumberMasker, ip: string | null | undefined): string | null => (ip ? (m.ip ? m.ip(ip) : ip) : null);
const deviceOf = (m: NumberMasker, id: string | null | undefined): string | null => (id ? (m.device ? m.device(id) : id) : null);

/** An IPv4 address inside a longer text (an alert's `ip:…` scope or message). */
const V4_IN_TEXT_RE = /(?<![\d./])(?:\d{1,3}\.){3}\d{1,3}(?:\/\d{1,2}(?!\d))?(?!\d|\.\d)/g;

/** An E.164 number inside a longer text (a provider's error quoting the request: `… for +6281234567890`). */
const E164_IN_TEXT_RE = /\+[1-9]\d{6,15}(?!\d)/g;

/**
 * A prefix longer than any range's (more than 8 national digits: `limits.prefixDigits` is at most 8) is a
 * number (a pause or list entry on a full number), masked like one; a range's prefix stays as it is.
 */
export function maskedPrefix(prefix: string, m: (s: string) => string): string {
  const digits = prefix.startsWith('+') ? prefix.slice(1) : '';
  const cc = callingCodeOf(digits);
  return cc !== null && digits.length - cc.length > MAX_PREFIX_DIGITS ? m(prefix) : prefix;
}
const MAX_PREFIX_DIGITS = 8;

/** Keys whose string value is a device id (an event's filters, evidence, unlock targets). */
const DEVICE_KEYS = new Set(['deviceId', 'device']);

/**
 * Replace every E.164 number anywhere inside `v`: whole strings and numbers quoted inside texts (delivery
 * failure reasons and receipt errors often repeat the number). Numbers without their `+` are not recognised.
 * Pseudonymising, also addresses and device ids, by structure: a string that is an address or a network, an
 * `ip:` scope, a `deviceId`/`device` field, a list entry of kind `device`; IPv4 addresses inside free text.
 */
export function maskDeep(v: unknown, m: NumberMasker, key?: string): unknown {
  if (m.mode === 'none') return v;
  if (typeof v === 'string') return maskText(v, m, key);
  if (Array.isArray(v)) return v.map((x) => maskDeep(x, m, key));
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const deviceEntry = m.device !== undefined && o.kind === 'device';
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = deviceEntry && k === 'value' && typeof x === 'string' ? m.device!(x) : maskDeep(x, m, k);
    return out;
  }
  return v;
}

function maskText(v: string, m: NumberMasker, key: string | undefined): string {
  if (m.ip) {
    if (m.device && key !== undefined && DEVICE_KEYS.has(key)) return m.device(v);
    const whole = addressPseudonym(v, m.ip);
    if (whole !== null) return whole;
    if (v.startsWith('ip:')) {
      const scope = addressPseudonym(v.slice(3), m.ip);
      if (scope !== null) return `ip:${scope}`;
    }
    // IPv4 addresses and networks inside a text (an alert's message, a note); not a version number
    // (`Chrome/120.0.0.0`: after a '/').
    if (v.includes('.')) v = v.replace(V4_IN_TEXT_RE, (a) => addressPseudonym(a, m.ip!) ?? a);
  }
  const numbers = v.includes('+') ? v.replace(E164_IN_TEXT_RE, (n) => m(n)) : v;
  return numbers.includes('@') ? numbers.replace(EMAIL_IN_TEXT_RE, (a) => m(a)) : numbers;
}

/** The pseudonym of a string that is an address or a network, or null. */
function addressPseudonym(s: string, ip: (a: string) => string): string | null {
  if (s.length > 64 || !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(s)) return null;
  if (!s.includes('/')) return parseIp(s).ok ? ip(s) : null;
  return parseCidr(s).ok ? cidrPseudonym(ip, s) : null;
}

/** The API view of an event: ISO time, numbers masked as asked. */
export function eventView(e: AuditEvent, m: NumberMasker): Record<string, unknown> {
  return {
    seq: e.seq ?? null,
    id: e.id,
    at: new Date(e.at).toISOString(),
    type: e.type,
    to: e.to ? m(e.to) : (e.to ?? null),
    // A prefix as long as a number (a pause or list entry on a full number) is masked like one: in clear beside
    // its pseudonym it would undo it.
    prefix: e.prefix ? maskedPrefix(e.prefix, m) : null,
    country: e.country ?? null,
    ip: ipOf(m, e.ip),
    deviceId: deviceOf(m, e.deviceId),
    decision: e.decision ?? null,
    reasons: e.reasons ?? [],
    data: maskDeep(e.data ?? {}, m),
  };
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

/**
 * One export line. Sends and checks are in replay input format (plus what happened); every other event type
 * is written as its API view, which replay skips (`{"ignored": type}`).
 */
export function exportLine(e: AuditEvent, m: NumberMasker): Obj {
  const at = new Date(e.at).toISOString();
  const data = obj(e.data);
  if ((e.type === 'send' || e.type === 'send.failed') && e.to) {
    const ev = obj(data.evidence);
    const number = obj(data.number);
    const delivery = obj(data.delivery);
    const line: Obj = {
      at,
      type: 'send',
      to: m(e.to),
      channel: typeof data.channel === 'string' ? data.channel : 'sms',
    };
    if (Object.keys(ev).length > 0) {
      // A pseudonymised address cannot be looked up again: its facts as the decision saw them go with it.
      const facts = obj(data.ipFacts);
      const recorded =
        m.ip && e.ip && Object.keys(facts).length > 0
          ? { ipFacts: { country: facts.country ?? null, asn: facts.asn ?? null, hosting: facts.hosting === true, tor: facts.tor === true, proxy: facts.proxy === true, vpn: facts.vpn === true } }
          : {};
      line.client = {
        ip: ipOf(m, e.ip),
        ...recorded,
        ...(typeof data.userAgent === 'string' ? { userAgent: data.userAgent } : {}),
        deviceId: deviceOf(m, e.deviceId),
        formToken: ev.formToken,
        pow: ev.pow,
        captcha: ev.captcha,
        honeypot: ev.honeypot,
        elapsedMs: ev.elapsedMs ?? null,
        headless: ev.headless,
        scriptUserAgent: ev.scriptUserAgent,
        acceptLanguage: ev.acceptLanguage ?? null,
        ...(typeof ev.powLevel === 'string' ? { powLevel: ev.powLevel } : {}),
      };
    }
    line.seq = e.seq ?? null;
    line.id = e.id;
    line.number = { region: e.country ?? number.region ?? null, type: number.type ?? null, prefix: e.prefix ? maskedPrefix(e.prefix, m) : null };
    line.decision = e.decision ?? null;
    line.reasons = e.reasons ?? [];
    line.score = typeof data.score === 'number' ? data.score : null;
    if (data.testNumber) line.testNumber = true;
    if (Object.keys(delivery).length > 0) {
      line.sender = typeof delivery.sender === 'string' ? delivery.sender : null;
      line.delivery = maskDeep(delivery, m);
    }
    if (e.type === 'send.failed') line.deliveryFailed = true;
    if (typeof data.verificationId === 'string') line.verificationId = data.verificationId;
    return line;
  }
  if (e.type === 'check') {
    const result = e.decision === 'not_pending' ? 'not_found' : (e.decision ?? null);
    return {
      at,
      type: 'check',
      to: e.to ? m(e.to) : null,
      // Only an approval proves the right code was typed; every other outcome replays as a wrong code.
      code: result === 'approved' ? 'correct' : 'wrong',
      // Events written before 2026-11-28 carry no channel: those replay as sms.
      ...(typeof data.channel === 'string' ? { channel: data.channel } : {}),
      ...(e.ip || e.deviceId ? { client: { ip: ipOf(m, e.ip), deviceId: deviceOf(m, e.deviceId) } } : {}),
      seq: e.seq ?? null,
      id: e.id,
      result,
      reasons: e.reasons ?? [],
      ...(typeof data.verificationId === 'string' ? { verificationId: data.verificationId } : {}),
    };
  }
  return eventView(e, m);
}

export interface ExportOptions {
  from?: number;
  to?: number;
  types?: string[];
  mask: NumberMasker;
  /** Page size of the store reads. */
  batch?: number;
}

/** Every matching event, oldest first, as NDJSON lines (without the newline). Pages by `seq`. */
export async function* exportEvents(store: Store, o: ExportOptions): AsyncGenerator<string> {
  const batch = o.batch ?? 1000;
  const types = o.types && o.types.length > 0 ? new Set(o.types) : null;
  // A failed delivery is a send line of the export (`deliveryFailed`): the attempt counted against the limits
  // and the cooldown, so a trace of `--type send` without it would replay every later decision differently.
  if (types?.has('send')) types.add('send.failed');
  let after: number | undefined;
  for (;;) {
    const q: EventQuery = { order: 'asc', limit: batch };
    if (o.from !== undefined) q.from = o.from;
    if (o.to !== undefined) q.to = o.to;
    // One store-side type filter when a single type is asked for; several are filtered here.
    if (types && types.size === 1) q.type = [...types][0]!;
    if (after !== undefined) q.after = after;
    const page = await store.queryEvents(q);
    // Not an event a crash could still take back: its seq would be handed to another (Store.settled).
    await store.settled?.();
    for (const e of page) {
      if (types && !types.has(e.type)) continue;
      yield JSON.stringify(exportLine(e, o.mask));
    }
    if (page.length < batch) return;
    const last = page[page.length - 1]!.seq;
    if (last === undefined) return; // a store that assigns no seq cannot be paged
    after = last;
  }
}
