/**
 * The bot-filtering evidence layer, end to end:
 * - `issueChallenge` backs `POST /v1/challenges` (called by the browser widget): a form token plus a PoW
 *   challenge bound to it.
 * - `verifyClientEvidence` turns the `client` block of `POST /v1/verifications` (forwarded by the
 *   customer's backend) into `VerifiedEvidence`, the verified outcomes the risk engine scores and the
 *   replay format records.
 *
 * Nothing here decides allow/deny; it only says what is true about the request.
 */
import { Type, type Static } from 'typebox';
import type { CaptchaResult, CaptchaVerifier } from './captcha.ts';
import {
  type FormTokenOutcome,
  type OnceStore,
  type Secrets,
  formTokenOutcome,
  issueFormToken,
  verifyFormToken,
} from './form-token.ts';
import { type PowChallenge, type PowLevel, type PowOutcome, createPowChallenge, powDifficulty, powKeys, verifyPow } from './pow.ts';
import { DEFAULT_MIN_HUMAN_MS, classifyUserAgent, effectiveElapsedMs, invisibleSignals, isHeadless } from './invisible.ts';

// ---- input ----

export const ClientEvidenceSchema = Type.Object(
  {
    ip: Type.Optional(Type.String({ maxLength: 64, description: "The end user's IP address (not your server's): the address the form token was bound to" })),
    userAgent: Type.Optional(Type.String({ maxLength: 512, description: "The end user's User-Agent header, exactly as sent when the form token was fetched" })),
    deviceId: Type.Optional(Type.String({ maxLength: 128, description: "A stable device id: the widget's fingerprint, or an app's per-install id (docs/native-apps.md)" })),
    formToken: Type.Optional(Type.String({ maxLength: 4096, description: 'The formToken of POST /v1/challenges (or of a challenge_required error), as received' })),
    pow: Type.Optional(Type.String({ maxLength: 4096, description: 'Base64 of the JSON {algorithm, challenge, number, salt, signature}: the solved proof-of-work of the same challenge (docs/native-apps.md)' })),
    captchaToken: Type.Optional(Type.String({ maxLength: 4096, description: "The configured CAPTCHA provider's response token" })),
    /** The `otps_hp` field's text as the widget sends it (non-empty = filled), or a backend's own true/false. */
    honeypot: Type.Optional(Type.Union([Type.String({ maxLength: 1024 }), Type.Boolean()])),
    /** Milliseconds; a year is far beyond any form token's life, anything bigger is garbage. */
    elapsedMs: Type.Optional(Type.Number({ minimum: 0, maximum: 31_536_000_000 })),
    automation: Type.Optional(
      Type.Object(
        {
          webdriver: Type.Optional(Type.Boolean()),
          headless: Type.Optional(Type.Boolean()),
          flags: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 })),
        },
        { additionalProperties: false },
      ),
    ),
    acceptLanguage: Type.Optional(Type.String({ maxLength: 256, description: "The end user's Accept-Language header (an app: its preferred languages)" })),
  },
  { additionalProperties: false },
);

export type ClientEvidence = Static<typeof ClientEvidenceSchema>;

// ---- output ----

export interface VerifiedEvidence {
  formToken: FormTokenOutcome;
  pow: PowOutcome;
  captcha: CaptchaResult['outcome'];
  honeypot: boolean;
  /** See invisible.ts `effectiveElapsedMs`: the smaller of client-reported and signed server-measured time. */
  elapsedMs: number | null;
  headless: boolean;
  scriptUserAgent: boolean;
  /** Sanitised device id (FingerprintJS visitorId from the widget), or null. */
  deviceId: string | null;
  acceptLanguage: string | null;
  /** The level of the solved puzzle, from its signed size; null when not solved or issued without it. */
  powLevel: PowLevel | null;
  /**
   * Why, in short strings, for audit events and debugging: `formToken` (e.g. `wrong_ip`), `pow`,
   * `captcha`, `captchaScore`, `signals` (comma-separated invisible signal names), `automationFlags`, ...
   */
  details: Record<string, string>;
}

export interface EvidenceContext {
  secrets: Secrets;
  store: OnceStore;
  now: number;
  captcha?: CaptchaVerifier;
  /**
   * The end user's IP and User-Agent to check the form token against. Default to `input.ip` /
   * `input.userAgent` (the customer's backend reports them in the client block).
   */
  ip?: string | null;
  userAgent?: string | null;
  /** false = check without burning single-use tokens (previews, dry runs). CAPTCHA providers consume theirs regardless. */
  consume: boolean;
  minHumanMs?: number;
}

/** Device ids are opaque to us, but they end up in lists and logs: printable ASCII without spaces only. */
const DEVICE_ID_RE = /^[\x21-\x7e]{1,128}$/;

/**
 * The device id a request's counters and lists use: the client's, trimmed, or null when absent or not
 * printable ASCII. It is the `deviceId` every `verifyEvidence` returns; the send path computes it before the
 * evidence is verified so that the observation call does not wait for the evidence.
 */
export function deviceIdOf(id: string | null | undefined): string | null {
  if (typeof id !== 'string') return null;
  const t = id.trim();
  return DEVICE_ID_RE.test(t) ? t : null;
}

function sanitizeText(v: string | undefined, max: number): string | null {
  if (typeof v !== 'string') return null;
  // Control characters have no business in a header value and would garble logs.
  const t = v.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, max);
  return t === '' ? null : t;
}

export async function verifyClientEvidence(input: ClientEvidence, ctx: EvidenceContext): Promise<VerifiedEvidence> {
  const ip = ctx.ip ?? input.ip ?? null;
  const userAgent = ctx.userAgent ?? input.userAgent ?? null;
  const details: Record<string, string> = {};
  const once = ctx.consume ? { consume: true as const, store: ctx.store } : { consume: false as const, store: ctx.store };

  // Independent checks run concurrently: the CAPTCHA round trip dominates and the rest is local.
  const [ft, pow, captcha] = await Promise.all([
    verifyFormToken(ctx.secrets, input.formToken, { ip, userAgent, now: ctx.now, ...once }),
    verifyPow(powKeys(ctx.secrets), input.pow, { now: ctx.now, ...once }),
    verifyCaptcha(ctx.captcha, input.captchaToken, ip),
  ]);

  const formToken = formTokenOutcome(ft.outcome);
  if (ft.outcome !== formToken) details.formToken = ft.outcome;

  // The PoW challenge carries the jti of the form token it was issued with (`ft` param). A solution for
  // another session's challenge is still work done, but pairing it with this token is not how our
  // widget behaves, so it does not count. Nor does one sent without its token (missing or forged): the
  // token is what binds the session to the browser's IP and User-Agent, so a puzzle without it could be
  // solved anywhere and spent anywhere, for the price of the missing token's few points.
  let powOutcome = pow.outcome;
  if (pow.detail) details.pow = pow.detail;
  if (powOutcome === 'solved' && pow.params?.ft !== undefined && pow.params.ft !== ft.jti) {
    powOutcome = 'invalid';
    details.pow = ft.jti === undefined ? 'form_token_missing' : 'form_token_mismatch';
  }

  if (captcha.detail) details.captcha = captcha.detail;
  if (captcha.score !== undefined) details.captchaScore = String(captcha.score);

  const acceptLanguage = sanitizeText(input.acceptLanguage, 256);
  const signals = invisibleSignals({
    now: ctx.now,
    honeypot: input.honeypot ?? null,
    elapsedMs: input.elapsedMs ?? null,
    formTokenIssuedAt: ft.startedAt ?? ft.issuedAt ?? null,
    minHumanMs: ctx.minHumanMs ?? DEFAULT_MIN_HUMAN_MS,
    automation: input.automation ?? null,
    userAgent,
    acceptLanguage,
  });
  if (signals.length > 0) {
    details.signals = signals.map((s) => (s.detail ? `${s.signal}:${s.detail}` : s.signal)).join(',');
  }
  const flags = input.automation?.flags;
  if (flags && flags.length > 0) details.automationFlags = flags.slice(0, 16).map((f) => f.slice(0, 64)).join(',');

  const deviceId = deviceIdOf(input.deviceId);
  if (input.deviceId !== undefined && deviceId === null) details.deviceId = 'rejected';

  return {
    formToken,
    pow: powOutcome,
    captcha: captcha.outcome,
    honeypot: signals.some((s) => s.signal === 'honeypot_filled'),
    elapsedMs: effectiveElapsedMs(input.elapsedMs, ft.startedAt ?? ft.issuedAt, ctx.now),
    headless: isHeadless(signals),
    scriptUserAgent: classifyUserAgent(userAgent).script !== null,
    deviceId,
    acceptLanguage,
    powLevel: powOutcome === 'solved' ? powLevelOf(pow.params?.d) : null,
    details,
  };
}

async function verifyCaptcha(verifier: CaptchaVerifier | undefined, token: string | undefined, ip: string | null): Promise<CaptchaResult> {
  if (token === undefined || token === '') return { outcome: 'missing' };
  // A token we cannot check proves nothing; say so instead of pretending it failed.
  if (!verifier) return { outcome: 'missing', detail: 'not_configured' };
  return verifier.verify(token, ip);
}

/** The level a signed puzzle size belongs to; null when the puzzle carries none (issued before it was signed). */
export function powLevelOf(size: string | undefined): PowLevel | null {
  const n = Number(size);
  if (size === undefined || !Number.isSafeInteger(n) || n <= 0) return null;
  return n >= powDifficulty('high') ? 'high' : n >= powDifficulty('elevated') ? 'elevated' : 'normal';
}

// ---- challenge issuance ----

export interface IssuedChallenge {
  formToken: string;
  jti: string;
  issuedAt: number;
  expiresAt: number;
  pow: PowChallenge;
  powDifficulty: number;
}

/**
 * Everything `POST /v1/challenges` returns (drop `jti` from the response if you like; it is also inside
 * the token). `difficulty` is a level or an explicit maxnumber.
 */
export async function issueChallenge(opts: {
  secrets: Secrets;
  ip?: string | null;
  userAgent?: string | null;
  now: number;
  difficulty?: PowLevel | number;
  ttlMs?: number;
  origin?: string;
  /** When the person started the form (a challenge_required answer: see the form token's `st`). */
  startedAt?: number;
}): Promise<IssuedChallenge> {
  const difficulty = typeof opts.difficulty === 'number' ? opts.difficulty : powDifficulty(opts.difficulty ?? 'normal');
  const ft = issueFormToken(opts.secrets, {
    ip: opts.ip ?? null,
    userAgent: opts.userAgent ?? null,
    now: opts.now,
    ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
    ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
    ...(opts.startedAt !== undefined ? { startedAt: opts.startedAt } : {}),
  });
  const [powKey = ''] = powKeys(opts.secrets);
  // Same lifetime as the form token, and bound to it through the `ft` param (see verifyClientEvidence).
  const { expiresAt: _sameAsToken, ...pow } = await createPowChallenge(powKey, {
    difficulty,
    now: opts.now,
    ttlMs: ft.expiresAt - opts.now,
    // The puzzle's size rides in the signed salt: a solution proves which size was solved (powLevelOf).
    params: { ft: ft.jti, d: String(difficulty) },
  });
  return { formToken: ft.token, jti: ft.jti, issuedAt: ft.issuedAt, expiresAt: ft.expiresAt, pow, powDifficulty: difficulty };
}
