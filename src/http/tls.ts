/**
 * The sockets the service listens on: plain HTTP or HTTPS, with timeouts that close slow clients, and TLS
 * material that is re-read when its files change so a renewed certificate needs no restart.
 *
 * Fastify is given `serverFactory` from here (instead of its `https` option) because the same request
 * handler also serves the optional admin port, and every server built here must get the renewed
 * certificate; Fastify's own factory knows of neither.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { bareErrorResponse } from './errors.ts';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  reloadIntervalMs?: number;
}

export interface ListenerSettings {
  tls?: TlsFiles | undefined;
  requestTimeoutMs: number;
}

/** The certificate or key cannot be read or do not form a usable pair; names the file, never the contents. */
export class TlsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsFileError';
  }
}

export const DEFAULT_TLS_RELOAD_MS = 5000;
/** TLS 1.0/1.1 are deprecated (RFC 8996); Node's default is the same, stated here so it cannot drift. */
const MIN_TLS = 'TLSv1.2' as const;
const KEEP_ALIVE_MS = 5000;

/** Reads the pair and proves it usable (a key that does not match the certificate throws here, not mid-handshake). */
export function readTlsFiles(files: TlsFiles): SecureContextOptions {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
  } catch (err) {
    throw new TlsFileError(`cannot read server.tls.certFile ${files.certFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    key = readFileSync(files.keyFile);
  } catch (err) {
    throw new TlsFileError(`cannot read server.tls.keyFile ${files.keyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const material = { cert, key, minVersion: MIN_TLS };
  try {
    createSecureContext(material);
  } catch (err) {
    // OpenSSL's message says what is wrong (e.g. "key values mismatch") without echoing key material.
    throw new TlsFileError(`server.tls: ${files.certFile} and ${files.keyFile} are not a usable certificate and key: ${(err as Error).message}`);
  }
  return material;
}

export type NodeServer = HttpServer | HttpsServer;

export interface Listeners {
  readonly secure: boolean;
  /** For Fastify's `serverFactory`; may run more than once (Fastify binds every address of "localhost"). */
  factory(handler: RequestListener): NodeServer;
  /** One more server with the same handler, settings and certificate (the admin port). */
  extra(handler: RequestListener): NodeServer;
  /** Starts re-reading the TLS files when they change; returns the function that stops it. */
  watch(log: Logger): () => void;
  /** Re-reads the TLS files now. False (and the old certificate stays) when they are not a usable pair. */
  reload(log: Logger): boolean;
}

export function createListeners(s: ListenerSettings): Listeners {
  const servers: HttpsServer[] = [];
  let material = s.tls ? readTlsFiles(s.tls) : null;
  // Slow-client defences: a request must arrive whole within requestTimeoutMs (headers included: slowloris; a
  // connection that sends nothing is closed by the same clock), an idle keep-alive socket after KEEP_ALIVE_MS,
  // and Node checks for expired requests every second instead of its default 30 s, so the bound is what the
  // configuration says. No socket inactivity timeout: it also fired while a request was being handled (a
  // slow SMS provider), cutting the answer to a send whose code had gone out, so the client would send again.
  // requireHostHeader off: Node's own 400 for an HTTP/1.1 request without Host has an empty body and none of
  // our headers; the server refuses it in the error shape instead (server.ts).
  const options: ServerOptions = {
    connectionsCheckingInterval: 1000,
    requestTimeout: s.requestTimeoutMs,
    headersTimeout: s.requestTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_MS,
    requireHostHeader: false,
  };

  function make(handler: RequestListener): NodeServer {
    let server: NodeServer;
    if (material) {
      const https = createHttpsServer({ ...options, ...material }, handler);
      servers.push(https);
      server = https;
    } else server = createHttpServer(options, handler);
    // An Expect other than 100-continue: Node would answer 417 with an empty body.
    server.on('checkExpectation', (_req, res) => {
      const { status, headers, body } = bareErrorResponse('expectation_failed');
      res.writeHead(status, headers).end(body);
    });
    return server;
  }

  function reload(log: Logger): boolean {
    if (!s.tls) return false;
    try {
      material = readTlsFiles(s.tls);
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'TLS files changed but are not usable yet; keeping the current certificate');
      return false;
    }
    for (const server of servers) server.setSecureContext(material);
    log.info({ certFile: s.tls.certFile }, 'TLS certificate reloaded');
    return true;
  }

  return {
    secure: material !== null,
    factory: make,
    extra: make,
    reload,
    watch(log) {
      const tls = s.tls;
      if (!tls) return () => {};
      const interval = tls.reloadIntervalMs ?? DEFAULT_TLS_RELOAD_MS;
      // Polling (stat) rather than fs.watch: it survives the rename-into-place that certbot and Kubernetes
      // secret mounts use, where an inotify watch would stay on the old, deleted inode.
      const onChange = (cur: Stats, prev: Stats) => {
        if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) reload(log);
      };
      const files = [...new Set([tls.certFile, tls.keyFile])];
      for (const f of files) watchFile(f, { interval, persistent: false }, onChange);
      return () => {
        for (const f of files) unwatchFile(f, onChange);
      };
    },
  };
}
