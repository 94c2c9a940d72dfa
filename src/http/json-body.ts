/**
 * The only body parser: `application/json` in UTF-8, nested no deeper than any real request needs.
 *
 * Fastify's own parser stays in charge of the JSON itself (and refuses `__proto__` and
 * `constructor.prototype` keys); in front of it:
 *  - bytes that are not valid UTF-8 are refused instead of silently becoming U+FFFD, so the string we
 *    validate is the string the client sent;
 *  - a declared charset other than UTF-8 is refused (RFC 8259 §8.1: JSON between systems is UTF-8), and so is
 *    a content coding (gzip, br…): nothing here inflates a body;
 *  - nesting deeper than MAX_JSON_DEPTH is refused before JSON.parse, so recursive code after it (schema
 *    validation, policy merging) never sees a pathological document. The scan is linear and allocation-free.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../service/errors.ts';

/** Our deepest legitimate body (a policy document) nests 5 levels; 32 leaves room and stops stack games. */
export const MAX_JSON_DEPTH = 32;

const CHARSET_RE = /;\s*charset\s*=\s*"?([^";\s]+)"?/i;

/** True when brackets outside strings nest deeper than `max`. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

export function installJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    // A compressed body would be read as plain JSON (nothing here inflates it): refuse the coding (RFC 9110 §8.4.1).
    const coding = req.headers['content-encoding']?.trim().toLowerCase();
    if (coding !== undefined && coding !== '' && coding !== 'identity') {
      return done(new ApiError('unsupported_media_type', { message: `Content-Encoding ${coding} is not supported: send the body uncompressed.` }), undefined);
    }
    const charset = CHARSET_RE.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return done(new ApiError('unsupported_media_type', { message: 'Send the body as application/json in UTF-8.' }), undefined);
    }
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(new ApiError('invalid_request', { message: 'The request body is not valid UTF-8.' }), undefined);
    }
    if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
      return done(new ApiError('invalid_request', { message: `The request body nests deeper than ${MAX_JSON_DEPTH} levels.` }), undefined);
    }
    // No body under a JSON content type (many HTTP clients send the header on every request, a POST …/cancel or
    // a DELETE included): no body, which routes that need one refuse by their schema.
    if (text.trim() === '') return done(null, undefined);
    parseJson(req, text, done);
  });
}
