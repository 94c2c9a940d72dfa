/**
 * `POST /v1/admin/subjects/access|erase`: requests about one person over HTTP (docs/privacy.md), the store step
 * `otp-shield subject show|erase` runs (test/cli/subject.test.ts has its bytes-on-disk check), for a back office
 * that answers such requests itself. Before, only the CLI could, beside the servers.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';

const A = '+4915112345678';
const OTHER = '+4915112345699';
const BLOCKED = '+4915112345611';
const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0', acceptLanguage: 'de-DE', elapsedMs: 5000 });

describe('POST /v1/admin/subjects/access and /erase', () => {
  let t: TestApp;
  const admin = (path: string, body: unknown, key?: string) => t.request('POST', path, body, { key: key ?? t.adminKey });
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('hands out every record naming a number, erases them, and records both without the number', async () => {
    const sent = await t.request('POST', '/v1/verifications', { to: A, client: client('84.17.30.1') });
    assert.equal(sent.status, 201, sent.text);
    assert.deepEqual(outcome((await t.request('POST', '/v1/verifications/check', { id: sent.body.id, code: t.lastCode(A) })).body), { status: 'approved' });
    assert.equal((await t.request('POST', '/v1/verifications', { to: OTHER, client: client('84.17.30.2') })).status, 201);
    assert.equal((await t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'ip', value: '198.51.100.9', note: `abuse against ${A}` }, { key: t.adminKey })).status, 201);

    const access = await admin('/v1/admin/subjects/access', { destination: '+49 151 12345678' });
    assert.equal(access.status, 200, access.text);
    assert.equal(access.body.destination, A);
    assert.equal(access.body.found.verifications, 1);
    assert.equal(access.body.verifications[0].id, sent.body.id);
    assert.equal(access.body.verifications[0].client.ip, '84.17.30.1');
    assert.deepEqual(Object.keys(access.body.verifications[0].codes[0]).sort(), ['expiresAt', 'kid'], 'no stored code hash');
    assert.ok(access.body.events.some((e: { type: string; to: string }) => e.type === 'send' && e.to === A));
    assert.ok(access.body.events.some((e: { type: string }) => e.type === 'check'));
    assert.ok(access.body.events.every((e: { to?: string; type: string }) => e.to === A || e.type === 'list.add'));
    assert.deepEqual(access.body.listEntries.map((e: { value: string }) => e.value), ['198.51.100.9']);
    assert.ok(access.body.keys.some((k: string) => k.startsWith(`n:${A}`)), access.body.keys.join());
    assert.equal(access.body.found.events, access.body.events.length);

    const erase = await admin('/v1/admin/subjects/erase', { destination: A, note: 'DSR-77' });
    assert.equal(erase.status, 200, erase.text);
    assert.equal(erase.body.destination, A);
    assert.deepEqual(erase.body.erased, access.body.found);
    assert.match(erase.body.notErased, /logs/);

    const again = await admin('/v1/admin/subjects/access', { destination: A });
    assert.deepEqual(again.body.found, { verifications: 0, events: 0, listEntries: 0, keys: 0, journal: 0 });
    assert.equal((await admin('/v1/admin/subjects/access', { destination: OTHER })).body.found.verifications, 1, 'another number keeps its records');
    const lists = await t.request('GET', '/v1/admin/lists', undefined, { key: t.adminKey });
    const entry = lists.body.entries.find((e: { value: string }) => e.value === '198.51.100.9');
    assert.equal(entry.note, 'abuse against [erased]');

    // Both requests are in the audit log, by the key that made them, without the number in clear.
    const events = await t.request('GET', '/v1/admin/events?mask=false&limit=1000', undefined, { key: t.adminKey });
    const keyId = t.adminKey.split('_')[1];
    const erased = events.body.events.filter((e: { type: string }) => e.type === 'subject.erase');
    assert.equal(erased.length, 1);
    assert.equal(erased[0].data.by, keyId);
    assert.equal(erased[0].data.note, 'DSR-77');
    const reads = events.body.events.filter((e: { type: string; data: { what: string } }) => e.type === 'data.read' && e.data.what === 'subject');
    assert.equal(reads.length, 3);
    assert.ok(reads.every((e: { data: { by: string } }) => e.data.by === keyId));
    const text = JSON.stringify(events.body.events.filter((e: { type: string }) => e.type === 'subject.erase' || e.type === 'data.read'));
    assert.doesNotMatch(text, /4915112345678/);
  });

  it('an erased block-list entry on the number stops refusing it at once on this instance', async () => {
    assert.equal((await t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: BLOCKED }, { key: t.adminKey })).status, 201);
    const refused = await t.request('POST', '/v1/verifications', { to: BLOCKED, client: client('84.17.30.3') });
    assert.equal(refused.status, 403, refused.text);
    const erase = await admin('/v1/admin/subjects/erase', { destination: BLOCKED });
    assert.equal(erase.status, 200, erase.text);
    assert.equal(erase.body.erased.listEntries, 1);
    const sent = await t.request('POST', '/v1/verifications', { to: BLOCKED, client: client('84.17.30.3') });
    assert.equal(sent.status, 201, sent.text);
  });

  it('needs an admin key and a destination it can read', async () => {
    assert.equal((await admin('/v1/admin/subjects/access', { destination: A }, t.verifyKey)).status, 403);
    assert.equal((await admin('/v1/admin/subjects/erase', { destination: A }, t.verifyKey)).status, 403);
    assert.equal((await t.request('POST', '/v1/admin/subjects/erase', { destination: A }, { key: null })).status, 401);
    const bad = await admin('/v1/admin/subjects/erase', { destination: 'someone' });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.body.error.message, /^body\.destination is /);
    assert.equal((await admin('/v1/admin/subjects/access', {})).status, 400);
    assert.equal((await admin('/v1/admin/subjects/erase', { destination: A, note: 'x'.repeat(201) })).status, 400);
    assert.equal((await admin('/v1/admin/subjects/erase', { destination: A, extra: 1 })).status, 400);
  });
});
