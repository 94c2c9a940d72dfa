/**
 * Request and response schemas (TypeBox → JSON Schema). Fastify validates requests with them and
 * @fastify/swagger turns the same objects into /openapi.json, so the document cannot drift from the code.
 */
import { Type } from 'typebox';
import { ClientEvidenceSchema } from '../signals/evidence.ts';
import { ERRORS } from '../service/errors.ts';

/** What /v1/challenges answers, and what a challenge_required error carries as `challenge`. */
export const ChallengeView = Type.Object(
  {
    formToken: Type.String({ description: 'Signed one-time form token, bound to the client address and user agent' }),
    issuedAt: Type.Integer({ description: 'Epoch ms' }),
    expiresAt: Type.Integer({ description: 'Epoch ms' }),
    pow: Type.Object(
      { algorithm: Type.String(), challenge: Type.String(), maxnumber: Type.Integer(), salt: Type.String(), signature: Type.String() },
      { description: 'ALTCHA proof-of-work challenge', additionalProperties: true },
    ),
    powDifficulty: Type.Integer({ description: 'The puzzle size (maxnumber): higher when traffic is surging or the client is escalated' }),
  },
  { additionalProperties: true },
);

export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        // The closed set of codes (src/service/errors.ts), as an enum of strings.
        code: Type.Unsafe<string>({ type: 'string', enum: Object.keys(ERRORS) }),
        message: Type.String(),
        reasons: Type.Optional(Type.Array(Type.String())),
        challenge: Type.Optional(ChallengeView),
        attemptsLeft: Type.Optional(Type.Integer()),
        verificationId: Type.Optional(Type.String({ description: 'On a 429 for the cooldown: the pending verification; on a 502: the verification whose delivery failed' })),
        details: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()))),
      },
      { additionalProperties: true },
    ),
  },
  { $id: 'Error', description: 'Every error has this shape.' },
);

export const ChannelSchema = Type.Union([Type.Literal('sms'), Type.Literal('whatsapp'), Type.Literal('voice'), Type.Literal('email')]);

/** The end user's evidence, forwarded by the integrator's backend (or filled by widget.js). */
export const ClientEvidence = ClientEvidenceSchema;

export const SendBody = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 254, description: 'Phone number as typed, normalised to E.164; for the email channel an email address, normalised to its canonical form (docs/verification.md).' }),
    channel: Type.Optional(ChannelSchema),
    locale: Type.Optional(Type.String({ maxLength: 16, pattern: '^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$' })),
    defaultRegion: Type.Optional(Type.String({ pattern: '^[A-Z]{2}$', description: 'Region for numbers typed in national format.' })),
    client: Type.Optional(ClientEvidence),
  },
  { additionalProperties: false },
);

export const VerificationView = Type.Object({
  id: Type.String(),
  to: Type.String(),
  channel: ChannelSchema,
  status: Type.Union(['pending', 'approved', 'canceled', 'failed', 'locked', 'expired'].map((s) => Type.Literal(s)), { description: 'A pending verification past its expiresAt reads as expired' }),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  resendAfter: Type.String({ format: 'date-time' }),
  attemptsLeft: Type.Integer(),
  sends: Type.Integer(),
});

export const CheckBody = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    to: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'The destination (with channel, for the email channel an address), instead of id.' })),
    channel: Type.Optional(ChannelSchema),
    code: Type.String({ minLength: 1, maxLength: 64 }),
    client: Type.Optional(
      Type.Object(
        { ip: Type.Optional(Type.String({ maxLength: 64 })), deviceId: Type.Optional(Type.String({ maxLength: 128 })) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const CheckResponse = Type.Object({
  status: Type.Union([Type.Literal('approved'), Type.Literal('denied')]),
  attemptsLeft: Type.Optional(Type.Integer()),
  /** The verification the code was compared with, as it stands after this check (by "to": its id and channel). */
  verification: VerificationView,
});

/** For GET routes that take no query parameters: an unknown one is a mistake (a typo of a filter), answered 400. */
export const NoQuery = Type.Object({}, { additionalProperties: false });

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

const RETRY_AFTER = { 'Retry-After': { type: 'integer', description: 'Seconds to wait before trying again' } };

/**
 * Error answers of a route, plus those any route can give: 503 (overload, store outage) and 500. 429 and 503
 * declare their Retry-After header.
 */
export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries([...new Set([...statuses, 503, 500])].map((s) => [s, s === 429 || s === 503 ? { ...ErrorBody, headers: RETRY_AFTER } : ErrorBody]));

/**
 * A JSON object whose fields are documented elsewhere (`description` says where) and serialised as they are:
 * as a response schema it declares the shape without letting the serialiser drop or coerce a field.
 */
export const Loose = (description: string) => Type.Object({}, { additionalProperties: true, description });

/** Statuses any route can answer whatever it declares, by what it has (installDeclaredErrors). */
export function implicitErrorStatuses(route: { authenticated: boolean; body: boolean; params: boolean; query: boolean }): number[] {
  const out: number[] = [];
  // A bad key, a key without the scope, and 20 failed keys from one address in 10 minutes (http/auth.ts).
  if (route.authenticated) out.push(401, 403, 429);
  // Schema validation of the body, the path parameters or the query; a body too large or not JSON.
  if (route.body || route.params || route.query) out.push(400);
  if (route.body) out.push(413, 415);
  return out;
}

/** A response that is not JSON (an asset, the metrics text): its media type, for the OpenAPI document. */
export const asText = (mediaType: string, description: string) => ({ description, content: { [mediaType.split(';')[0]!.trim()]: { schema: { type: 'string' } } } });

