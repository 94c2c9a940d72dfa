/**
 * Trace lines and replay options for tests that drive the real service through the replay driver
 * (`Replayer`): the server's own context and VerificationService on a memory store, time from each line.
 */

/**
 * A deployment with a CAPTCHA provider (the rules only a CAPTCHA clears are enforced only there; the replay
 * never calls it: the trace says whether a client passed one). Loopback address, never used.
 */
export const WITH_CAPTCHA = { config: { captcha: { provider: 'turnstile', secret: 'test-never-called', verifyUrl: 'http://127.0.0.1:9/' } } };
export const T0 = Date.parse('2026-11-23T00:00:00.000Z');
export const MIN = 60_000;
export const H = 60 * MIN;
export const iso = (ms: number): string => new Date(ms).toISOString();
export const UA = 'Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36';

/** A browser running the widget: valid form token, solved proof-of-work, human timing. */
export const browser = (ip: string, deviceId: string, acceptLanguage = 'id-ID') => ({ ip, userAgent: UA, deviceId, formToken: 'valid', pow: 'solved', captcha: 'missing', honeypot: false, elapsedMs: 6000, headless: false, acceptLanguage });
export const send = (at: number, to: string, client: Record<string, unknown>): string => JSON.stringify({ at: iso(at), type: 'send', to, channel: 'sms', client });
