/**
 * Tools the attack suite shares: what an abuser's script would have (raw sockets, header spoofing, a
 * proof-of-work solver, a TLS client that trusts a test CA) plus the bookkeeping an attack test needs to
 * say "nothing was lost": deliveries per number as the fake SMS provider saw them, and captured log lines.
 */
import { createHash, randomInt } from 'node:crypto';
import { Writable } from 'node:stream';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../../src/config/schema.ts';
import { makeLogger } from '../../src/service/context.ts';
import { normalizePhone } from '../../src/signals/phone.ts';
import type { TestApp } from '../helpers/app.ts';

/** Client evidence that looks like a person on a phone in Indonesia (no rule fires on it). */
export const client = (ip: string, extra: Record<string, unknown> = {}) => ({
  ip,
  userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130',
  acceptLanguage: 'id-ID',
  elapsedMs: 5400,
  ...extra,
});

/** Indonesian mobile ranges: spreading test numbers over them keeps the SMS-pumping detector (which watches
 * prefixes and dense blocks of numbers) out of tests that are about something else. */
const ID_MOBILE = ['811', '812', '813', '821', '822', '823', '851', '852', '853', '814', '815', '816', '855', '856', '857', '858', '817', '818', '819', '859', '877', '878', '831', '832', '833', '838', '895', '896', '897', '898', '899'];
const used = new Set<string>();
/** A fresh, valid Indonesian mobile number, random across ranges (never sequential). */
export function freshNumber(): string {
  for (;;) {
    const prefix = ID_MOBILE[randomInt(ID_MOBILE.length)]!;
    const n = `+62${prefix}${String(randomInt(10_000_000, 100_000_000))}`;
    if (used.has(n) || !normalizePhone(n).ok) continue;
    used.add(n);
    return n;
  }
}

/** A public IPv4 address in Indonesia's 36.72.0.0/16 (so IP limits apply: private ranges have no IP identity). */
export function ipFor(n: number): string {
  return `36.72.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

/** What the fake SMS provider received: one entry per message, oldest first. */
export function deliveries(t: TestApp, to?: string): { to: string; code: string; id: string; at: number }[] {
  const out: { to: string; code: string; id: string; at: number }[] = [];
  for (const r of t.receiver.requests) {
    const j = r.json as { to?: string; code?: string; id?: string } | undefined;
    if (!j?.to || !j.code) continue;
    if (to !== undefined && j.to !== to) continue;
    out.push({ to: j.to, code: j.code, id: j.id ?? '', at: Number(r.headers['x-otpshield-timestamp'] ?? 0) * 1000 });
  }
  return out;
}

/**
 * Solves an ALTCHA v1 challenge (find n with SHA-256(salt + n) = challenge) and returns the `client.pow`
 * payload. Synchronous node:crypto: an attacker's farm is at least this fast, and it keeps tests quick.
 */
export function solvePow(c: { algorithm: string; challenge: string; salt: string; signature: string; maxnumber: number }): string {
  for (let n = 0; n <= c.maxnumber; n++) {
    if (createHash('sha256').update(c.salt + n).digest('hex') === c.challenge) {
      return Buffer.from(JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number: n, salt: c.salt, signature: c.signature })).toString('base64');
    }
  }
  throw new Error('no solution found');
}

/** Every response an attack saw, so a test can search them all at the end (for codes, secrets…). */
export class Transcript {
  readonly texts: string[] = [];
  add(res: { status: number; headers: Headers; text: string }): typeof res {
    this.texts.push(`${res.status}\n${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${res.text}`);
    return res;
  }
  find(needle: RegExp): string | undefined {
    return this.texts.find((t) => needle.test(t));
  }
}

/** A code as a whole token: not part of a longer digit run (timestamps, ids). */
export const codePattern = (code: string) => new RegExp(`(?<![0-9])${code}(?![0-9])`);

/** The service's own logger (`makeLogger`), writing into memory instead of stdout. */
export function captureLogs(cfg: Config): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: makeLogger(cfg, sink), lines };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  cert: PeerCertificate | null;
}

/** One HTTPS request on a fresh connection (so a reloaded certificate is seen), trusting `ca`. */
export function httpsCall(url: string, opts: { ca: string | Buffer; method?: string; headers?: Record<string, string>; body?: string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, ca: opts.ca, agent: false }, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate?.() ?? null;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), cert }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Writes raw bytes to the server and reports what came back and whether the server closed the socket. */
export function rawSocket(url: string): { socket: Socket; received: () => string; closed: Promise<void> } {
  const u = new URL(url);
  const socket = connect({ host: u.hostname, port: Number(u.port) });
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => data, closed };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `p` settles, or rejects with `what` after `ms` (a bound that is a failure, not a timing claim). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
