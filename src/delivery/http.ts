/**
 * The one outbound HTTP path shared by the HTTP senders (webhook, Twilio).
 *
 * It turns every way a request can end (response, timeout, caller abort, network error) into a typed
 * value, so sender code is a plain `switch` and nothing can throw past it.
 */
import { SenderConfigError } from './sender.ts';

export const DEFAULT_TIMEOUT_MS = 5_000;

/** Responses larger than this are truncated: we only ever need an id or an error message from them. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export type HttpOutcome =
  | { kind: 'response'; status: number; text: string }
  | { kind: 'timeout' }
  | { kind: 'aborted' }
  | { kind: 'network'; message: string };

export interface PostOptions {
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

export async function postOnce(url: string, opts: PostOptions): Promise<HttpOutcome> {
  if (opts.signal?.aborted) return { kind: 'aborted' };
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: opts.headers,
      body: opts.body,
      signal,
      // A 307/308 would replay the body (which contains the code) to wherever the Location points.
      // Never follow: a redirect is reported as a failure and the operator fixes the URL.
      redirect: 'manual',
    });
    const text = await readCapped(res);
    return { kind: 'response', status: res.status, text };
  } catch (err) {
    // Caller abort wins over timeout: a cancelled request must not be retried.
    if (opts.signal?.aborted) return { kind: 'aborted' };
    if (timeout.aborted) return { kind: 'timeout' };
    return { kind: 'network', message: describeNetworkError(err) };
  }
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < MAX_RESPONSE_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } finally {
    // Releases the connection even when we stopped early on an oversized body.
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8');
}

/** undici hides the useful part (ECONNREFUSED, ENOTFOUND...) in `cause`. */
function describeNetworkError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause && typeof cause === 'object' && 'code' in cause && typeof cause.code === 'string') {
      return cause.code;
    }
    return err.message;
  }
  return String(err);
}

/** Provider HTTP status → should we try again? 408/429 and 5xx are transient; other 4xx are ours. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Keep reasons short: they are stored on the verification and land in logs. */
export function clip(text: string, max = 200): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Startup-time URL check so a typo fails at boot, not on the first user's code. */
export function validateHttpUrl(raw: string, what: string, senderName: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SenderConfigError(`${what} is not a valid URL`, senderName);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SenderConfigError(`${what} must be http(s), got ${url.protocol}`, senderName);
  }
  // fetch refuses URLs with embedded credentials; say so now rather than fail every send.
  if (url.username !== '' || url.password !== '') {
    throw new SenderConfigError(`${what} must not contain credentials`, senderName);
  }
  return url;
}
