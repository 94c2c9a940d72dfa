/**
 * Text no store can keep is refused at the door (400), not half-way through a request.
 *
 * JSON escapes can spell characters that are valid in a JavaScript string but not in PostgreSQL's text and
 * json columns: U+0000 (`\u0000`) and UTF-16 surrogates without their pair (`\ud800`). Accepted, they failed
 * the PostgreSQL store with a 500 — after the message had gone out, the check had approved, or the pause was
 * in force, with the audit event lost (a hostile-input review found it on every write route). SQLite and
 * Redis keep such strings, so a deployment would behave differently by store; nothing legitimate sends them.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../service/errors.ts';

/** U+0000, or a high surrogate not followed by a low one, or a low one not preceded by a high one. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Where the first unstorable string (or object key) is in `value` (`/client/ip`, `/` for itself); null when none. */
function unstorableTextAt(value: unknown, path = '', depth = 0): string | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path || '/' : null;
  // Bodies are nested 32 levels at most (json-body.ts); deeper values come from nowhere a client reaches.
  if (value === null || typeof value !== 'object' || depth > 64) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = unstorableTextAt(value[i], `${path}/${i}`, depth + 1);
      if (at !== null) return at;
    }
    return null;
  }
  for (const [k, v] of Object.entries(value)) {
    if (UNSTORABLE.test(k)) return `${path}/${k.replace(UNSTORABLE, '?')}`;
    const at = unstorableTextAt(v, `${path}/${k}`, depth + 1);
    if (at !== null) return at;
  }
  return null;
}

/** Throws 400 `invalid_request` naming the field (`body.client.ip`, as other messages name fields) when `value` holds such text. */
export function assertStorableText(part: string, value: unknown): void {
  const at = unstorableTextAt(value);
  if (at === null) return;
  const where = at === '/' ? part : `${part}${at.replace(/\//g, '.')}`;
  throw new ApiError('invalid_request', {
    message: `${where} contains a NUL character or an unpaired UTF-16 surrogate (\\u0000, \\ud800 …), which cannot be stored.`,
  });
}

/** Refuse such text in the path parameters, the query string and the parsed body of every route. */
export function installStorableTextCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    assertStorableText('params', req.params);
    assertStorableText('querystring', req.query);
    // Raw bodies (signed receipts) are checked where their route parses them.
    if (!Buffer.isBuffer(req.body)) assertStorableText('body', req.body);
  });
}
