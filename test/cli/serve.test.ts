/**
 * `otp-shield serve` as an operator runs it: stdout carries only the JSON log (one object a line, what a log
 * shipper reads), the human banner goes to stderr, and the console sender's messages too. A real child process
 * in development mode (log level info), sending a real code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli } from '../helpers/cli.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

test('serve: stdout is JSON log lines only; the banner and console-sent messages go to stderr', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'otps-serve-'));
  // A policy without bot evidence requirements, so a bare send is allowed and the console sender prints.
  const created = await cli(dir, ['keys', 'create', '--scope', 'verify', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const key = (JSON.parse(created.stdout) as { key: string }).key;
  writeFileSync(join(dir, 'otp-shield.yaml'), 'senders:\n  - type: console\n    name: dev-console\n');

  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTPSHIELD_') && k !== 'NODE_TEST_CONTEXT' && k !== 'NODE_OPTIONS') env[k] = v;
  Object.assign(env, { NODE_ENV: 'development', OTPSHIELD_DATA_DIR: dir, OTPSHIELD_PORT: '0', OTPSHIELD_HOST: '127.0.0.1' });
  const proc = spawn(process.execPath, ['--import', TSX, MAIN, 'serve'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not start:\n${stderr}\n${stdout}`)), 90_000);
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => reject(new Error(`exited with ${code}:\n${stderr}\n${stdout}`)));
  });
  try {
    const res = await fetch(`${url}/v1/verifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: '+14155550123', channel: 'sms', client: { ip: '203.0.113.9', elapsedMs: 5000 } }),
    });
    const body = (await res.json()) as { status?: string; error?: unknown };
    assert.equal(res.status, 201, JSON.stringify(body));
    // The console sender's block reaches stderr once the send has run.
    for (let i = 0; i < 100 && !/\d{6}/.test(stderr.split('listening on')[1] ?? ''); i++) await new Promise((r) => setTimeout(r, 50));
  } finally {
    proc.kill('SIGTERM');
    // Already exited (its exit event gone) or not yet: waiting on the event alone hung in the first case.
    await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r(null) : proc.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = stdout.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0, 'the log has lines');
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a stdout line that is not JSON: ${line}`);
  const listening = lines.map((l) => JSON.parse(l) as { msg?: string; address?: string; store?: string; senders?: string[] }).find((r) => r.msg === 'listening');
  assert.equal(listening?.address, url, 'the log records where it listens');
  // Senders by the name events, metrics and alerts use (an on-call review could not tell two webhooks apart).
  assert.deepEqual(listening?.senders, ['dev-console (console)']);
  assert.match(stderr, /senders: dev-console \(console\)\)/);
  assert.equal(listening?.store, 'sqlite');
  assert.match(stderr, /OTP Shield .* listening on/);
  assert.match(stderr, /\+14155550123/, 'the console sender printed the message on stderr');
});
