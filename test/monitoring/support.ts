/**
 * Shared set-up of the monitoring tests: a real test app (SQLite, webhook sender to a fake receiver,
 * injected clock) plus a second fake receiver on 127.0.0.1 for alert webhooks, with every alert rule off
 * unless the test turns it on.
 */
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestClock } from '../helpers/app.ts';
import { startFakeServer, type FakeServer } from '../helpers/fake-http.ts';
import { monitoringOf, type Monitoring } from '../../src/monitoring/monitor.ts';
import { verifyWebhookSignature } from '../../src/delivery/webhook.ts';
import { deepMerge } from '../../src/lib/merge.ts';
import type { Store } from '../../src/store/interface.ts';

export const ALERT_SECRET = 'alert-webhook-secret-0123456789';

export const RULES_OFF = {
  checkFailureRate: { enabled: false },
  requestSpike: { enabled: false },
  conversionDrop: { enabled: false },
  unexpectedRegion: { enabled: false },
  outsideHours: { enabled: false },
  deliveryRateDrop: { enabled: false },
  senderFailures: { enabled: false },
  quarantineStarted: { enabled: false },
  dailySpend: { enabled: false },
};

export const client = (ip = '36.72.10.5') => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

export interface MonitoredApp {
  t: TestApp;
  mon: Monitoring;
  alerts: FakeServer;
  /** POST /v1/verifications for `to` from `ip`. */
  send(to: string, ip?: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startMonitoredApp(o: { alerts?: Record<string, unknown>; policy?: Record<string, unknown>; config?: Record<string, unknown>; appConfig?: Record<string, unknown>; clock?: TestClock; store?: Store } = {}): Promise<MonitoredApp> {
  const alerts = await startFakeServer(() => ({ status: 200, body: 'ok' }));
  // Only the test's own tick() evaluates alerts: the 15-second background evaluation could fire first in a long
  // test, and its webhook land after the test counted them.
  const appConfig = deepMerge({ monitoring: { alerts: { evaluateSeconds: 3600 } } }, o.appConfig ?? {});
  const t = await startTestApp({ config: appConfig, ...(o.clock ? { clock: o.clock } : {}), ...(o.store ? { store: o.store } : {}) });
  const mon = monitoringOf(t.ctx);
  assert.ok(mon, 'the monitoring layer is installed');
  mon.setOverrides({
    policy: { ...(o.policy ?? {}), alerts: deepMerge(RULES_OFF, o.alerts ?? {}) },
    config: deepMerge({ alerts: { log: false, webhooks: [{ name: 'test', url: `${alerts.url}/alerts`, secret: ALERT_SECRET }] } }, o.config ?? {}),
  });
  return {
    t,
    mon,
    alerts,
    send: (to, ip = '36.72.10.5') => t.request('POST', '/v1/verifications', { to, channel: 'sms', client: client(ip) }),
    async close() {
      await t.close();
      await alerts.close();
    },
  };
}

export interface ReceivedAlert {
  rule: string;
  scope: string;
  key: string;
  severity: string;
  message: string;
  value: number;
  threshold: number;
  at: string;
  data?: Record<string, unknown>;
}

/**
 * The alerts the receiver got, after checking that every one is correctly signed (at the clock of its
 * evaluation) and
 * Slack-compatible.
 */
export function receivedAlerts(m: MonitoredApp): ReceivedAlert[] {
  return m.alerts.requests.map((r) => {
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/alerts');
    const body = r.json as { text?: unknown; blocks?: unknown; alert?: ReceivedAlert };
    assert.equal(typeof body.text, 'string', 'Slack-compatible: a text field');
    assert.ok(Array.isArray(body.blocks));
    assert.ok(body.alert);
    // Signed when it was sent, i.e. at the injected clock of the evaluation that raised it.
    const sentAt = Date.parse(body.alert.at) / 1000;
    const sig = r.headers['x-otpshield-signature'];
    const check = verifyWebhookSignature(ALERT_SECRET, r.body, typeof sig === 'string' ? sig : undefined, sentAt);
    assert.deepEqual(check, { ok: true, timestamp: Math.floor(sentAt) }, 'signed with the sink secret at the injected clock');
    assert.equal(verifyWebhookSignature('another-secret-0123456789', r.body, String(sig), sentAt).ok, false);
    return body.alert;
  });
}

/** Exactly one alert of `rule` (and `scope`, when given) arrived, correctly signed. */
export function assertOneAlert(m: MonitoredApp, rule: string, scope?: string): ReceivedAlert {
  const matching = receivedAlerts(m).filter((a) => a.rule === rule && (scope === undefined || a.scope === scope));
  assert.equal(matching.length, 1, `one ${rule}${scope ? ` ${scope}` : ''} alert, got ${JSON.stringify(receivedAlerts(m).map((a) => `${a.rule}|${a.scope}`))}`);
  return matching[0]!;
}
