/**
 * Property-based fuzzing of the HTTP layer against a running server: arbitrary methods, paths (known
 * routes, their spellings and garbage), headers, content types and bodies (arbitrary JSON with hostile
 * keys, raw bytes, near-valid requests with arbitrary field values). Whatever comes in: no 5xx, every error
 * in the one error shape, and the server still answers afterwards.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { anySpelling } from './spellings.ts';

const PATHS = [
  '/v1/verifications',
  '/v1/verifications/check',
  '/v1/verifications/vf_x',
  '/v1/verifications/vf_x/cancel',
  '/v1/challenges',
  '/v1/admin/policy',
  '/v1/admin/policy/validate',
  '/v1/admin/lists',
  '/v1/admin/lists/le_x',
  '/v1/admin/events',
  '/v1/admin/quarantines',
  '/v1/admin/pause',
  '/demo/api/send',
  '/demo/api/check',
  '/dashboard/api/login',
  '/v1/receipts/webhook/main',
  '/metrics',
  '/healthz',
  '/openapi.json',
];
const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'to', 'code', 'id', 'client', 'ip', 'channel', 'toString', 'hasOwnProperty', '$gt', ''];

describe('HTTP layer, property-based', () => {
  let t: TestApp;
  before(async () => {
    // Random X-Forwarded-For per request (127.0.0.1 is a trusted proxy) spreads the per-address limits, so
    // requests keep reaching the handlers instead of all stopping at the failed-authentication limit.
    t = await startTestApp({ config: { server: { trustedProxies: ['127.0.0.1/32'] } } });
  });
  after(async () => t.close());

  const keyArb = fc.constantFrom<'verify' | 'admin' | 'none' | 'garbage'>('verify', 'admin', 'none', 'garbage');
  const pathArb = fc.oneof(
    fc.constantFrom(...PATHS),
    fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom('/', '//', '%2F', '%00', '?', '?x=%ZZ', '/..', '/%2e%2e', ';', '#', '%', '%E0%A4%A')).map(([p, s]) => p + s),
    fc.string({ unit: fc.constantFrom(...'/abcdeimnorstvxy0123456789%._-?=&;'), maxLength: 60 }).map((s) => `/${s}`),
  );
  const jsonArb = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 2 }), tie('object'), fc.array(tie('value'), { maxLength: 4 })),
    object: fc.dictionary(fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 5 }),
  })).value;
  const nearValid = fc.oneof(
    fc.record({ to: fc.oneof(anySpelling.map((x) => x.spelling.text), fc.jsonValue()), channel: fc.option(fc.jsonValue(), { nil: undefined }), client: fc.option(fc.dictionary(fc.constantFrom('ip', 'userAgent', 'deviceId', 'formToken', 'pow', 'elapsedMs', 'automation', 'honeypot'), fc.jsonValue({ maxDepth: 1 })), { nil: undefined }) }, { requiredKeys: ['to'] }),
    fc.record({ id: fc.option(fc.string({ maxLength: 70 }), { nil: undefined }), to: fc.option(fc.string({ maxLength: 70 }), { nil: undefined }), code: fc.oneof(fc.string({ maxLength: 12 }), fc.jsonValue()) }),
  );
  const bodyArb = fc.oneof(
    fc.constant(undefined),
    jsonArb.map((v) => JSON.stringify(v) ?? 'null'),
    nearValid.map((v) => JSON.stringify(v)),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    fc.string({ unit: 'binary', maxLength: 200 }),
  );
  const typeArb = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/xml', '', 'APPLICATION/JSON', 'application/json;;;');
  const requestArb = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
    path: pathArb,
    key: keyArb,
    type: typeArb,
    body: bodyArb,
    origin: fc.option(fc.constantFrom('https://evil.example', 'null', 'http://127.0.0.1'), { nil: undefined }),
    xff: fc.ipV4(),
  });

  it('no 5xx and one error shape, for any request', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        n++;
        const headers: Record<string, string> = { 'x-forwarded-for': r.xff };
        if (r.key === 'verify') headers.authorization = `Bearer ${t.verifyKey}`;
        if (r.key === 'admin') headers.authorization = `Bearer ${t.adminKey}`;
        if (r.key === 'garbage') headers.authorization = `Bearer osk_${'Z'.repeat(12)}_${'z'.repeat(43)}`;
        if (r.origin) headers.origin = r.origin;
        const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
        if (hasBody && r.type) headers['content-type'] = r.type;
        const res = await fetch(t.url + r.path, { method: r.method, headers, ...(hasBody ? { body: typeof r.body === 'string' ? r.body : new Uint8Array(r.body as Buffer) } : {}) });
        const text = await res.text();
        assert.ok(res.status < 500, `${r.method} ${r.path} → ${res.status} ${text.slice(0, 300)}`);
        if (res.status >= 400 && r.method !== 'HEAD' && text !== '') {
          const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
          assert.equal(typeof body.error?.code, 'string', `${r.method} ${r.path} → ${res.status} ${text.slice(0, 200)}`);
          assert.equal(typeof body.error?.message, 'string');
        }
      }),
      { numRuns: 600 },
    );
    assert.equal(n >= 600, true);
    assert.equal((await t.request('GET', '/healthz', undefined, { key: null })).status, 200, 'still alive');
  });
});
