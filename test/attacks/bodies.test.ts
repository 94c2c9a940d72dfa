/**
 * Attack: bodies built to crash, slow down or corrupt the server. Oversized, deeply nested, non-UTF-8,
 * prototype-polluting, wrongly typed and non-JSON bodies get a 4xx in the error shape; the process's
 * prototypes stay clean (the server runs in this process, so the test can look), and the stored policy is
 * untouched by a polluted update.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { client, freshNumber, ipFor } from './support.ts';

describe('hostile request bodies', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  const raw = (path: string, body: string | Buffer, contentType = 'application/json', key: string | null = t.verifyKey) =>
    fetch(`${t.url}${path}`, {
      method: path.includes('policy') ? 'PUT' : 'POST',
      headers: { 'content-type': contentType, ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    }).then(async (r) => {
      const text = await r.text();
      return { status: r.status, text, body: (() => { try { return JSON.parse(text); } catch { return undefined; } })() };
    });

  const assertClientError = (r: { status: number; text: string; body: any }, status: number | number[], what: string) => {
    assert.ok([status].flat().includes(r.status), `${what}: ${r.status} ${r.text.slice(0, 200)}`);
    assert.equal(typeof r.body?.error?.code, 'string', `${what}: error shape`);
    assert.doesNotMatch(r.text, /at .*\.(ts|js):\d+|node_modules|SyntaxError/, `${what}: no internals`);
  };

  it('oversized bodies: 413 before the handler, including a 5 MB one', async () => {
    const big = JSON.stringify({ to: freshNumber(), client: { userAgent: 'x'.repeat(17_000) } });
    assertClientError(await raw('/v1/verifications', big), 413, '17 kB');
    const huge = await fetch(`${t.url}/v1/verifications`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.verifyKey}` }, body: '['.repeat(5_000_000) }).catch((e: Error) => e);
    // The server may answer 413 or cut the upload short; either way it is not processed and the server lives.
    if (!(huge instanceof Error)) assert.equal(huge.status, 413);
    assert.equal((await t.request('GET', '/healthz', undefined, { key: null })).status, 200);
  });

  it('deep nesting: refused before parsing, in every route that takes a body', async () => {
    for (const depth of [33, 1000, 8000]) {
      const nested = '['.repeat(depth) + ']'.repeat(depth);
      assertClientError(await raw('/v1/verifications', `{"to":"+6281234567890","client":${nested}}`), 400, `depth ${depth}`);
      // (8000 levels of {"a": are also over the body limit: 413 is as good.)
      assertClientError(await raw('/v1/admin/policy', `{"risk":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`, 'application/json', t.adminKey), [400, 413], `policy depth ${depth}`);
    }
  });

  it('not UTF-8, or not JSON: 400 or 415', async () => {
    const cases: [string, string | Buffer, string, number][] = [
      ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x74, 0x6f, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), 'application/json', 400],
      ['overlong UTF-8 slash', Buffer.from([0x7b, 0x22, 0x74, 0x6f, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]), 'application/json', 400],
      ['UTF-16', Buffer.from('{"to":"+6281234567890"}', 'utf16le'), 'application/json; charset=utf-16', 415],
      ['UTF-16 undeclared', Buffer.from('{"to":"+6281234567890"}', 'utf16le'), 'application/json', 400],
      ['form', 'to=%2B6281234567890', 'application/x-www-form-urlencoded', 415],
      ['multipart', '--b\r\nContent-Disposition: form-data; name="to"\r\n\r\n+6281234567890\r\n--b--', 'multipart/form-data; boundary=b', 415],
      ['text', '{"to":"+6281234567890"}', 'text/plain', 415],
      ['xml', '<to>+6281234567890</to>', 'application/xml', 415],
      ['json-ish type', '{"to":"+6281234567890"}', 'application/json-patch+json', 415],
      ['empty', '', 'application/json', 400],
      ['truncated', '{"to":"+62', 'application/json', 400],
      ['top-level array', '["+6281234567890"]', 'application/json', 400],
      ['top-level string', '"+6281234567890"', 'application/json', 400],
      ['null', 'null', 'application/json', 400],
      ['NaN', '{"to":NaN}', 'application/json', 400],
      ['comment', '{"to":"+6281234567890"/*x*/}', 'application/json', 400],
      ['a million-element array for the code', `{"id":"vf_x","code":[${'1,'.repeat(200_000)}1]}`, 'application/json', 413],
    ];
    for (const [what, body, type, status] of cases) {
      const path = what.includes('code') ? '/v1/verifications/check' : '/v1/verifications';
      assertClientError(await raw(path, body, type), status, what);
    }
    // The message says what is wrong with the body (it said "The request is not valid.").
    const truncated = await raw('/v1/verifications', '{bad', 'application/json');
    assert.equal((truncated.body as { error: { message: string } }).error.message, 'The request body is not valid JSON.');
  });

  it('an empty body under a JSON content type is no body: fine where none is needed, refused by the schema where one is', async () => {
    const to = freshNumber();
    const sent = await t.request('POST', '/v1/verifications', { to, client: client(ipFor(410)) });
    assert.equal(sent.status, 201, sent.text);
    const cancel = await t.request('POST', `/v1/verifications/${sent.body.id}/cancel`, undefined, { headers: { 'content-type': 'application/json' } });
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.body.status, 'canceled');
    const blank = await raw('/v1/verifications', ' \r\n ', 'application/json');
    assertClientError(blank, 400, 'whitespace only');
  });

  it('prototype pollution: refused, and Object.prototype stays clean', async () => {
    const to = freshNumber();
    const bodies = [
      `{"to":"${to}","__proto__":{"polluted":"yes"}}`,
      `{"to":"${to}","client":{"__proto__":{"polluted":"yes"}}}`,
      `{"to":"${to}","constructor":{"prototype":{"polluted":"yes"}}}`,
      `{"to":"${to}","client":{"constructor":{"prototype":{"polluted":"yes"}}}}`,
      `{"to":"${to}","\\u005f\\u005fproto\\u005f\\u005f":{"polluted":"yes"}}`,
      `{"to":"${to}","client":{"automation":{"__proto__":{"polluted":"yes"}}}}`,
    ];
    for (const b of bodies) assertClientError(await raw('/v1/verifications', b), 400, b);
    const before = JSON.stringify((await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey })).body.policy);
    for (const b of [
      '{"__proto__":{"polluted":"yes"},"risk":{"blockAt":1000}}',
      '{"risk":{"__proto__":{"challengeAt":0}}}',
      '{"limits":{"constructor":{"prototype":{"polluted":"yes"}}}}',
      '{"risk":{"rules":{"__proto__":{"action":"allow"}}}}',
    ]) {
      const r = await raw('/v1/admin/policy', b, 'application/json', t.adminKey);
      assertClientError(r, 400, b);
    }
    const after = JSON.stringify((await t.request('GET', '/v1/admin/policy', undefined, { key: t.adminKey })).body.policy);
    assert.equal(after, before, 'policy unchanged');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).challengeAt, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'action'), false);
    // A harmless "constructor" key where the schema ignores nothing: refused as an unknown field, not a crash.
    assertClientError(await raw('/v1/verifications', `{"to":"${to}","constructor":"x"}`), 400, 'constructor string');
    // And the server still works.
    assert.equal((await t.request('POST', '/v1/verifications', { to, client: client(ipFor(1)) })).status, 201);
  });

  it('type confusion in every field: 400, never coerced', async () => {
    const to = freshNumber();
    const bad: unknown[] = [
      { to: 6281234567890 },
      { to: ['+6281234567890'] },
      { to: { $gt: '' } },
      { to: null },
      { to: true },
      { to, channel: ['sms'] },
      { to, locale: 1 },
      { to, client: 'x' },
      { to, client: { ip: ['1.2.3.4'] } },
      { to, client: { elapsedMs: '5000' } },
      { to, client: { elapsedMs: -1 } },
      { to, client: { elapsedMs: 1e300 } },
      { to, client: { automation: { webdriver: 'false' } } },
      { to, client: { automation: { flags: Array.from({ length: 100 }, () => 'x') } } },
    ];
    for (const b of bad) assertClientError(await raw('/v1/verifications', JSON.stringify(b)), 400, JSON.stringify(b).slice(0, 80));
    for (const b of [{ id: 'vf_x', code: 123456 }, { id: 'vf_x', code: ['123456'] }, { id: ['vf_x'], code: '123456' }, { code: '123456' }, { id: 'vf_x', to, code: '123456' }]) {
      assertClientError(await raw('/v1/verifications/check', JSON.stringify(b)), 400, JSON.stringify(b));
    }
  });
  it('a body with a content coding is refused (415), not read as plain JSON', async () => {
    for (const coding of ['gzip', 'br', 'deflate, gzip']) {
      const r = await fetch(`${t.url}/v1/verifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': coding, authorization: `Bearer ${t.verifyKey}` },
        body: JSON.stringify({ to: freshNumber(), client: client(ipFor(901)) }),
      });
      const body = (await r.json()) as any;
      assert.equal(r.status, 415, `${coding}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'unsupported_media_type');
    }
    const identity = await fetch(`${t.url}/v1/verifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity', authorization: `Bearer ${t.verifyKey}` },
      body: JSON.stringify({ to: freshNumber(), client: client(ipFor(902)) }),
    });
    assert.equal(identity.status, 201, await identity.text());
  });

  it('requests Node’s HTTP parser refuses (bad request line, huge headers, smuggling-shaped framing, no Host, an unknown Expect) get the error shape too', async () => {
    const { port, hostname } = new URL(t.url);
    const rawHttp = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: hostname, port: Number(port) }, () => socket.end(request));
        let out = '';
        socket.setEncoding('utf8');
        socket.on('data', (d) => (out += d));
        socket.on('close', () => resolve(out));
        socket.on('error', reject);
      });
    const cases: [string, string, number, string][] = [
      ['garbage request line', 'HELLO\r\n\r\n', 400, 'invalid_request'],
      ['unknown HTTP version', 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n', 400, 'invalid_request'],
      ['Transfer-Encoding with Content-Length', 'POST /v1/verifications HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'invalid_request'],
      ['20 KB header', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
      // Node answered these two itself, with an empty body and none of our headers (a hostile-input review).
      ['HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'invalid_request'],
      ['an Expect other than 100-continue', 'POST /v1/verifications HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\n{}', 417, 'expectation_failed'],
    ];
    for (const [what, request, status, code] of cases) {
      const res = await rawHttp(request);
      const [head, body] = res.split('\r\n\r\n');
      assert.match(head ?? '', new RegExp(`^HTTP/1.1 ${status} `), `${what}: ${res.slice(0, 200)}`);
      assert.match(head ?? '', /x-content-type-options: nosniff/i, what);
      assert.match(head ?? '', /strict-transport-security: max-age=/i, what);
      assert.deepEqual(Object.keys(JSON.parse(body ?? '').error).sort(), ['code', 'message'], what);
      assert.equal(JSON.parse(body ?? '').error.code, code, what);
    }
  });
});
