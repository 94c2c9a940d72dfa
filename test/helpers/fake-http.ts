/**
 * A real HTTP server on 127.0.0.1 standing in for an external service (Twilio, a CAPTCHA verifier, a
 * webhook receiver). Tests talk to it over real sockets, so the code under test runs its actual
 * `fetch` path; nothing ever leaves loopback.
 *
 *   const fake = await startFakeServer(() => ({ status: 201, json: { sid: 'SM1' } }));
 *   ... point the code at fake.url ...
 *   assert.equal(fake.requests[0]?.method, 'POST');
 *   await fake.close();
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query, as received (e.g. `/2010-04-01/Accounts/AC.../Messages.json`). */
  url: string;
  /** Node lowercases header names. */
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  /** The body parsed as application/x-www-form-urlencoded (last value wins), or undefined. */
  form: Record<string, string> | undefined;
}

export interface FakeResponse {
  status?: number;
  /** Sent with content-type application/json. Takes precedence over `body`. */
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  /** Delay before answering, e.g. to exercise client timeouts. Cancelled by close(). */
  delayMs?: number;
  /** Destroy the socket without answering, to simulate a network failure. */
  hangUp?: boolean;
}

export type FakeHandler = (req: RecordedRequest) => FakeResponse | void | Promise<FakeResponse | void>;

export interface FakeServer {
  /** `http://127.0.0.1:<port>` with no trailing slash. */
  url: string;
  /** Every request received, in arrival order. */
  requests: RecordedRequest[];
  /** Errors thrown by handlers (each also answered with a 500), so a test can assert there were none. */
  errors: unknown[];
  setHandler(fn: FakeHandler): void;
  /** Resolves once at least `n` requests have arrived; rejects after `timeoutMs` (default 2000). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const defaultHandler: FakeHandler = () => ({ status: 200, json: { ok: true } });

export async function startFakeServer(handler: FakeHandler = defaultHandler): Promise<FakeServer> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const errors: unknown[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  let closed = false;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body,
        json: tryJson(body),
        form: tryForm(body, req.headers['content-type']),
      };
      requests.push(recorded);
      for (const wake of [...waiters]) wake();
      void respond(recorded, res);
    });
  });

  async function respond(recorded: RecordedRequest, res: ServerResponse): Promise<void> {
    let reply: FakeResponse;
    try {
      reply = (await current(recorded)) ?? {};
    } catch (err) {
      errors.push(err);
      reply = { status: 500, json: { error: 'fake handler threw' } };
    }
    // The handler may have resolved after close(): never schedule work on a closed server.
    if (closed) {
      res.socket?.destroy();
      return;
    }
    const send = (): void => {
      if (res.destroyed) return;
      if (reply.hangUp) {
        res.socket?.destroy();
        return;
      }
      const headers: Record<string, string> = { ...reply.headers };
      let payload = reply.body ?? '';
      if (reply.json !== undefined) {
        payload = JSON.stringify(reply.json);
        headers['content-type'] ??= 'application/json';
      }
      res.writeHead(reply.status ?? 200, headers);
      res.end(payload);
    };
    if (reply.delayMs !== undefined && reply.delayMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, reply.delayMs);
      timers.add(timer);
    } else {
      send();
    }
  }

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    errors,
    setHandler(fn: FakeHandler) {
      current = fn;
    },
    waitFor(n: number, timeoutMs = 2000): Promise<void> {
      if (requests.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          if (requests.length < n) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`fake server: expected ${n} request(s) within ${timeoutMs} ms, got ${requests.length}`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    async close(): Promise<void> {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // Pending (delayed) responses and keep-alive sockets would otherwise hold close() open.
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function tryJson(body: string): unknown {
  if (body === '') return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

function tryForm(body: string, contentType: string | undefined): Record<string, string> | undefined {
  if (!contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) return undefined;
  return Object.fromEntries(new URLSearchParams(body));
}
