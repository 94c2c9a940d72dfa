/**
 * The emergency switch: one admin action pauses all sends, a country's or a prefix's, at once, and resumes
 * them; every pause and resume is an audit event. Over the API and with the CLI on the same store.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { openStore } from '../../src/store/factory.ts';
import { client } from './support.ts';
import { withDatabase } from '../helpers/cli.ts';

describe('pausing a channel', () => {
  it('stops that channel only, on every number, and its resume brings it back; a name that is no channel is refused', async () => {
    const t = await startTestApp({ config: { channels: ['sms', 'whatsapp'] } });
    try {
      const admin = (path: string, body: unknown) => t.request('POST', path, body, { key: t.adminKey });
      const send = (to: string, channel: string, ip: string) => t.request('POST', '/v1/verifications', { to, channel, client: client(ip) });
      const p = await admin('/v1/admin/pause', { channel: 'WhatsApp', note: 'provider outage' });
      assert.equal(p.status, 200, p.text);
      assert.equal(p.body.scope, 'channel:whatsapp');
      const wa = await send('+6281234569101', 'whatsapp', '36.72.31.1');
      assert.equal(wa.status, 403, wa.text);
      assert.deepEqual(wa.body.error.reasons, ['paused']);
      assert.equal((await send('+6281234569101', 'sms', '36.72.31.2')).status, 201, 'sms still sends');
      assert.deepEqual((await admin('/v1/admin/resume', { channel: 'whatsapp' })).body, { scope: 'channel:whatsapp', resumed: true, stillPaused: [] });
      assert.equal((await send('+6281234569102', 'whatsapp', '36.72.31.3')).status, 201);
      const bad = await admin('/v1/admin/pause', { channel: 'pigeon' });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, /"pigeon" is not a channel \(sms, whatsapp, voice, email\)/);
    } finally {
      await t.close();
    }
  });

  it('a channel pause in an audit export replays as one', async () => {
    const { parseScopeName, scopeName } = await import('../../src/monitoring/pause.ts');
    for (const name of ['all', 'country:ID', 'prefix:+62812', 'channel:voice']) assert.equal(scopeName(parseScopeName(name)), name);
    assert.throws(() => parseScopeName('planet:mars'), /not a pause scope/);
  });
});

describe('pause and resume over the admin API', () => {
  let t: TestApp;
  let ip = 0;
  const send = (to: string) => t.request('POST', '/v1/verifications', { to, client: client(`36.72.30.${++ip}`) });
  const admin = (path: string, body?: unknown) => t.request(body === undefined ? 'GET' : 'POST', path, body, { key: t.adminKey });
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  it('pauses a country at once, and only that country', async () => {
    const p = await admin('/v1/admin/pause', { country: 'id', note: 'pumping from +62' });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.scope, 'country:ID');
    assert.equal(p.body.note, 'pumping from +62');
    const blocked = await send('+6281234569001');
    assert.equal(blocked.status, 403);
    assert.deepEqual(blocked.body.error.reasons, ['paused']);
    assert.equal((await send('+447400123456')).status, 201, 'GB still sends');
    const list = await admin('/v1/admin/pauses');
    assert.deepEqual(list.body.pauses.map((x: { scope: string }) => x.scope), ['country:ID']);

    const r = await admin('/v1/admin/resume', { country: 'ID' });
    assert.deepEqual(r.body, { scope: 'country:ID', resumed: true, stillPaused: [] });
    assert.equal((await send('+6281234569002')).status, 201);
    assert.deepEqual((await admin('/v1/admin/resume', { country: 'ID' })).body, { scope: 'country:ID', resumed: false, stillPaused: [] });
  });

  it('pauses a prefix, and everything', async () => {
    await admin('/v1/admin/pause', { prefix: '+62 813' });
    assert.equal((await send('+6281334569003')).status, 403);
    assert.equal((await send('+6281234569004')).status, 201, '+62812 is not under +62813');
    await admin('/v1/admin/resume', { prefix: '+62813' });

    await admin('/v1/admin/pause', { all: true });
    assert.equal((await send('+447400123457')).status, 403);
    assert.equal((await send('+6281234569005')).status, 403);
    // A bare resume ("all") says what it leaves paused.
    await admin('/v1/admin/pause', { country: 'NG' });
    assert.deepEqual((await admin('/v1/admin/resume', { all: true })).body, { scope: 'all', resumed: true, stillPaused: ['country:NG'] });
    await admin('/v1/admin/resume', { country: 'NG' });
    assert.equal((await send('+447400123458')).status, 201);
  });

  it('a pause with a TTL ends by itself', async () => {
    await admin('/v1/admin/pause', { country: 'GB', ttlSeconds: 60 });
    assert.equal((await send('+447400123459')).status, 403);
    t.clock.advance(61_000);
    assert.equal((await send('+447400123460')).status, 201);
  });

  it('records every pause and resume as an event', async () => {
    const events = await t.ctx.store.queryEvents({ limit: 100, order: 'asc' });
    const switches = events.filter((e) => e.type === 'pause' || e.type === 'resume').map((e) => `${e.type} ${(e.data as { scope: string }).scope}`);
    assert.deepEqual(switches, [
      'pause country:ID', 'resume country:ID', 'resume country:ID',
      'pause prefix:+62813', 'resume prefix:+62813', 'pause all', 'pause country:NG', 'resume all', 'resume country:NG', 'pause country:GB',
    ]);
    const first = events.find((e) => e.type === 'pause')!;
    assert.ok(typeof (first.data as { by?: unknown }).by === 'string', 'who paused (the API key id)');
  });

  it('refuses unclear scopes and non-admin keys', async () => {
    for (const body of [{}, { all: true, country: 'ID' }, { country: 'Indonesia' }, { prefix: '62812' }, { all: false }]) {
      const r = await admin('/v1/admin/pause', body);
      assert.equal(r.status, 400, JSON.stringify(body));
    }
    // Two letters no phone number has: a pause that would pause nothing.
    const uk = await admin('/v1/admin/pause', { country: 'uk' });
    assert.equal(uk.status, 400, uk.text);
    assert.match(uk.body.error.message, /the United Kingdom is GB/);
    assert.equal((await t.request('POST', '/v1/admin/pause', { all: true }, { key: t.verifyKey })).status, 403);
    assert.equal((await t.request('POST', '/v1/admin/pause', { all: true }, { key: null })).status, 401);
  });
});

describe('otp-shield pause / resume', () => {
  it('writes the same pause to the configured store', async () => {
    // A data dir with a database, as the server leaves it (the CLI refuses one without).
    const dir = await withDatabase(mkdtempSync(join(tmpdir(), 'otps-pause-cli-')));
    try {
      const configFile = join(dir, 'otp-shield.json');
      writeFileSync(configFile, JSON.stringify({ dataDir: dir, secrets: { codeSecret: 'test-code-secret-0123456789abcdefghijkl', previousCodeSecrets: [] }, logLevel: 'silent' }));
      const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--config', configFile, ...args], { encoding: 'utf8', env: { ...process.env, NODE_ENV: 'test' } });
      const ch = run('pause', '--channel', 'voice');
      assert.equal(ch.status, 0, ch.stderr);
      assert.match(ch.stdout, /paused channel:voice/);
      assert.equal(run('resume', '--channel', 'voice').status, 0);
      const p = run('pause', '--country', 'ng', '--note', 'test');
      assert.equal(p.status, 0, p.stderr);
      assert.match(p.stdout, /paused country:NG/);
      const l = run('pauses', '--json');
      // The shape of GET /v1/admin/pauses.
      const listed = JSON.parse(l.stdout).pauses as { scope: string; since: string; note: string | null; by: string | null; until: string | null }[];
      assert.deepEqual(listed.map((x) => [x.scope, x.note, x.by, x.until]), [['country:NG', 'test', 'cli', null]]);
      assert.ok(Date.parse(listed[0]!.since) > 0, listed[0]!.since);
      // --ttl: a duration as lists take it, or minutes.
      const timed = run('pause', '--prefix', '+62812', '--ttl', '2h');
      assert.equal(timed.status, 0, timed.stderr);
      const until = Date.parse(/until (\S+)/.exec(timed.stdout)![1]!);
      assert.ok(Math.abs(until - Date.now() - 2 * 3_600_000) < 60_000, timed.stdout);
      const minutes = run('pause', '--prefix', '+62813', '--ttl', '90');
      assert.match(minutes.stdout, /until/);
      const badTtl = run('pause', '--prefix', '+62814', '--ttl', 'soon');
      assert.notEqual(badTtl.status, 0);
      assert.match(badTtl.stderr, /--ttl "soon" is not a duration/);
      assert.equal(run('resume', '--prefix', '+62812').status, 0);
      assert.equal(run('resume', '--prefix', '+62813').status, 0);
      const bad = run('pause', '--country', 'NG', '--prefix', '+234');
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /give one of --country, --prefix or --channel, not several/);
      const stays = run('resume');
      assert.equal(stays.status, 0, stays.stderr);
      assert.match(stays.stdout, /^all was not paused\nstill paused: country:NG \(otp-shield pauses; resume each with --country, --prefix or --channel\)/);
      const r = run('resume', '--country', 'NG', '--note', 'done');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /resumed country:NG/);

      const store = await openStore({ kind: 'sqlite', sqlitePath: join(dir, 'otp-shield.db') });
      try {
        assert.deepEqual(await store.listSettings('pause:'), []);
        const ev = await store.queryEvents({ limit: 20, order: 'asc' });
        assert.deepEqual(ev.map((e) => [e.type, (e.data as { scope?: string }).scope]), [
          ['pause', 'channel:voice'], ['resume', 'channel:voice'], ['pause', 'country:NG'], ['pause', 'prefix:+62812'], ['pause', 'prefix:+62813'],
          ['resume', 'prefix:+62812'], ['resume', 'prefix:+62813'], ['resume', 'all'], ['resume', 'country:NG'],
        ]);
        assert.ok(ev.every((e) => (e.data as { by?: string }).by === 'cli'));
        assert.equal((ev.at(-1)!.data as { note?: string }).note, 'done');
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
