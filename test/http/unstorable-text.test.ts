/**
 * A NUL character or an unpaired UTF-16 surrogate, spelled with JSON escapes or percent-encoding, is refused
 * with 400 before anything happens — on every store. On PostgreSQL such text used to fail the request with a
 * 500 after the message was sent, the check approved or the pause put in force (a hostile-input review).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/interface.ts';
import { startTestApp } from '../helpers/app.ts';
import { onEveryStore } from '../helpers/every-store.ts';
import { signWebhookBody } from '../../src/delivery/webhook.ts';
import { WEBHOOK_SECRET } from '../helpers/app.ts';

const client = { ip: '36.72.10.5', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };

function suite(name: string, makeStore: () => Promise<Store | undefined>, dispose: (s: Store | undefined) => Promise<void>) {
  it(`${name}: refused with 400 and without effect, in bodies, keys, query strings, paths and signed receipts`, async () => {
    const store = await makeStore();
    const t = await startTestApp(store ? { store } : {});
    try {
      const ok = await t.request('POST', '/v1/verifications', { to: '+6281234000777', channel: 'sms', client });
      assert.equal(ok.status, 201, ok.text);
      const id = ok.body.id as string;
      const code = t.lastCode('+6281234000777')!;
      const delivered = t.receiver.requests.length;
      const raw = (method: string, path: string, body?: string, key = t.verifyKey) =>
        fetch(t.url + path, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body } : {}) });
      const cases: [string, string, string | undefined, string?][] = [
        ['POST', '/v1/verifications', '{"to":"+6281234000778","client":{"ip":"36.72.10.6","userAgent":"Mozilla/5.0\\u0000"}}'],
        ['POST', '/v1/verifications', '{"to":"+6281234000779","locale":"\\ud800"}'],
        ['POST', '/v1/verifications/check', `{"id":"${id}","code":"${code}","client":{"ip":"36.72.10.7","deviceId":"\\ud800"}}`],
        ['POST', '/v1/verifications/check', '{"id":"\\u0000","code":"123456"}'],
        ['POST', '/v1/verifications', '{"to":"+6281234000780","client":{"\\u0000":1}}'],
        ['GET', '/v1/verifications/%00', undefined],
        ['POST', '/v1/admin/lists', '{"list":"block","kind":"device","value":"x","note":"\\ud800"}', 'admin'],
        ['POST', '/v1/admin/pause', '{"prefix":"+99997","note":"\\udc00x"}', 'admin'],
        ['GET', '/v1/admin/events?device=%00', undefined, 'admin'],
      ];
      for (const [method, path, body, who] of cases) {
        const res = await raw(method, path, body, who === 'admin' ? t.adminKey : t.verifyKey);
        const text = await res.text();
        assert.equal(res.status, 400, `${method} ${path} ${body ?? ''}: ${text}`);
        assert.equal(JSON.parse(text).error.code, 'invalid_request');
        assert.match(JSON.parse(text).error.message, /NUL character or an unpaired UTF-16 surrogate/);
      }
      // Nothing happened: no message, the verification is still pending, no list entry, no pause.
      assert.equal(t.receiver.requests.length, delivered, 'no message sent');
      assert.equal((await t.request('GET', `/v1/verifications/${id}`)).body.status, 'pending');
      assert.equal((await t.request('GET', '/v1/admin/lists', undefined, { key: t.adminKey })).body.entries?.length ?? 0, 0);
      assert.deepEqual((await t.request('GET', '/v1/admin/pauses', undefined, { key: t.adminKey })).body.pauses ?? [], []);
      // A signed receipt is parsed by its route: the same rule.
      const body = JSON.stringify({ id: '\u0000', status: 'delivered' });
      const res = await fetch(`${t.url}/v1/receipts/webhook/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-otpshield-signature': signWebhookBody(WEBHOOK_SECRET, body, t.clock() / 1000) }, body });
      assert.equal(res.status, 400, await res.text());
      // And a well-formed pair (an emoji) is fine.
      const emoji = await t.request('POST', '/v1/admin/lists', { list: 'block', kind: 'device', value: 'dev-x', note: 'bot farm 🤖' }, { key: t.adminKey });
      assert.equal(emoji.status, 201, emoji.text);
    } finally {
      await t.close();
      await dispose(store);
    }
  });
}

await onEveryStore('unstorable text', suite, ['postgres']);
