/**
 * The replay trace format (docs/replay.md): one JSON object a line, either a `send` with the verified
 * outcomes of the client's evidence, or a `check` whose code is `correct` (what was delivered to that
 * number), `wrong`, or literal digits (a guess, for brute-force traces). The audit export writes the same
 * shape plus extra fields (decision, reasons, seq …) that replay ignores, so an export is replayable.
 *
 * Parsing returns typed values, never throws: a bad line becomes one `{"error": …}` output line, so the
 * output stays aligned with the input line by line.
 */
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { parseIp, withoutPort } from '../signals/ip.ts';
import { parseIsoWithZone } from '../lib/iso-time.ts';

const NullableString = (max: number) => Type.Union([Type.String({ maxLength: max }), Type.Null()]);

export const TraceClientSchema = Type.Object(
  {
    ip: Type.Optional(NullableString(64)),
    userAgent: Type.Optional(NullableString(512)),
    deviceId: Type.Optional(NullableString(128)),
    formToken: Type.Optional(Type.Union([Type.Literal('valid'), Type.Literal('invalid'), Type.Literal('expired'), Type.Literal('reused'), Type.Literal('missing')])),
    pow: Type.Optional(Type.Union([Type.Literal('solved'), Type.Literal('invalid'), Type.Literal('missing'), Type.Literal('expired'), Type.Literal('reused')])),
    captcha: Type.Optional(Type.Union([Type.Literal('passed'), Type.Literal('failed'), Type.Literal('missing'), Type.Literal('error')])),
    honeypot: Type.Optional(Type.Boolean()),
    elapsedMs: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.Null()])),
    headless: Type.Optional(Type.Boolean()),
    /** Optional: when absent it is derived from `userAgent` exactly as the live evidence layer does. */
    scriptUserAgent: Type.Optional(Type.Boolean()),
    acceptLanguage: Type.Optional(NullableString(256)),
    /**
     * Optional: the address's facts as the live decision saw them (a pseudonymised export carries them, since
     * its addresses cannot be looked up again). When given, they replace the lookup of `ip`; the address still
     * gives the counters' keys (its /24, /64, /56, /48).
     */
    ipFacts: Type.Optional(
      Type.Object(
        {
          country: Type.Union([Type.String({ pattern: '^[A-Z]{2}$' }), Type.Null()]),
          asn: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
          hosting: Type.Boolean(),
          tor: Type.Boolean(),
          proxy: Type.Boolean(),
          vpn: Type.Boolean(),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * Optional: the level of the solved puzzle (audit exports carry it). Absent or null = unknown, credited at
     * any level, as for puzzles issued before sizes were signed (engine/decide.ts).
     */
    powLevel: Type.Optional(Type.Union([Type.Literal('normal'), Type.Literal('elevated'), Type.Literal('high'), Type.Null()])),
  },
  { additionalProperties: false },
);
export type TraceClient = Static<typeof TraceClientSchema>;

/**
 * `at`: ISO 8601 with zone, or epoch milliseconds. Either way the time must lie in [MIN_AT, MAX_AT]: from
 * 1970-01-01T00:00:00Z (epoch 0; no negative epochs) to 9999-12-31T23:59:59.999Z (the last time a 4-digit ISO
 * year can write). A time outside that range (1e308, 8640000000000001: beyond what a Date holds) is an
 * invalid line, so the replay and its timestamps never meet an invalid date.
 */
const At = Type.Union([Type.String({ maxLength: 40 }), Type.Number()]);
const ChannelSchema = Type.Union([Type.Literal('sms'), Type.Literal('whatsapp'), Type.Literal('voice'), Type.Literal('email')]);

const TraceSendSchema = Type.Object({
  at: At,
  type: Type.Literal('send'),
  /** A phone number; for the email channel an email address. */
  to: Type.String({ minLength: 1, maxLength: 254 }),
  channel: Type.Optional(ChannelSchema),
  locale: Type.Optional(NullableString(16)),
  defaultRegion: Type.Optional(Type.String({ pattern: '^[A-Z]{2}$' })),
  client: Type.Optional(TraceClientSchema),
  /** The live delivery failed (an audit export's `send.failed`): the replay fails it too, so nothing is counted as sent. */
  deliveryFailed: Type.Optional(Type.Boolean()),
});

const TraceCheckSchema = Type.Object({
  at: At,
  type: Type.Literal('check'),
  /** null in an audit export when the check named no known verification. */
  to: Type.Union([Type.String({ minLength: 1, maxLength: 254 }), Type.Null()]),
  channel: Type.Optional(ChannelSchema),
  /** `correct`, `wrong`, or the literal digits typed (a guess). */
  code: Type.String({ minLength: 1, maxLength: 64 }),
  // Strict like a send's client: a typo (`deviceID`) would silently drop the device from the check budgets.
  client: Type.Optional(Type.Object({ ip: Type.Optional(NullableString(64)), deviceId: Type.Optional(NullableString(128)) }, { additionalProperties: false })),
});

const AnyEventSchema = Type.Object({ at: At, type: Type.String({ minLength: 1, maxLength: 64 }) });

const checkSend = Compile(TraceSendSchema);
const checkCheck = Compile(TraceCheckSchema);
const checkAny = Compile(AnyEventSchema);

export type TraceSend = Static<typeof TraceSendSchema>;
export type TraceCheck = Static<typeof TraceCheckSchema>;

export type TraceLine =
  | { kind: 'send'; at: number; event: TraceSend }
  | { kind: 'check'; at: number; event: TraceCheck }
  /**
   * An operator's change of state in an audit export (`list.add`, `list.remove`, `pause`, `resume`): applied to
   * the replay's store, so the sends after it meet the lists and pauses the server's sends met; echoed as
   * `{"applied": type}`, or `{"ignored": type}` when its data cannot be applied (say, a masked number).
   */
  | { kind: 'state'; at: number; type: StateEventType; data: Record<string, unknown> }
  /** Another audit event type (quarantine.start, throttle.*, cancel …): echoed as `{"ignored": type}`. */
  | { kind: 'other'; at: number; type: string }
  | { kind: 'invalid'; message: string };

export type SendDecisionName = 'allow' | 'challenge' | 'block' | 'tarpit';
export type CheckResultName = 'approved' | 'denied' | 'expired' | 'locked' | 'not_found';

export type OutputLine =
  | { decision: SendDecisionName; reasons: string[]; score: number }
  | { result: CheckResultName }
  | { applied: StateEventType }
  | { ignored: string }
  | { error: 'invalid_line'; message: string };

export const STATE_EVENT_TYPES = ['list.add', 'list.remove', 'pause', 'resume', 'unlock'] as const;
export type StateEventType = (typeof STATE_EVENT_TYPES)[number];

/** The earliest and latest `at` accepted (epoch ms): 1970-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
export const MIN_AT = 0;
export const MAX_AT = 253_402_300_799_999;

function parseAt(at: string | number): number | null {
  // Only full timestamps with a zone: a bare date or local time would shift with the machine's zone.
  const ms = typeof at === 'number' ? at : parseIsoWithZone(at);
  return Number.isFinite(ms) && ms >= MIN_AT && ms <= MAX_AT ? ms : null;
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

/**
 * The first schema error of a line, in the trace's own terms: the allowed values of an enumeration
 * (`/client/formToken must be one of valid, invalid, expired, reused, missing` rather than the validator's
 * "must be equal to constant"), the missing or unknown fields by name.
 */
function firstError(v: { Errors(value: unknown): SchemaError[] }, value: unknown): string {
  const errors = v.Errors(value);
  const e = errors[0];
  if (!e) return 'invalid';
  const path = e.instancePath || '/';
  if (e.keyword === 'required') return `${path} misses ${(e.params.requiredProperties as string[] | undefined)?.join(', ') ?? 'a required field'}`;
  if (e.keyword === 'boolean' || e.keyword === 'additionalProperties') {
    const extra = errors.find((x) => x.keyword === 'additionalProperties');
    const names = (extra?.params.additionalProperties as string[] | undefined) ?? [];
    return `${extra?.instancePath || '/'} has unknown field${names.length === 1 ? '' : 's'} ${names.join(', ')}`;
  }
  // A union (literals, or a type or null): one error per branch at the same path, then an anyOf.
  if (errors.some((x) => x.keyword === 'anyOf' && x.instancePath === e.instancePath)) {
    // A branch of the right type that failed on something else (too long, below its minimum) says what is wrong.
    const within = errors.find((x) => x.instancePath === e.instancePath && !['const', 'type', 'anyOf'].includes(x.keyword));
    if (within) return `${path} ${within.message}`;
    const values: string[] = [];
    const types: string[] = [];
    for (const x of errors) {
      if (x.instancePath !== e.instancePath) continue;
      if (x.keyword === 'const') values.push(String(x.params.allowedValue));
      else if (x.keyword === 'type') (x.params.type === 'null' ? values : types).push(x.params.type === 'null' ? 'null' : `a ${String(x.params.type)}`);
    }
    // `valid, invalid, … or null`; `a number or null`.
    const all = [...types, ...values];
    if (types.length > 0 && values.length <= 1) return `${path} must be ${all.join(' or ')}`;
    if (all.length > 0) return `${path} must be ${all.length === 1 ? all[0] : `one of ${all.join(', ')}`}`;
  }
  if (e.keyword === 'const') return `${path} must be ${String(e.params.allowedValue)}`;
  return `${path} ${e.message}`;
}

/** Parse one non-empty trace line. */
const BAD_IP = '/client/ip must be an IPv4 or IPv6 address (or null)';

/** The server refuses a client IP that does not parse (400); a trace line carrying one is invalid. */
function validIp(ip: string | null | undefined): boolean {
  return ip === undefined || ip === null || ip.trim() === '' || parseIp(withoutPort(ip)).ok;
}

export function parseTraceLine(line: string): TraceLine {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return { kind: 'invalid', message: 'not JSON' };
  }
  if (!checkAny.Check(doc)) return { kind: 'invalid', message: firstError(checkAny, doc) };
  const at = parseAt(doc.at);
  if (at === null) return { kind: 'invalid', message: '/at must be an ISO 8601 timestamp with a zone, or epoch milliseconds, from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z' };
  if (doc.type === 'send') {
    if (!checkSend.Check(doc)) return { kind: 'invalid', message: firstError(checkSend, doc) };
    if (!validIp(doc.client?.ip)) return { kind: 'invalid', message: BAD_IP };
    return { kind: 'send', at, event: doc };
  }
  if (doc.type === 'check') {
    if (!checkCheck.Check(doc)) return { kind: 'invalid', message: firstError(checkCheck, doc) };
    if (!validIp(doc.client?.ip)) return { kind: 'invalid', message: BAD_IP };
    return { kind: 'check', at, event: doc };
  }
  if ((STATE_EVENT_TYPES as readonly string[]).includes(doc.type)) {
    const raw = (doc as { data?: unknown }).data;
    const data = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
    // An unlock names what it unlocked in the event itself (`to` or `ip`), as the export writes it.
    const target = doc.type === 'unlock' ? { to: (doc as { to?: unknown }).to ?? null, ip: (doc as { ip?: unknown }).ip ?? null } : {};
    return { kind: 'state', at, type: doc.type as StateEventType, data: { ...data, ...target } };
  }
  return { kind: 'other', at, type: doc.type };
}
