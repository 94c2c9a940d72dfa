/**
 * `codes.webOtpDomain`: SMS end with the origin-bound `@host #code` line that WebOTP and the iOS/Android keyboards
 * read, so the code autofills only on that site. The renderer had it; nothing in the configuration turned it on
 * (a migration review).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp } from '../helpers/app.ts';
import { loadConfig, ConfigError } from '../../src/config/load.ts';
import { checkConfig } from '../../src/service/config-checks.ts';

const client = { ip: '36.72.80.1', userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 };

describe('codes.webOtpDomain', () => {
  it('ends each SMS with "@host #code", and no other channel\'s message', async () => {
    const t = await startTestApp({ config: { channels: ['sms', 'email'], codes: { webOtpDomain: 'login.example.com' } } });
    try {
      assert.equal((await t.request('POST', '/v1/verifications', { to: '+6281234580001', client })).status, 201);
      const sms = t.receiver.requests.at(-1)!.json as { message: string; code: string };
      assert.ok(sms.message.endsWith(`\n\n@login.example.com #${sms.code}`), sms.message);
      assert.equal((await t.request('POST', '/v1/verifications', { to: 'ann@example.org', channel: 'email', client: { ...client, ip: '36.72.80.2' } })).status, 201);
      const mail = t.receiver.requests.at(-1)!.json as { message: string };
      assert.doesNotMatch(mail.message, /@login\.example\.com/);
    } finally {
      await t.close();
    }
    // Without it, no such line.
    const plain = await startTestApp();
    try {
      assert.equal((await plain.request('POST', '/v1/verifications', { to: '+6281234580002', client })).status, 201);
      assert.doesNotMatch((plain.receiver.requests.at(-1)!.json as { message: string }).message, /\n@\S+ #\d+$/);
    } finally {
      await plain.close();
    }
  });

  it('refuses what is not a bare host name, at start-up and in config check', () => {
    for (const bad of ['https://example.com', 'example.com/login', 'exa mple.com']) {
      const cfg = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { codes: { webOtpDomain: bad } } as never });
      assert.throws(() => checkConfig(cfg), (err: unknown) => err instanceof ConfigError && /codes\.webOtpDomain/.test(err.message), bad);
    }
  });
});
