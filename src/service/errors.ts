/**
 * The closed set of error codes clients can receive, with their HTTP status and default message.
 * The service throws `ApiError`; one handler in `src/http/errors.ts` turns it into
 * `{ "error": { "code", "message", ... } }`. Nothing else reaches the client.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is not valid.' },
  invalid_phone_number: { status: 422, message: 'The phone number is not valid.' },
  invalid_email_address: { status: 422, message: 'The email address is not valid.' },
  invalid_code: { status: 422, message: 'The code must be the digits that were sent.' },
  channel_disabled: { status: 422, message: 'This channel is not enabled.' },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  request_timeout: { status: 408, message: 'The request took too long to arrive.' },
  not_found: { status: 404, message: 'Not found.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  expectation_failed: { status: 417, message: 'Only "Expect: 100-continue" is supported.' },
  verification_not_found: { status: 404, message: 'No such verification.' },
  verification_expired: { status: 410, message: 'The verification has expired. Request a new code.' },
  verification_locked: { status: 423, message: 'Too many attempts for this verification. Request a new code later.' },
  verification_not_pending: { status: 409, message: 'The verification is no longer pending.' },
  conflict: { status: 409, message: 'Another change was saved at the same moment; read the current state and try again.' },
  rate_limited: { status: 429, message: 'Too many requests. Please try again in a few minutes.' },
  challenge_required: { status: 403, message: 'Complete the challenge and try again.' },
  request_blocked: { status: 403, message: 'This request cannot be completed.' },
  delivery_failed: { status: 502, message: 'The code could not be delivered. Try again later.' },
  unauthorized: { status: 401, message: 'A valid API key is required.' },
  forbidden: { status: 403, message: 'This API key is not allowed to do that.' },
  unavailable: { status: 503, message: 'The service is temporarily unavailable. Try again shortly.' },
  internal: { status: 500, message: 'Something went wrong on our side.' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields merged into the error body (reasons, challenge, attemptsLeft…). */
  readonly extra: Record<string, unknown>;
  /** Seconds for the Retry-After header. */
  readonly retryAfter: number | null;

  constructor(code: ErrorCode, opts: { message?: string; extra?: Record<string, unknown>; retryAfter?: number | null } = {}) {
    // No stack trace: an ApiError is an answer to the client (every refused send is one), never logged with
    // its stack, and capturing one was 3.6 % of a replay's CPU (docs/benchmarks.md).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(opts.message ?? ERRORS[code].message);
    Error.stackTraceLimit = limit;
    this.name = 'ApiError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.extra = opts.extra ?? {};
    this.retryAfter = opts.retryAfter ?? null;
  }
}
