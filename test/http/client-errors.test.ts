/**
 * `clientErrorHandler` (src/http/errors.ts) on its own, in a bare Fastify: a request Node's parser refuses is
 * answered in the error shape — but never into a response already under way on the same connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { clientErrorHandler } from '../../src/http/errors.ts';

test('a malformed request pipelined behind a streaming response does not write into that response', async () => {
  const app = Fastify({ clientErrorHandler });
  app.get('/slow', async (_req, reply) => {
    // Headers and a first line out, the rest later: a response in flight when the garbage arrives.
    reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
    reply.raw.write('{"a":1}\n');
    await new Promise((r) => setTimeout(r, 200));
    reply.raw.end('{"a":2}\n');
    return reply;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const { port } = app.server.address() as AddressInfo;
    const out = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d) => (buf += d));
      s.on('close', () => resolve(buf));
      s.on('error', () => resolve(buf));
      s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      setTimeout(() => s.write('BAD REQUEST LINE\r\n\r\n'), 50);
    });
    assert.match(out, /^HTTP\/1.1 200 /);
    assert.doesNotMatch(out, /HTTP\/1.1 400/, `nothing written into the streaming response: ${JSON.stringify(out)}`);
  } finally {
    await app.close();
  }
});

test('with no response under way, the refusal is in the error shape with the base headers', async () => {
  const app = Fastify({ clientErrorHandler });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const { port } = app.server.address() as AddressInfo;
    const out = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('BAD REQUEST LINE\r\n\r\n'));
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d) => (buf += d));
      s.on('close', () => resolve(buf));
      s.on('error', () => resolve(buf));
    });
    const [head, body] = out.split('\r\n\r\n');
    assert.match(head ?? '', /^HTTP\/1.1 400 Bad Request/);
    for (const h of [/^date: /im, /^x-content-type-options: nosniff/im, /^strict-transport-security: max-age=/im, /^cache-control: no-store/im, /^connection: close/im]) assert.match(head ?? '', h);
    assert.deepEqual(JSON.parse(body ?? ''), { error: { code: 'invalid_request', message: 'The request is not valid.' } });
  } finally {
    await app.close();
  }
});
