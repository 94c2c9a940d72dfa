/**
 * Server-side verification of third-party CAPTCHA tokens: Google reCAPTCHA (v2 and v3), hCaptcha and
 * Cloudflare Turnstile. All three use the same "siteverify" shape: POST form-encoded `secret`, `response`
 * and optional `remoteip`, get JSON `{ success, hostname, 'error-codes', ... }` back.
 *
 * Outcomes:
 * - `passed`  the provider vouched for the token and our extra checks (score, hostname, action) hold.
 * - `failed`  the token is bad, reused, expired, or below our bar.
 * - `missing` no token was given (nothing was sent to the provider).
 * - `error`   we could not get a verdict: network error, timeout, non-2xx, unreadable JSON, or the provider
 *             says *our* configuration is wrong (bad secret). The caller decides fail-open vs fail-closed;
 *             the default policy treats it as "not passed". Misconfiguration is an `error`, not a `failed`,
 *             so operators see it as an outage rather than as a wave of bots.
 */
import { Type, type Static } from 'typebox';

export type CaptchaProvider = 'recaptcha' | 'hcaptcha' | 'turnstile';
export type CaptchaOutcome = 'passed' | 'failed' | 'missing' | 'error';

export const CaptchaConfigSchema = Type.Object(
  {
    provider: Type.Union([Type.Literal('recaptcha'), Type.Literal('hcaptcha'), Type.Literal('turnstile')]),
    secret: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Defaults to the provider's official endpoint; tests point it at 127.0.0.1. */
    verifyUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://' })),
    /** reCAPTCHA v3 only: scores below this fail (Google suggests 0.5). v2 responses carry no score. */
    minScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /**
     * hCaptcha Enterprise only: its `score` is a *risk* score (higher = more likely a bot), the opposite of
     * reCAPTCHA's, so it gets its own ceiling instead of reusing `minScore`.
     */
    maxRiskScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /**
     * When set, the provider-reported hostname must equal it (case-insensitive), or one of them: a site and its
     * app's WebView page, or several sign-in sites on one key.
     */
    expectedHostname: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 253 }), Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { minItems: 1, maxItems: 32 })]),
    ),
    /**
     * reCAPTCHA Android keys report the app's package name (`apk_package_name`) instead of a hostname: when set,
     * such a token must name one of these. Kept apart from host names: `com.example.shop` is a DNS name too, and
     * a web token from a site of that name must not pass as the app's.
     */
    expectedPackageName: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: 32 })]),
    ),
    /** reCAPTCHA v3 / Turnstile: when set, the reported `action` must equal it. */
    expectedAction: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000 })),
  },
  { additionalProperties: false },
);

export type CaptchaConfig = Static<typeof CaptchaConfigSchema>;

export interface CaptchaResult {
  outcome: CaptchaOutcome;
  /** Short machine-readable reason: provider error codes, `low_score`, `wrong_hostname`, `timeout`, ... */
  detail?: string;
  score?: number;
}

export interface CaptchaVerifier {
  readonly provider: CaptchaProvider;
  verify(token: string | null | undefined, remoteIp?: string | null): Promise<CaptchaResult>;
}

export const CAPTCHA_VERIFY_URLS: Record<CaptchaProvider, string> = {
  recaptcha: 'https://www.google.com/recaptcha/api/siteverify',
  hcaptcha: 'https://api.hcaptcha.com/siteverify',
  turnstile: 'https://challenges.cloudflare.com/turnstile/v0/siteverify',
};

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_TOKEN_LENGTH = 4096;

/** Provider error codes that mean our own setup is wrong (not the visitor's fault). */
const CONFIG_ERROR_CODES = new Set([
  'missing-input-secret',
  'invalid-input-secret',
  'sitekey-secret-mismatch',
  // Turnstile: the provider itself failed; retrying may help, the visitor did nothing wrong.
  'internal-error',
]);

export interface SiteverifyResponse {
  success?: unknown;
  hostname?: unknown;
  /** reCAPTCHA Android keys: the app's package name, in place of a hostname. */
  apk_package_name?: unknown;
  score?: unknown;
  action?: unknown;
  'error-codes'?: unknown;
}

export function createCaptchaVerifier(cfg: CaptchaConfig): CaptchaVerifier {
  const url = cfg.verifyUrl ?? CAPTCHA_VERIFY_URLS[cfg.provider];
  const timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  async function verify(token: string | null | undefined, remoteIp?: string | null): Promise<CaptchaResult> {
    if (token === undefined || token === null || token.trim() === '') return { outcome: 'missing' };
    // Real tokens are well below this (Turnstile documents 2048); don't ship megabytes to the provider.
    if (token.length > MAX_TOKEN_LENGTH) return { outcome: 'failed', detail: 'token_too_long' };

    const form = new URLSearchParams({ secret: cfg.secret, response: token });
    if (remoteIp) form.set('remoteip', remoteIp);

    let text: string;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        // Covers the whole exchange, body included: a provider that stalls mid-body still times out.
        signal: AbortSignal.timeout(timeoutMs),
        // A siteverify endpoint never redirects; following one could leak the secret elsewhere.
        redirect: 'error',
      });
      if (!res.ok) {
        await res.body?.cancel();
        return { outcome: 'error', detail: `http_${res.status}` };
      }
      text = await res.text();
    } catch (err) {
      const name = (err as { name?: string } | null)?.name;
      return { outcome: 'error', detail: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network' };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { outcome: 'error', detail: 'bad_response' };
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return { outcome: 'error', detail: 'bad_response' };
    return judge(cfg, body as SiteverifyResponse);
  }

  return { provider: cfg.provider, verify };
}

/** Turns a provider answer into an outcome. Pure, exported for tests of edge cases. */
export function judge(cfg: CaptchaConfig, body: SiteverifyResponse): CaptchaResult {
  const codes = Array.isArray(body['error-codes'])
    ? body['error-codes'].filter((c): c is string => typeof c === 'string').slice(0, 8)
    : [];
  const score = typeof body.score === 'number' && Number.isFinite(body.score) ? body.score : undefined;
  const withScore = <T extends CaptchaResult>(r: T): T => (score === undefined ? r : { ...r, score });

  if (body.success !== true) {
    if (codes.some((c) => CONFIG_ERROR_CODES.has(c))) return { outcome: 'error', detail: codes.join(',') };
    return withScore({ outcome: 'failed', detail: codes.length > 0 ? codes.join(',') : 'not_success' });
  }
  const listOf = (v: string | string[] | undefined) => (v === undefined ? null : (Array.isArray(v) ? v : [v]).map((h) => h.toLowerCase()));
  const hosts = listOf(cfg.expectedHostname);
  const packages = listOf(cfg.expectedPackageName);
  if (typeof body.apk_package_name === 'string') {
    // An Android app's token: judged by its package name only (a host name list does not apply to it).
    if (hosts !== null || packages !== null) {
      if (packages === null || !packages.includes(body.apk_package_name.toLowerCase())) return withScore({ outcome: 'failed', detail: 'wrong_package_name' });
    }
  } else if (hosts !== null || packages !== null) {
    // A web token: judged by its host name; with only package names configured, a web token is not expected.
    const host = typeof body.hostname === 'string' ? body.hostname.toLowerCase() : '';
    if (hosts === null || !hosts.includes(host)) return withScore({ outcome: 'failed', detail: 'wrong_hostname' });
  }
  if (cfg.expectedAction !== undefined && cfg.provider !== 'hcaptcha') {
    // A token without the expected action (or with another one) was minted for a different form or
    // integration of the same site key; accepting it would let one weak page feed tokens to another.
    if (body.action !== cfg.expectedAction) return withScore({ outcome: 'failed', detail: 'wrong_action' });
  }
  if (cfg.provider === 'recaptcha' && cfg.minScore !== undefined && score !== undefined && score < cfg.minScore) {
    return withScore({ outcome: 'failed', detail: 'low_score' });
  }
  if (cfg.provider === 'hcaptcha' && cfg.maxRiskScore !== undefined && score !== undefined && score > cfg.maxRiskScore) {
    return withScore({ outcome: 'failed', detail: 'high_risk_score' });
  }
  return withScore({ outcome: 'passed' });
}
