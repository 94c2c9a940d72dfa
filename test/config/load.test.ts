import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'otps-cfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
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

  it('OTPSHIELD_REDIS_URL alone selects the Redis store, but not over a store.kind the file names', () => {
    const c = loadConfig({ env: { OTPSHIELD_REDIS_URL: 'redis://127.0.0.1:6379' } });
    assert.equal(c.store.kind, 'redis');
    // A leftover variable on one pod must not split the fleet's limits over two stores.
    const pg = file('pg.yaml', 'store:\n  kind: postgres\n  postgresUrl: postgres://127.0.0.1/test\n');
    assert.equal(loadConfig({ file: pg, env: { OTPSHIELD_REDIS_URL: 'redis://127.0.0.1:6379' } }).store.kind, 'postgres');
    assert.equal(loadConfig({ file: pg, env: { OTPSHIELD_REDIS_URL: 'redis://127.0.0.1:6379', OTPSHIELD_STORE: 'redis' } }).store.kind, 'redis', 'OTPSHIELD_STORE does choose');
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
    // A misspelt key is named as unknown, and a policy section put into the configuration says where it goes
    // (both were "schema is false").
    assert.throws(() => loadConfig({ env: {}, overrides: { server: { prot: 1 } } as never }), /^Error: unknown configuration key "server\.prot"|unknown configuration key "server\.prot"/);
    for (const [doc, key] of [[{ monitoring: { budgets: {} } }, 'monitoring.budgets'], [{ risk: { challengeAt: 40 } }, 'risk']] as const) {
      assert.throws(() => loadConfig({ env: {}, overrides: doc as never }), (e: unknown) => e instanceof ConfigError && e.message.startsWith(`unknown configuration key "${key}": it is a policy setting`) && /PUT \/v1\/admin\/policy/.test(e.message));
    }
  });

  it('cors.origins must be origins as browsers send them (a near miss could never match)', () => {
    for (const [origin, re] of [
      ['https://shop.example/', /write https:\/\/shop\.example \(no path/],
      ['https://Shop.example', /write https:\/\/shop\.example/],
      ['https://shop.example:443', /write https:\/\/shop\.example/],
      ['shop.example', /is not an origin/],
      ['*', /is not allowed/],
      ['ftp://shop.example', /not an http\(s\) origin/],
    ] as const) {
      assert.throws(() => loadConfig({ env: { OTPSHIELD_CORS_ORIGINS: origin } }), (e: unknown) => e instanceof ConfigError && /cors\.origins/.test((e as Error).message) && re.test((e as Error).message), origin);
    }
    assert.deepEqual(loadConfig({ env: { OTPSHIELD_CORS_ORIGINS: 'https://shop.example,http://localhost:3000,http://[::1]:8080' } }).cors.origins, ['https://shop.example', 'http://localhost:3000', 'http://[::1]:8080']);
  });

  it('a file that does not parse is reported by line and column, without quoting its lines (they may hold a secret)', () => {
    const p = file(`unclosed${Math.random()}.yaml`, 'secrets:\n  codeSecret: "QUOTED-SECRET-VALUE-0123456789\nserver:\n  port: 8080\n');
    assert.throws(
      () => loadConfig({ file: p, env: {} }),
      (e: unknown) => e instanceof ConfigError && /cannot parse .* at line \d+, column \d+$/.test(e.message) && !e.message.includes('QUOTED-SECRET') && !e.message.includes('\n'),
    );
    // JSON's own messages quote the source on their first line (a review found the JSON path still printing it).
    for (const [text, where] of [['{"secrets":{"codeSecret": JSON-SECRET-VALUE}}', /not valid JSON$/], ['{\n "secrets": {"codeSecret": "JSON-SECRET-VALUE" x}}', /not valid JSON at line 2, column \d+$/]] as const) {
      const j = file(`broken${Math.random()}.json`, text);
      assert.throws(() => loadConfig({ file: j, env: {} }), (e: unknown) => e instanceof ConfigError && where.test(e.message) && !e.message.includes('JSON-SECRET'), text);
    }
  });

  it('production refuses to start without a code secret, or with short codes', () => {
    assert.throws(() => loadConfig({ env: { NODE_ENV: 'production' } }), /secrets\.codeSecret/);
    const secret = 'x'.repeat(40);
    assert.equal(loadConfig({ env: { NODE_ENV: 'production', OTPSHIELD_CODE_SECRET: secret } }).senders.length, 0, 'no console sender in production');
    const p = file('short.yaml', 'codes:\n  length: 4\n');
    assert.throws(() => loadConfig({ file: p, env: { NODE_ENV: 'production', OTPSHIELD_CODE_SECRET: secret } }), /at least 6 digits/);
  });

  it('production refuses a code lifetime above 600 s (NIST SP 800-63B, ASVS 6.5.5)', () => {
    const env = { NODE_ENV: 'production', OTPSHIELD_CODE_SECRET: 'x'.repeat(40) };
    assert.equal(loadConfig({ file: file('ttl600.yaml', 'codes:\n  ttlSeconds: 600\n'), env }).codes.ttlSeconds, 600);
    assert.throws(() => loadConfig({ file: file('ttl601.yaml', 'codes:\n  ttlSeconds: 601\n'), env }), /codes\.ttlSeconds/);
    assert.equal(loadConfig({ file: file('ttl3600.yaml', 'codes:\n  ttlSeconds: 3600\n'), env: {} }).codes.ttlSeconds, 3600, 'allowed outside production');
  });

  it('a store URL in the file alone selects its store; both without store.kind is refused', () => {
    assert.equal(loadConfig({ file: file('r.yaml', 'store:\n  redisUrl: redis://127.0.0.1:6379\n'), env: {} }).store.kind, 'redis');
    assert.equal(loadConfig({ file: file('p.yaml', 'store:\n  postgresUrl: postgres://127.0.0.1/test\n'), env: {} }).store.kind, 'postgres');
    assert.equal(loadConfig({ env: { OTPSHIELD_POSTGRES_URL: 'postgres://127.0.0.1/test' } }).store.kind, 'postgres');
    assert.equal(loadConfig({ file: file('rk.yaml', 'store:\n  kind: sqlite\n  redisUrl: redis://127.0.0.1:6379\n'), env: {} }).store.kind, 'sqlite', 'an explicit kind wins');
    assert.throws(() => loadConfig({ file: file('rp.yaml', 'store:\n  redisUrl: redis://127.0.0.1:6379\n  postgresUrl: postgres://127.0.0.1/test\n'), env: {} }), /store\.kind/);
  });

  it('env in the file sets the mode with its defaults (production: no console sender, no demo or dashboard)', () => {
    const c = loadConfig({ file: file('prod.yaml', 'env: production\n'), env: { OTPSHIELD_CODE_SECRET: 'x'.repeat(40) } });
    assert.equal(c.env, 'production');
    assert.deepEqual(c.senders, []);
    assert.equal(c.web.demo, false);
    assert.equal(c.web.dashboard, false);
    assert.throws(() => loadConfig({ file: file('prod2.yaml', 'env: production\n'), env: {} }), /secrets\.codeSecret/);
  });

  it('OTPSHIELD_PORT wins over PORT', () => {
    assert.equal(loadConfig({ env: { OTPSHIELD_PORT: '9001', PORT: '9002' } }).server.port, 9001);
    assert.equal(loadConfig({ env: { PORT: '9002' } }).server.port, 9002);
  });

  it('the captcha section is validated: provider, secret, known options', () => {
    const ok = loadConfig({ file: file('c.yaml', 'captcha:\n  provider: turnstile\n  secret: s3cret\n  expectedHostname: example.com\n'), env: {} });
    assert.equal(ok.captcha?.provider, 'turnstile');
    const bad: [string, RegExp][] = [
      ['captcha:\n  provider: nope\n  secret: s\n', /captcha\.provider/],
      ['captcha:\n  provider: hcaptcha\n', /captcha/],
      ['captcha:\n  provider: hcaptcha\n  secret: s\n  minscore: 0.5\n', /captcha/],
      ['captcha:\n  provider: recaptcha\n  secret: s\n  minScore: 2\n', /captcha\.minScore/],
    ];
    for (const [text, re] of bad) assert.throws(() => loadConfig({ file: file(`c${Math.random()}.yaml`, text), env: {} }), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), text);
  });

  it('ignores prototype keys in the file', () => {
    const p = file('proto.json', '{"__proto__": {"polluted": true}, "appName": "Safe"}');
    const c = loadConfig({ file: p, env: {} });
    assert.equal(c.appName, 'Safe');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
