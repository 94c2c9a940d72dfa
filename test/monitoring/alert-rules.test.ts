/**
 * Every alert rule end to end: real traffic over HTTP against a real server (SQLite, injected clock), the
 * rule evaluated with `tick()` at that clock, and the alert webhook receiver on 127.0.0.1 getting exactly
 * one correctly signed, Slack-compatible alert — also after evaluating again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testClock, WEBHOOK_SECRET } from '../helpers/app.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { signWebhookBody } from '../../src/delivery/webhook.ts';
import { assertOneAlert, receivedAlerts, startMonitoredApp, type MonitoredApp } from './support.ts';
import { startFakeServer } from '../helpers/fake-http.ts';

const MIN = 60_000;

async function withApp(o: Parameters<typeof startMonitoredApp>[0], fn: (m: MonitoredApp) => Promise<void>): Promise<void> {
  const m = await startMonitoredApp(o);
  try {
    await fn(m);
  } finally {
    await m.close();
  }
}

/** Evaluate twice: the second evaluation must not send anything new. */
async function tickTwice(m: MonitoredApp): Promise<void> {
  await m.mon.tick();
  const n = m.alerts.requests.length;
  await m.mon.tick();
  assert.equal(m.alerts.requests.length, n, 'no repeat within the cooldown');
}

describe('alert rules over HTTP, with webhook delivery', () => {
  it('check failure rate', () =>
    withApp({ alerts: { checkFailureRate: { enabled: true, windowMinutes: 10, minChecks: 4, maxFailureRatio: 0.5 } } }, async (m) => {
      const s = await m.send('+6281234567001');
      assert.equal(s.status, 201);
      const code = m.t.lastCode('+6281234567001')!;
      const wrong = code === '000000' ? '111111' : '000000';
      for (let i = 0; i < 3; i++) assert.equal((await m.t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong })).body.status, 'denied');
      assert.deepEqual(await m.mon.tick(), [], '3 checks are below minChecks');
      await m.t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong });
      await tickTwice(m);
      const a = assertOneAlert(m, 'check_failure_rate', 'global');
      assert.equal(a.value, 1);
      assert.equal(a.severity, 'warning');
    }));

  it('request spikes per number, IP, prefix and country', () =>
    withApp({ alerts: { requestSpike: { enabled: true, windowMinutes: 10, perNumber: 3, perIp: 3, perPrefix: 3, perCountry: 3 } } }, async (m) => {
      for (let i = 0; i < 3; i++) await m.send('+6281234567002');
      assert.deepEqual(await m.mon.tick(), []);
      const fourth = await m.send('+6281234567002');
      assert.equal(fourth.status, 429, 'refused requests count as requests');
      await tickTwice(m);
      assert.equal(receivedAlerts(m).length, 4);
      const n = assertOneAlert(m, 'request_spike', 'number:+62812*****002'); // masked as in logs and exports
      // Alerts travel (webhooks, audit events, exports): the number is masked in every field, the key too.
      assert.ok(!JSON.stringify(n).includes('+6281234567002'), JSON.stringify(n));
      for (const r of m.alerts.requests) assert.ok(!String(r.body).includes('6281234567002'), 'no full number in any alert webhook body');
      const events = await m.t.ctx.store.queryEvents({ type: 'alert', limit: 20 });
      assert.ok(!JSON.stringify(events).includes('6281234567002'), 'no full number in the alert audit events');
      assertOneAlert(m, 'request_spike', 'ip:36.72.10.5');
      assertOneAlert(m, 'request_spike', 'prefix:+62812');
      assertOneAlert(m, 'request_spike', 'country:ID');
    }));

  it('a request spike from one IPv6 client rotating addresses inside its /64 is one source', () =>
    withApp({ alerts: { requestSpike: { enabled: true, windowMinutes: 10, perNumber: 100, perIp: 3, perPrefix: 100, perCountry: 100 } } }, async (m) => {
      for (let i = 0; i < 4; i++) await m.send(`+62812345671${i}0`, `2001:db8:1:2::${(i + 1) * 77}`);
      // Another /64 of the same /56 is another client.
      await m.send('+6281234567190', '2001:db8:1:3::1');
      await tickTwice(m);
      assert.equal(receivedAlerts(m).length, 1);
      assertOneAlert(m, 'request_spike', 'ip:2001:db8:1:2::/64');
    }));

  it('conversion drop', () =>
    withApp({ alerts: { conversionDrop: { enabled: true, windowMinutes: 10, baselineHours: 1, minVerifications: 3, dropRatio: 0.5 } } }, async (m) => {
      for (let i = 0; i < 3; i++) {
        const to = `+628123456710${i}`;
        const s = await m.send(to, `36.72.11.${i}`);
        assert.equal(s.status, 201);
        assert.equal((await m.t.request('POST', '/v1/verifications/check', { id: s.body.id, code: m.t.lastCode(to) })).body.status, 'approved');
      }
      m.t.clock.advance(15 * MIN);
      for (let i = 0; i < 3; i++) assert.equal((await m.send(`+628123456720${i}`, `36.72.12.${i}`)).status, 201);
      await tickTwice(m);
      const a = assertOneAlert(m, 'conversion_drop', 'global');
      assert.equal(a.value, 0);
      assertOneAlert(m, 'conversion_drop', 'country:ID');
    }));

  it('traffic from an unexpected region', () =>
    withApp({ alerts: { unexpectedRegion: { enabled: true, windowMinutes: 10, minRequests: 2, expectedCountries: ['ID'], learnHours: 24 } } }, async (m) => {
      await m.send('+6281234567300');
      await m.send('+12025550123');
      assert.deepEqual(await m.mon.tick(), []);
      await m.send('+12025550124', '36.72.13.1');
      await tickTwice(m);
      assertOneAlert(m, 'unexpected_region', 'country:US');
      assert.equal(receivedAlerts(m).length, 1, 'ID is expected');
    }));

  it('a restart remembers the countries learned from client IPs, not only from numbers (no false unexpected_region after a deploy)', async () => {
    // Two instances in turn on one store: the second starts after the first flushed its hourly documents.
    const store = new MemoryStore();
    const clock = testClock();
    const learned = { unexpectedRegion: { enabled: true, windowMinutes: 10, minRequests: 1, expectedCountries: [], learnHours: 24 } };
    const first = await startMonitoredApp({ alerts: learned, clock, store });
    try {
      await first.send('+6281234567310'); // a day of history begins (an ID number from an ID address)
      clock.advance(23 * 60 * MIN);
      await first.send('+6281234567311', '8.8.8.8'); // an ID number from a US address, an hour before the restart
      await first.mon.flush();
    } finally {
      await first.close();
    }
    clock.advance(60 * MIN + 10 * MIN); // the restart: a day of history, so the learned mode is on
    const second = await startMonitoredApp({ alerts: learned, clock, store });
    try {
      await second.send('+6281234567312', '8.8.8.8');
      await tickTwice(second);
      assert.deepEqual(receivedAlerts(second).map((a) => `${a.rule}|${a.scope}`), [], 'US was seen through the IP yesterday');
      await second.send('+6281234567313', '85.214.132.117'); // a German address: really new
      await tickTwice(second);
      assert.deepEqual(receivedAlerts(second).map((a) => `${a.rule}|${a.scope}`), ['unexpected_region|country:DE']);
    } finally {
      await second.close();
    }
  });

  it('a restart keeps the conversion baseline: a drop right after a deploy still alerts', async () => {
    const store = new MemoryStore();
    const clock = testClock();
    const rule = { conversionDrop: { enabled: true, windowMinutes: 10, baselineHours: 2, minVerifications: 3, dropRatio: 0.5 } };
    const first = await startMonitoredApp({ alerts: rule, clock, store });
    try {
      // An hour before the restart: 4 verifications, all approved.
      for (let i = 0; i < 4; i++) {
        const to = `+628123456730${i}`;
        const s = await first.send(to, `36.72.15.${i}`);
        assert.equal(s.status, 201, JSON.stringify(s.body));
        assert.equal((await first.t.request('POST', '/v1/verifications/check', { id: s.body.id, code: first.t.lastCode(to) })).body.status, 'approved');
      }
      await first.mon.flush();
    } finally {
      await first.close();
    }
    clock.advance(60 * MIN);
    const second = await startMonitoredApp({ alerts: rule, clock, store });
    try {
      // Right after the restart: codes nobody enters.
      for (let i = 0; i < 3; i++) assert.equal((await second.send(`+628123456731${i}`, `36.72.16.${i}`)).status, 201);
      await tickTwice(second);
      const a = assertOneAlert(second, 'conversion_drop', 'global');
      assert.equal(a.value, 0);
      assertOneAlert(second, 'conversion_drop', 'country:ID');
    } finally {
      await second.close();
    }
  });

  it('traffic outside the configured hours', () =>
    withApp({ alerts: { outsideHours: { enabled: true, fromHour: 9, toHour: 17, utcOffsetMinutes: 0, windowMinutes: 10, minRequests: 2 } } }, async (m) => {
      assert.equal(new Date(m.t.clock()).getUTCHours(), 8, 'the test clock starts at 08:00 UTC');
      await m.send('+6281234567400');
      assert.deepEqual(await m.mon.tick(), []);
      await m.send('+6281234567401', '36.72.14.1');
      await tickTwice(m);
      assertOneAlert(m, 'outside_hours', 'global');
    }));

  it('delivery rate drop, from signed delivery receipts', () =>
    withApp({ alerts: { deliveryRateDrop: { enabled: true, windowMinutes: 60, minReceipts: 3, minRate: 0.8 } } }, async (m) => {
      const statuses = ['delivered', 'failed', 'undelivered'];
      for (let i = 0; i < 3; i++) {
        const s = await m.send(`+628123456750${i}`, `36.72.15.${i}`);
        assert.equal(s.status, 201);
        const body = JSON.stringify({ id: s.body.id, status: statuses[i] });
        const r = await m.t.request('POST', '/v1/receipts/webhook/webhook', body, {
          key: null,
          headers: { 'content-type': 'application/json', 'x-otpshield-signature': signWebhookBody(WEBHOOK_SECRET, body, m.t.clock() / 1000) },
        });
        assert.deepEqual(r.body, { recorded: true }, r.text);
      }
      await tickTwice(m);
      const a = assertOneAlert(m, 'delivery_rate_drop', 'sender:webhook');
      assert.equal(Math.round(a.value * 100), 33);
      assertOneAlert(m, 'delivery_rate_drop', 'country:ID');
    }));

  it('sender failures: a primary that fails while a fallback delivers (warning), then every sender failing (critical)', async () => {
    const primary = await startFakeServer(() => ({ status: 500, json: { error: 'provider down' } }));
    let backupUp = true;
    // The backup answers in 150 ms: the per-sender latency histogram must show it.
    const backup = await startFakeServer(() => (backupUp ? { status: 200, json: { ok: true }, delayMs: 150 } : { status: 503, json: { error: 'maintenance' } }));
    try {
      const senders = [
        { type: 'webhook', name: 'primary', url: `${primary.url}/deliver`, secret: WEBHOOK_SECRET },
        { type: 'webhook', name: 'backup', url: `${backup.url}/deliver`, secret: WEBHOOK_SECRET },
      ];
      await withApp({ appConfig: { senders }, alerts: { senderFailures: { enabled: true, windowMinutes: 15, minAttempts: 3, maxFailureRatio: 0.2 } } }, async (m) => {
        for (let i = 0; i < 3; i++) assert.equal((await m.send(`+628123456780${i}`, `36.72.18.${i}`)).status, 201, 'the fallback delivered');
        const [ev] = await m.t.ctx.store.queryEvents({ type: 'send', limit: 1 });
        const delivery = (ev!.data as { delivery: { sender: string; failed: { sender: string; reason: string }[] } }).delivery;
        assert.equal(delivery.sender, 'backup');
        assert.deepEqual(delivery.failed.map((f) => f.sender), ['primary', 'primary'], 'the primary and its one retry');
        await tickTwice(m);
        const a = assertOneAlert(m, 'sender_failures', 'sender:primary');
        assert.equal(a.severity, 'warning');
        assert.equal(a.value, 1);
        assert.match(a.message, /Sender primary failed 6 of 6 attempts .*other senders delivered every message/);
        assert.equal(receivedAlerts(m).filter((x) => x.rule === 'sender_failures').length, 1, 'the backup delivered every message');
        const metrics = (await m.t.request('GET', '/metrics', undefined, { key: m.t.adminKey })).text;
        assert.match(metrics, /otpshield_sender_attempts_total\{sender="primary",channel="sms",result="failed"\} 6/);
        assert.match(metrics, /otpshield_sender_attempts_total\{sender="backup",channel="sms",result="ok"\} 3/);
        // Latency per sender: the backup's three answers all took 150 ms or more, so none is in the 0.1 s bucket.
        assert.match(metrics, /otpshield_sender_duration_seconds_count\{sender="backup",channel="sms",result="ok"\} 3/);
        assert.match(metrics, /otpshield_sender_duration_seconds_bucket\{le="0\.1",sender="backup",channel="sms",result="ok"\} 0/);
        assert.match(metrics, /otpshield_sender_duration_seconds_count\{sender="primary",channel="sms",result="failed"\} 6/);
        const took = delivery as unknown as { ms: number; failed: { ms: number }[] };
        assert.ok(took.ms >= 150, `the send's event says how long the delivering sender took: ${took.ms}`);
        assert.ok(took.failed.every((f) => typeof f.ms === 'number' && f.ms >= 0), JSON.stringify(took.failed));

        // Now the backup fails too: sends fail (502) and the backup alerts, as critical only if nothing got through.
        backupUp = false;
        for (let i = 0; i < 2; i++) assert.equal((await m.send(`+628123456781${i}`, `36.72.19.${i}`)).status, 502);
        await m.mon.tick();
        const b = assertOneAlert(m, 'sender_failures', 'sender:backup');
        assert.equal(b.severity, 'critical', 'sends failed: users got no code');
        assert.match(b.message, /Sender backup failed 4 of 7 attempts .*2 sends failed on every sender .*GET \/v1\/admin\/events\?type=send\.failed/);
      });
    } finally {
      await primary.close();
      await backup.close();
    }
  });

  it('a quarantine the detector starts is alerted, with how to lift it; an admin\'s own is not', () =>
    withApp({ alerts: { quarantineStarted: { enabled: true } } }, async (m) => {
      const admin = await m.t.request('POST', '/v1/admin/quarantines', { scope: 'prefix:+62813', minutes: 30 }, { key: m.t.adminKey });
      assert.equal(admin.status, 201, admin.text);
      assert.deepEqual(await m.mon.tick(), []);
      // Numbers packed into one block of the range, from many addresses: the density rule quarantines the prefix.
      for (let i = 0; i < 12; i++) {
        await m.send(`+62812999910${String(i).padStart(2, '0')}`, `36.72.20.${i + 1}`);
        m.t.clock.advance(5_000);
      }
      const [start] = await m.t.ctx.store.queryEvents({ type: 'quarantine.start', prefix: '+62812', limit: 1 });
      assert.ok(start, 'the detector quarantined +62812');
      await tickTwice(m);
      const a = assertOneAlert(m, 'quarantine_started', 'prefix:+62812');
      assert.match(a.message, /SMS-pumping quarantine of prefix:\+62812 \(\w+\): new numbers are .* numbers that verified before still get codes\. .*DELETE \/v1\/admin\/quarantines\/prefix%3A%2B62812/);
      assert.equal(receivedAlerts(m).filter((x) => x.rule === 'quarantine_started').length, 1, 'not for the admin\'s own');
    }));

  it('daily spend over budget, once per day', () =>
    withApp({ alerts: { dailySpend: { enabled: true } }, policy: { budgets: { dailyTotal: 0.5, circuitBreaker: false } } }, async (m) => {
      await m.send('+6281234567600'); // 0.40 (ID)
      assert.deepEqual(await m.mon.tick(), []);
      await m.send('+6281234567601', '36.72.16.1'); // 0.80
      await tickTwice(m);
      m.t.clock.advance(2 * 60 * MIN); // past the rule cooldown, same UTC day
      await m.send('+6281234567602', '36.72.16.2');
      await m.mon.tick();
      const a = assertOneAlert(m, 'daily_spend', 'total');
      assert.equal(a.value, 0.8);
      assert.equal(a.threshold, 0.5);
    }));

  it('the budget circuit breaker pauses the country until the end of the UTC day', () =>
    withApp({ policy: { budgets: { countries: { ID: 0.5 }, circuitBreaker: true } } }, async (m) => {
      assert.equal((await m.send('+6281234567700')).status, 201);
      // The send that would take the country past its budget is refused before its message leaves (until
      // 2026-11-28, evening, it went out and the breaker acted after it), and trips the breaker.
      const over = await m.send('+6281234567701', '36.72.17.1');
      assert.equal(over.status, 403, JSON.stringify(over.body));
      assert.deepEqual(over.body.error.reasons, ['budget.country']);
      await m.mon.idle();
      const blocked = await m.send('+6281234567702', '36.72.17.2');
      assert.equal(blocked.status, 403, JSON.stringify(blocked.body));
      assert.deepEqual(blocked.body.error.reasons, ['paused']);
      assert.equal((await m.send('+12025550125', '36.72.17.3')).status, 201, 'other countries still send');

      const a = assertOneAlert(m, 'budget_breaker', 'country:ID');
      assert.equal(a.severity, 'critical');
      const endOfDay = Date.parse('2026-11-24T00:00:00.000Z');
      const store = m.t.ctx.store;
      assert.ok(await store.getSetting('pause:country:ID', endOfDay - 1), 'paused for the rest of the day');
      assert.equal(await store.getSetting('pause:country:ID', endOfDay), null, 'and not tomorrow');
      const ev = await store.queryEvents({ type: 'pause', limit: 10 });
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.country, 'ID');
      assert.equal((ev[0]!.data as { by?: string }).by, 'budget');

      // More spend the same day does not trip (or alert) again.
      const resumed = await m.t.request('POST', '/v1/admin/resume', { country: 'ID', note: 'budget raised' }, { key: m.t.adminKey });
      assert.equal(resumed.status, 200, resumed.text);
      assert.match(resumed.body.warning, /paused by the budget circuit breaker: its budget no longer refuses sends until midnight UTC/);
      const [resumeEvent] = await store.queryEvents({ type: 'resume', limit: 1 });
      assert.equal((resumeEvent!.data as { note?: string }).note, 'budget raised');
      assert.equal((await m.send('+6281234567703', '36.72.17.4')).status, 201, 'an admin resume stands for the day');
      await m.mon.idle();
      assert.equal(receivedAlerts(m).filter((x) => x.rule === 'budget_breaker').length, 1);
    }));

  it('the fleet-wide de-duplication refuses an alert another instance already sent', () =>
    withApp({}, async (m) => {
      const alert = { rule: 'outside_hours' as const, scope: 'global', key: 'outside_hours:global', severity: 'warning' as const, message: 'x', value: 1, threshold: 1, at: m.t.clock() };
      assert.equal(await m.mon.emit(alert), true);
      assert.equal(await m.mon.emit({ ...alert }), false, 'same key within the cooldown, through the store');
      assert.equal(m.alerts.requests.length, 1);
      const stored = await m.t.ctx.store.queryEvents({ type: 'alert', limit: 10 });
      assert.equal(stored.length, 1, 'each sent alert is an audit event');
    }));
});
