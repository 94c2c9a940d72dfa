/**
 * `otp-shield serve` shutting down as deploys need it (an ops review): a drain during which readiness fails
 * while requests are still served, a bound on the wait for requests in flight, and a second signal that
 * does not wait at all. Real child processes; the SMS provider is a fake on 127.0.0.1 that never answers.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeServer, type FakeServer } from '../helpers/fake-http.ts';
import { startInstance } from '../helpers/process.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { createApiKey } from '../../src/service/api-keys.ts';
import { startTestApp } from '../helpers/app.ts';
import { connect } from 'node:net';

const exited = (proc: ChildProcess) => new Promise<number | null>((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.once('exit', (code) => r(code))));

async function instance(server: Record<string, unknown>, receiver: FakeServer) {
  const dir = mkdtempSync(join(tmpdir(), 'otps-shutdown-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({
    server: { host: '127.0.0.1', port: 0, ...server },
    secrets: { codeSecret: 'shutdown-test-secret-0123456789abcdefgh', previousCodeSecrets: [] },
    senders: [{ type: 'webhook', url: `${receiver.url}/deliver`, secret: 'shutdown-test-webhook-secret', timeoutMs: 60_000 }],
    logLevel: 'silent',
  }));
  const seed = new SqliteStore(join(dir, 'data', 'otp-shield.db'));
  const key = (await createApiKey(seed, { scopes: ['verify'], now: Date.now() })).key;
  await seed.close();
  const { url, proc } = await startInstance(configFile, join(dir, 'data'));
  const send = (to: string) =>
    fetch(`${url}/v1/verifications`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ to, client: { ip: '36.72.10.5', userAgent: 'Mozilla/5.0', acceptLanguage: 'id' } }) });
  return { url, proc, send, dispose: () => { proc.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); } };
}

describe('shutdown', () => {
  const receivers: FakeServer[] = [];
  after(async () => { for (const r of receivers) await r.close(); });
  const hangingReceiver = async () => {
    const r = await startFakeServer(() => new Promise(() => {}));
    receivers.push(r);
    return r;
  };

  it('drains first: readiness fails and connections close while requests are still served, then it exits 0', async () => {
    const receiver = await startFakeServer(() => ({ status: 200, json: { ok: true } }));
    receivers.push(receiver);
    const s = await instance({ drainMs: 3000 }, receiver);
    try {
      assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
      // A first send warms the process up (a cold first send on a loaded machine could outlast the drain).
      assert.equal((await s.send('+6281234500002')).status, 201);
      const gone = exited(s.proc);
      s.proc.kill('SIGTERM');
      let ready = await fetch(`${s.url}/readyz`);
      for (let i = 0; i < 100 && ready.status === 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        ready = await fetch(`${s.url}/readyz`);
      }
      assert.equal(ready.status, 503, 'a load balancer stops routing here');
      assert.equal((await ready.json()).error.code, 'unavailable');
      assert.equal(ready.headers.get('retry-after'), '5');
      const sent = await s.send('+6281234500001');
      assert.equal(sent.status, 201, 'but requests are still served during the drain');
      assert.equal(sent.headers.get('connection'), 'close');
      assert.equal(await gone, 0);
    } finally {
      s.dispose();
    }
  });

  it('waits for requests in flight at most shutdownTimeoutMs, then exits 1; a second signal does not wait at all', async () => {
    const receiver = await hangingReceiver();
    const bounded = await instance({ shutdownTimeoutMs: 1000 }, receiver);
    const waiting = await instance({}, receiver); // the default bound (25 s) is not what ends this one
    try {
      for (const s of [bounded, waiting]) {
        const before = receiver.requests.length;
        void s.send(`+62812345000${receivers.length}${before}`).catch(() => {});
        await receiver.waitFor(before + 1, 60_000);
      }
      const started = Date.now();
      const [a, b] = [exited(bounded.proc), exited(waiting.proc)];
      bounded.proc.kill('SIGTERM');
      waiting.proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      waiting.proc.kill('SIGINT');
      assert.equal(await b, 1, 'the second signal ends it');
      assert.equal(await a, 1, 'the bound ends it');
      // A bound, not a timing claim: without these the processes waited 60 s for the provider (twice).
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    } finally {
      bounded.dispose();
      waiting.dispose();
    }
  });
});

describe('a request that arrives while the server closes', () => {
  it('is refused in the error shape, with Retry-After, and its connection closed', async () => {
    const t = await startTestApp();
    // The first request holds the connection open (the provider answers when the test says) while the server
    // starts to close. (A fixed provider delay and a fixed wait raced a loaded machine: the first send is cold.)
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t.receiver.setHandler(async () => {
      await gate;
      return { status: 200, json: { ok: true } };
    });
    const { port, hostname } = new URL(t.url);
    const sock = connect(Number(port), hostname);
    let out = '';
    sock.on('data', (d) => (out += d));
    const body = JSON.stringify({ to: '+6281234500009', client: { ip: '36.72.9.9', userAgent: 'Mozilla/5.0 Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5000 } });
    sock.write(`POST /v1/verifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.verifyKey}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await t.receiver.waitFor(1, 30_000).catch(async (err: unknown) => {
      // Fail rather than hang: the provider would hold the request, and the server with it.
      release();
      sock.destroy();
      await t.close();
      throw err;
    });
    const closing = t.close();
    await new Promise((r) => setTimeout(r, 100));
    sock.write(`GET /v1/verifications/vf_abc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.verifyKey}\r\n\r\n`);
    // The GET's answer queues behind the POST's on this connection (HTTP/1.1 answers in order): let the provider
    // answer once the server has had time to read the GET.
    setTimeout(release, 500);
    await new Promise<void>((r) => sock.once('close', () => r()));
    await closing;
    const responses = out.split(/(?=HTTP\/1\.1 )/);
    assert.equal(responses.length, 2, out);
    assert.match(responses[0]!, /^HTTP\/1\.1 201 /, 'the request in flight is answered');
    const [head, text] = responses[1]!.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 503 /);
    assert.match(head!, /\r\nretry-after: 5\r\n/i);
    assert.match(head!, /\r\nconnection: close\r\n/i);
    assert.deepEqual(JSON.parse(text!), { error: { code: 'unavailable', message: 'Shutting down. Try again shortly.' } });
  });
});
