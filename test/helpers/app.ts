/**
 * Starts the real OTP Shield HTTP server on 127.0.0.1 for a test: real store (SQLite in a temp folder
 * unless given another), a webhook sender pointed at a fake receiver on 127.0.0.1 (the test reads the
 * codes from there, as an integrator's own sending stack would), an injectable clock, and two API keys.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { buildContext, type AppContext } from '../../src/service/context.ts';
import { buildServer } from '../../src/http/server.ts';
import { createApiKey } from '../../src/service/api-keys.ts';
import type { Store } from '../../src/store/interface.ts';
import { startFakeServer, type FakeServer } from './fake-http.ts';
import { deepMerge } from '../../src/lib/merge.ts';

export const WEBHOOK_SECRET = 'test-webhook-secret-0123456789abcdef';

export interface TestClock {
  now: number;
  (): number;
  advance(ms: number): void;
}

export function testClock(start = Date.parse('2026-11-23T08:00:00.000Z')): TestClock {
  const fn = (() => fn.now) as TestClock;
  fn.now = start;
  fn.advance = (ms: number) => {
    fn.now += ms;
  };
  return fn;
}

export interface TestApp {
  url: string;
  app: FastifyInstance;
  ctx: AppContext;
  clock: TestClock;
  receiver: FakeServer;
  verifyKey: string;
  adminKey: string;
  dataDir: string;
  /** POST/GET JSON with the verify key (or `key`), returning status, headers and parsed body. */
  request(method: string, path: string, body?: unknown, opts?: { key?: string | null; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  /** The code most recently delivered to `to` (read from the webhook receiver). */
  lastCode(to: string): string | null;
  close(): Promise<void>;
  /**
   * Close the server, its receiver and its data directory, and leave the store open: an app on another app's
   * store (a second instance on one Redis), or on a store the test disposes of itself.
   */
  detach(): Promise<void>;
}

export async function startTestApp(opts: { config?: Record<string, unknown>; store?: Store; clock?: TestClock; keepDataDir?: string; log?: Logger } = {}): Promise<TestApp> {
  const receiver = await startFakeServer(() => ({ status: 200, json: { ok: true } }));
  const dataDir = opts.keepDataDir ?? mkdtempSync(join(tmpdir(), 'otps-test-'));
  const clock = opts.clock ?? testClock();
  const base: Record<string, unknown> = {
    dataDir,
    server: { host: '127.0.0.1', port: 0 },
    senders: [{ type: 'webhook', url: `${receiver.url}/deliver`, secret: WEBHOOK_SECRET }],
    secrets: { codeSecret: 'test-code-secret-0123456789abcdefghijkl', previousCodeSecrets: [] },
    logLevel: 'silent',
  };
  let ctx: AppContext;
  let app: FastifyInstance;
  let address: string;
  try {
    const cfg: Config = loadConfig({ env: { NODE_ENV: 'test' }, overrides: deepMerge(base, opts.config ?? {}) as Partial<Config> });
    ctx = await buildContext(cfg, { clock, ...(opts.store ? { store: opts.store } : {}), ...(opts.log ? { log: opts.log } : {}) });
    app = await buildServer(ctx);
    address = await app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    // A failed start must not leave the receiver running: it would keep the test process alive.
    await receiver.close();
    throw err;
  }
  const verifyKey = (await createApiKey(ctx.store, { scopes: ['verify'], name: 'test-verify', now: clock() })).key;
  const adminKey = (await createApiKey(ctx.store, { scopes: ['admin'], name: 'test-admin', now: clock() })).key;

  const detach = async () => {
    await app.close();
    await receiver.close();
    if (!opts.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    url: address,
    app,
    ctx,
    clock,
    receiver,
    verifyKey,
    adminKey,
    dataDir,
    async request(method, path, body, o = {}) {
      const key = o.key === undefined ? verifyKey : o.key;
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (key) headers.authorization = `Bearer ${key}`;
      if (body !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json';
      const res = await fetch(address + path, { method, headers, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    lastCode(to: string) {
      for (let i = receiver.requests.length - 1; i >= 0; i--) {
        const j = receiver.requests[i]!.json as { to?: string; code?: string } | undefined;
        if (j?.to === to && j.code) return j.code;
      }
      return null;
    },
    async close() {
      // The store closes before its data directory goes (SQLite writes to its files as it closes).
      await app.close();
      await ctx.close();
      await receiver.close();
      if (!opts.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    detach,
  };
}

/** A check's answer without the verification it echoes: the outcome a test compares (`status`, `attemptsLeft`). */
export function outcome(body: unknown): unknown {
  if (body === null || typeof body !== 'object') return body;
  const { verification: _verification, ...rest } = body as Record<string, unknown>;
  return rest;
}
