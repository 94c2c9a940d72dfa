/**
 * Which store errors mean "the store is not available right now" rather than "a bug": the server answers
 * those with 503 `unavailable` and `Retry-After` (clients retry; operators see an outage, not a wave of
 * internal errors), and `serve` reports them at start-up as one line naming the store.
 *
 * Recognised by the errors' own marks, since the drivers throw their own classes:
 * - network: Node's socket error codes (refused, reset, timed out, unreachable, DNS);
 * - Redis (ioredis): the retry limit per command, a closed connection, a command timeout, and the server's
 *   replies that say it cannot serve now (loading, busy script, out of memory, read-only replica, no master);
 * - PostgreSQL (pg): SQLSTATE classes 08 (connection), 53 (insufficient resources), 57P (shut down, cannot
 *   connect now), 57014 (a statement cancelled by statement_timeout), 25006 (a write on a read-only server: a
 *   standby, a demoted primary), the pool's connection timeouts and
 *   terminations, and the client's query timeout;
 * - SQLite: busy or locked database, full disk, I/O errors, a file that cannot be opened or written.
 * Anything else (a Lua script error, a constraint violation, a programming error) stays a 500.
 */

const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
const REDIS_REPLIES = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;
const REDIS_MESSAGES = /^(Reached the max retries per request limit|Connection is closed|Command timed out|Stream isn't writeable)/;
const PG_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|Query read timeout)/;
const SQLITE_CODES = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY)/;

/**
 * The store cannot serve this process now, by our own finding (an SQLite file migrated by a newer version
 * while this one runs): 503 and a failing readiness probe, like an outage.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export function isStoreUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'StoreUnavailableError') return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NET_CODES.has(code) || SQLITE_CODES.test(code)) return true;
    // SQLSTATE: 5 characters.
    // 57014: a statement the server cancelled (statement_timeout): rolled back, so a retry is safe.
    // 25006: a write on a read-only server (a standby, a primary demoted by a failover): nothing was written.
    if (/^(08|53)[0-9A-Z]{3}$/.test(code) || /^57P0[1-4]$/.test(code) || code === '57014' || code === '25006') return true;
  }
  if (err.name === 'MaxRetriesPerRequestError') return true;
  if (err.name === 'ReplyError') return REDIS_REPLIES.test(err.message);
  if (REDIS_MESSAGES.test(err.message) || PG_MESSAGES.test(err.message)) return true;
  // AggregateError from a connection attempt to several addresses (localhost → ::1 and 127.0.0.1).
  if (err instanceof AggregateError) return err.errors.some(isStoreUnavailable);
  return false;
}

/**
 * A store that answers but cannot be used (a Redis Cluster): the operator's to fix, reported at start-up as
 * one line without a stack (its name is the CLI's mark for that, as for configuration errors).
 */
export class UnsupportedStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
