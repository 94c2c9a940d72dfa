// The fake server is shared by other suites; these checks keep its own behaviour honest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeServer } from '../helpers/fake-http.ts';

test('records requests, parses JSON and form bodies, answers from the handler', async () => {
  const fake = await startFakeServer((req) => ({ status: 418, json: { echo: req.url } }));
  try {
    assert.match(fake.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${fake.url}/a?b=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' });
    assert.equal(res.status, 418);
    assert.deepEqual(await res.json(), { echo: '/a?b=1' });
    await fetch(`${fake.url}/f`, { method: 'POST', body: new URLSearchParams({ To: '+1', Body: 'hi there' }) });
    assert.equal(fake.requests.length, 2);
    assert.deepEqual(fake.requests[0]?.json, { x: 1 });
    assert.equal(fake.requests[0]?.form, undefined);
    assert.deepEqual(fake.requests[1]?.form, { To: '+1', Body: 'hi there' });
    assert.equal(fake.requests[1]?.json, undefined);
  } finally {
    await fake.close();
  }
});

test('default handler, setHandler, handler errors and waitFor', async () => {
  const fake = await startFakeServer();
  try {
    assert.equal((await fetch(fake.url)).status, 200);
    fake.setHandler(() => {
      throw new Error('bad handler');
    });
    assert.equal((await fetch(fake.url)).status, 500);
    assert.equal(fake.errors.length, 1);

    fake.setHandler(() => ({ status: 204 }));
    const waiting = fake.waitFor(3);
    void fetch(`${fake.url}/late`);
    await waiting;
    assert.equal(fake.requests.at(-1)?.url, '/late');
    await assert.rejects(fake.waitFor(10, 50), /expected 10 request/);
  } finally {
    await fake.close();
  }
});

test('close() does not hang on delayed responses', async () => {
  const fake = await startFakeServer(() => ({ status: 200, delayMs: 60_000 }));
  const pending = fetch(fake.url).then(
    () => 'answered',
    () => 'failed',
  );
  await fake.waitFor(1);
  await fake.close();
  assert.equal(await pending, 'failed');
});
