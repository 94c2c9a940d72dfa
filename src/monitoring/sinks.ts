/**
 * Where alerts go: the log, and webhooks.
 *
 * The webhook body is Slack-compatible (`text` + `blocks`, accepted by Slack incoming webhooks, Mattermost
 * and most chat tools) with the structured alert under `alert` for machines. It is signed like the webhook
 * sender (`X-OTPShield-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")`), so a receiver can reject forged
 * or replayed alerts; Slack itself ignores the header.
 */
import type { Logger } from 'pino';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhookBody } from '../delivery/webhook.ts';
import { postOnce } from '../delivery/http.ts';
import type { Alert } from './alerts.ts';
import type { WebhookSinkConfig } from './config.ts';

export interface SinkResult {
  sink: string;
  ok: boolean;
  detail?: string;
}

export interface AlertSink {
  readonly name: string;
  send(alert: Alert): Promise<SinkResult>;
}

const ICON: Record<Alert['severity'], string> = { warning: ':warning:', critical: ':rotating_light:' };

/** The JSON body posted to webhook sinks. */
export function slackBody(alert: Alert, app: string): Record<string, unknown> {
  const title = `${ICON[alert.severity]} ${app}: ${alert.rule.replaceAll('_', ' ')} (${alert.scope})`;
  return {
    text: `${title}\n${alert.message}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${title}*\n${alert.message}` } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `severity *${alert.severity}* · rule \`${alert.rule}\` · ${new Date(alert.at).toISOString()}` }],
      },
    ],
    alert: { ...alert, at: new Date(alert.at).toISOString() },
  };
}

export function logSink(log: Logger): AlertSink {
  return {
    name: 'log',
    async send(alert) {
      log.warn({ alert: { rule: alert.rule, scope: alert.scope, severity: alert.severity, value: alert.value, threshold: alert.threshold } }, `alert: ${alert.message}`);
      return { sink: 'log', ok: true };
    },
  };
}

export function webhookSink(cfg: WebhookSinkConfig, o: { app: string; now: () => number }): AlertSink {
  const name = cfg.name ?? 'webhook';
  return {
    name,
    async send(alert) {
      const body = JSON.stringify(slackBody(alert, o.app));
      const t = Math.floor(o.now() / 1000);
      const outcome = await postOnce(cfg.url, {
        headers: {
          'content-type': 'application/json',
          'user-agent': 'otp-shield-alerts/1',
          [SIGNATURE_HEADER]: signWebhookBody(cfg.secret, body, t),
          [TIMESTAMP_HEADER]: String(t),
        },
        body,
        timeoutMs: cfg.timeoutMs ?? 5000,
        signal: undefined,
      });
      if (outcome.kind === 'response' && outcome.status >= 200 && outcome.status < 300) return { sink: name, ok: true };
      return { sink: name, ok: false, detail: outcome.kind === 'response' ? `http ${outcome.status}` : outcome.kind };
    },
  };
}
