import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'otps-cfg-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('configuration', () => {
  it('defaults: SQLite under ./data, console sender outside production, sms only, port 8080', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.env, 'development');
    assert.equal(c.store.kind, 'sqlite');
    assert.equal(c.dataDir, './data');
    assert.deepEqual(c.senders, [{ type: 'console' }]);
    assert.deepEqual(c.channels, ['sms']);
    assert.equal(c.server.port, 8080);
  });

  it('reads YAML and JSON files, then environment overrides', () => {
    const y = file('a.yaml', 'appName: Acme\nserver:\n  port: 9000\ncodes:\n  length: 8\n');
    const c = loadConfig({ file: y, env: { OTPSHIELD_PORT: '9100' } });
    assert.equal(c.appName, 'Acme');
    assert.equal(c.server.port, 9100, 'env wins over the file');
    assert.equal(c.codes.length, 8);
    const j = file('b.json', JSON.stringify({ channels: ['sms', 'whatsapp'] }));
    assert.deepEqual(loadConfig({ file: j, env: {} }).channels, ['sms', 'whatsapp']);
  });

  it('OTPSHIELD_REDIS_URL alone selects the Redis store', () => {
    const c = loadConfig({ env: { OTPSHIELD_REDIS_URL: 'redis://127.0.0.1:6379' } });
    assert.equal(c.store.kind, 'redis');
  });

  it('a bad value stops start-up with a message naming the key', () => {
    const bad: [Record<string, unknown> | string, RegExp][] = [
      ['codes:\n  length: 3\n', /codes\.length/],
      ['server:\n  port: "eighty"\n', /server\.port/],
      ['channels: [sms, pigeon]\n', /channels/],
      ['unknownKey: 1\n', /unknown|additional|\(root\)/i],
      ['store:\n  kind: redis\n', /store\.redisUrl/],
      [': : :', /cannot parse/],
    ];
    for (const [text, re] of bad) {
      const p = file(`bad${Math.random()}.yaml`, String(text));
      assert.throws(() => loadConfig({ file: p, env: {} }), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), String(text));
    }
    assert.throws(() => loadConfig({ env: { OTPSHIELD_PORT: 'abc' } }), /OTPSHIELD_PORT/);
  });

  it('production refuses to start without a code secret, or with short codes', () => {
    assert.throws(() => loadConfig({ env: { NODE_ENV: 'production' } }), /secrets\.codeSecret/);
    const secret = 'x'.repeat(40);
    assert.equal(loadConfig({ env: { NODE_ENV: 'production', OTPSHIELD_CODE_SECRET: secret } }).senders.length, 0, 'no console sender in production');
    const p = file('short.yaml', 'codes:\n  length: 4\n');
    assert.throws(() => loadConfig({ file: p, env: { NODE_ENV: 'production', OTPSHIELD_CODE_SECRET: secret } }), /at least 6 digits/);
  });

  it('ignores prototype keys in the file', () => {
    const p = file('proto.json', '{"__proto__": {"polluted": true}, "appName": "Safe"}');
    const c = loadConfig({ file: p, env: {} });
    assert.equal(c.appName, 'Safe');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
