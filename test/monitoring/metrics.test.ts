/**
 * GET /metrics: protected by an admin key (or a separate port), Prometheus text format, and the numbers
 * move with real traffic: decisions by reason, sends by sender/channel/country, checks by result,
 * conversion, endpoint and store latency, throttling/pause state. One registry per app.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, testClock, type TestApp } from '../helpers/app.ts';
import { startFakeServer } from '../helpers/fake-http.ts';
import { loadConfig } from '../../src/config/load.ts';
import { buildContext } from '../../src/service/context.ts';
import { buildServer } from '../../src/http/server.ts';
import { monitoringOf } from '../../src/monitoring/monitor.ts';
import { instrumentStore } from '../../src/monitoring/store-instrument.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { Config } from '../../src/config/schema.ts';
import type { MonitorFact } from '../../src/monitoring/facts.ts';
import { client } from './support.ts';
import { pauseSends, resumeSends } from '../../src/monitoring/pause.ts';

/** The value of one sample line, e.g. `otpshield_checks_total{result="approved"}`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const m = /^([^{ ]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter(Boolean);
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

it('money counters are exact: summed in micro-units, divided once per scrape', async () => {
  const { createMetrics, countFact } = await import('../../src/monitoring/metrics.ts');
  const m = createMetrics({ throttled: () => [], quarantines: () => [], pauses: () => [], conversion: () => new Map() }, { defaultMetrics: false });
  // Seven blocked requests at 0.09 each: float increments add up to 0.6299999999999999.
  for (const priceMicros of Array<number>(7).fill(90_000)) {
    const fact: MonitorFact = { kind: 'request', at: 0, decision: 'block', reasons: [], channel: 'sms', country: 'DE', prefix: null, number: null, ip: null, ipCountry: null, priceMicros };
    countFact(m, fact, 'USD');
  }
  const text = await m.registry.metrics();
  assert.match(text, /otpshield_savings_total\{country="DE",channel="sms",currency="USD"\} 0\.63\n/, text);
});

describe('GET /metrics', () => {
  let t: TestApp;
  const metrics = async () => {
    const r = await t.request('GET', '/metrics', undefined, { key: t.adminKey });
    assert.equal(r.status, 200);
    return r.text;
  };
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('needs an admin key', async () => {
    assert.equal((await t.request('GET', '/metrics', undefined, { key: null })).status, 401);
    assert.equal((await t.request('GET', '/metrics', undefined, { key: t.verifyKey })).status, 403);
    const r = await t.request('GET', '/metrics', undefined, { key: t.adminKey });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(r.text, /# TYPE otpshield_send_requests_total counter/);
  });

  it('counts decisions, sends, checks, conversion and latency as traffic happens', async () => {
    const before = await metrics();
    const to = '+6281234568001';
    const s = await t.request('POST', '/v1/verifications', { to, client: client() });
    assert.equal(s.status, 201);
    const resend = await t.request('POST', '/v1/verifications', { to, client: client() });
    assert.equal(resend.status, 429, 'resend inside the cooldown');
    const reason = resend.body.error.reasons[0] as string;
    const ok = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: t.lastCode(to) });
    assert.equal(ok.body.status, 'approved');
    await t.request('POST', '/v1/verifications/check', { id: 'vf_nope', code: '123456' });
    const after_ = await metrics();

    const delta = (name: string, labels: Record<string, string> = {}) => sample(after_, name, labels) - sample(before, name, labels);
    assert.equal(delta('otpshield_send_requests_total', { decision: 'allow', channel: 'sms', country: 'ID' }), 1);
    assert.equal(delta('otpshield_send_requests_total', { decision: 'block', channel: 'sms', country: 'ID' }), 1);
    assert.equal(delta('otpshield_decision_reasons_total', { decision: 'block', reason }), 1);
    assert.equal(delta('otpshield_sends_total', { sender: 'webhook', channel: 'sms', country: 'ID' }), 1);
    assert.equal(delta('otpshield_spend_total', { country: 'ID', channel: 'sms', currency: 'USD' }), 0.4);
    assert.equal(delta('otpshield_savings_total', { country: 'ID', channel: 'sms', currency: 'USD' }), 0.4);
    assert.equal(delta('otpshield_checks_total', { result: 'approved' }), 1);
    assert.equal(delta('otpshield_checks_total', { result: 'not_found' }), 1);
    assert.equal(delta('otpshield_verifications_started_total', { country: 'ID' }), 1);
    assert.equal(delta('otpshield_verifications_approved_total', { country: 'ID' }), 1);
    assert.ok(sample(after_, 'otpshield_conversion_ratio', { scope: 'country:ID' }) > 0);
    assert.equal(delta('otpshield_http_request_duration_seconds_count', { route: '/v1/verifications', method: 'POST' }), 2);
    assert.equal(delta('otpshield_http_requests_total', { route: '/v1/verifications', method: 'POST', status: '429' }), 1);
    assert.ok(delta('otpshield_store_operation_duration_seconds_count', { op: 'consumeLimits' }) >= 2);
    assert.ok(delta('otpshield_audit_events_total', { type: 'send' }) >= 2);
  });

  it('shows pauses while they last', async () => {
    await t.request('POST', '/v1/admin/pause', { prefix: '+62813' }, { key: t.adminKey });
    await t.request('POST', '/v1/verifications', { to: '+6281334567890', client: client('36.72.20.1') });
    assert.equal(sample(await metrics(), 'otpshield_pauses_active', { scope: 'prefix:+62813' }), 1);
    await t.request('POST', '/v1/admin/resume', { prefix: '+62813' }, { key: t.adminKey });
    await t.request('POST', '/v1/verifications', { to: '+6281334567891', client: client('36.72.20.2') });
    assert.equal(sample(await metrics(), 'otpshield_pauses_active', { scope: 'prefix:+62813' }), 0);
  });

  it('shows a pause made elsewhere (the CLI, another instance) on an idle instance, and its end', async () => {
    // Written to the shared store directly, as `otp-shield pause` does: this instance is not told, and no send
    // comes to refresh its snapshot; the scrape must not report what it saw last.
    const scope = { kind: 'prefix' as const, prefix: '+62814' };
    await pauseSends(t.ctx.store, scope, { now: t.clock() });
    t.clock.advance(2_000);
    assert.equal(sample(await metrics(), 'otpshield_pauses_active', { scope: 'prefix:+62814' }), 1);
    await resumeSends(t.ctx.store, scope, { now: t.clock() });
    t.clock.advance(2_000);
    assert.equal(sample(await metrics(), 'otpshield_pauses_active', { scope: 'prefix:+62814' }), 0);
  });

  it('each app has its own registry', async () => {
    const other = await startTestApp();
    try {
      const labels = { sender: 'webhook', channel: 'sms', country: 'ID' };
      const mineBefore = sample(await metrics(), 'otpshield_sends_total', labels);
      assert.equal((await other.request('POST', '/v1/verifications', { to: '+6281234568002', client: client() })).status, 201);
      const r = await other.request('GET', '/metrics', undefined, { key: other.adminKey });
      assert.equal(sample(r.text, 'otpshield_sends_total', labels), 1);
      assert.equal(sample(await metrics(), 'otpshield_sends_total', labels), mineBefore, 'the other app’s send is not counted here');
      assert.notEqual(monitoringOf(other.ctx)!.metrics.registry, monitoringOf(t.ctx)!.metrics.registry);
    } finally {
      await other.close();
    }
  });
});

describe('store instrumentation', () => {
  it('times every operation and counts errors', async () => {
    const store = new MemoryStore();
    const ops: [string, boolean][] = [];
    const events: number[] = [];
    instrumentStore(store, { op: (name, _s, ok) => ops.push([name, ok]), events: (e) => events.push(e.length) });
    const boom = new Error('backend down');
    (store as unknown as { getSetting: () => Promise<never> }).getSetting = async () => {
      throw boom;
    };
    // Re-instrumenting with a new observer wraps the failing method too.
    const errs: string[] = [];
    instrumentStore(store, { op: (name, _s, ok) => !ok && errs.push(name), events: () => undefined });
    await store.putSetting('a', 1);
    await assert.rejects(store.getSetting('a'), boom);
    await store.appendEvents([{ id: 'e', at: 1, type: 'x' }]);
    assert.deepEqual(ops, [['putSetting', true], ['appendEvents', true]]);
    assert.deepEqual(errs, ['getSetting']);
    assert.deepEqual(events, [1]);
  });
});

describe('metrics on a separate port', () => {
  it('serves /metrics without a key on the configured port only', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const receiver = await startFakeServer();
    const dataDir = mkdtempSync(join(tmpdir(), 'otps-metrics-'));
    const cfg: Config = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: {
        dataDir,
        server: { host: '127.0.0.1', port: 0 } as Config['server'],
        senders: [{ type: 'webhook', url: `${receiver.url}/deliver`, secret: 'test-webhook-secret-0123456789abcdef' }],
        secrets: { codeSecret: 'test-code-secret-0123456789abcdefghijkl', previousCodeSecrets: [] },
        logLevel: 'silent',
      },
    });
    const ctx = await buildContext(cfg, { clock: testClock() });
    monitoringOf(ctx)!.setOverrides({ config: { metrics: { port, host: '127.0.0.1' } } });
    const app = await buildServer(ctx);
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const r = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(r.status, 200);
      assert.match(await r.text(), /otpshield_send_requests_total/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/admin/stats`)).status, 404, 'nothing else on that port');
    } finally {
      await app.close();
      await ctx.close();
      await receiver.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
    await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'the listener closes with the server');
  });
});
