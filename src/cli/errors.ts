/**
 * How the command line reports failures. Two kinds are the user's to fix and get one line, no stack:
 * usage and configuration errors (`ConfigError`), and file-system errors (a path that does not exist, is a
 * directory, is not writable …: Node's system errors, which carry a `code` such as ENOENT and a `syscall`).
 * Anything else is a bug and keeps its stack, so it can be reported and debugged.
 */
import { createWriteStream, statSync, accessSync, constants, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { dirname } from 'node:path';
import { ConfigError } from '../config/load.ts';
import { isStoreUnavailable } from '../store/errors.ts';

/** Error codes of Node system calls that mean "this path cannot be used", not "the program is wrong". */
const FS_CODES = new Set(['ENOENT', 'EISDIR', 'EEXIST', 'EACCES', 'EPERM', 'ENOTDIR', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENAMETOOLONG', 'ELOOP', 'EMFILE', 'ENFILE', 'EBUSY', 'ETXTBSY', 'EFBIG', 'ENXIO']);

/** A Node system error about a file (`ENOENT: no such file or directory, open '/x'`). */
export function isFileSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string; syscall: string } {
  if (!(err instanceof Error)) return false;
  const e = err as NodeJS.ErrnoException;
  return typeof e.code === 'string' && FS_CODES.has(e.code) && typeof e.syscall === 'string';
}

/** `ENOENT: no such file or directory` from Node's `ENOENT: no such file or directory, open '/x'`. */
function reason(e: NodeJS.ErrnoException): string {
  const m = /^([A-Z]+: [^,]*)/.exec(e.message);
  return m ? m[1]! : `${e.code}`;
}

/**
 * A file-system error as a one-line `cannot write /x: ENOENT: no such file or directory` (a ConfigError).
 * `path` names the file when Node's error does not (a read of a directory does not say which).
 */
export function fileError(err: unknown, action: 'read' | 'write' | 'create', path: string): unknown {
  return isFileSystemError(err) ? new ConfigError(`cannot ${action} ${err.path ?? path}: ${reason(err)}`) : err;
}

/** better-sqlite3's errors (a file that is not a database, a corrupt one, a locked one): the operator's to fix. */
export function isSqliteError(err: unknown): err is Error & { code?: string } {
  return err instanceof Error && err.name === 'SqliteError';
}

/** The text `otp-shield: …` prints for an error that ended a command. */
export function formatCliError(err: unknown): string {
  if (err instanceof Error && err.name === 'ConfigError') return err.message;
  if (isFileSystemError(err)) return err.message;
  if (isStoreUnavailable(err)) return `the store is unavailable: ${(err as Error).message}`;
  if (isSqliteError(err)) return `the SQLite database cannot be used: ${err.message}${err.code ? ` (${err.code})` : ''}`;
  if (err instanceof Error) return err.stack ?? err.message;
  return String(err);
}

/**
 * End a file output: resolves when its data is on its way to the file, rejects with the write error that
 * ended it (ENOSPC …) rather than with "cannot end a destroyed stream", as one line naming `path`.
 */
export function closeOutput(out: Writable, path: string): Promise<void> {
  if (out.errored) return Promise.reject(fileError(out.errored, 'write', path));
  if (out.destroyed) return Promise.resolve();
  return new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(fileError(err, 'write', path)) : resolve())));
}

/**
 * Open `path` for writing before any work is done, so an unwritable output fails at once with one line
 * (instead of an unhandled 'error' event after the work). Later write errors are reported by the writers.
 */
export async function openOutput(path: string): Promise<WriteStream> {
  const out = createWriteStream(path);
  try {
    await new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', reject);
    });
  } catch (err) {
    throw fileError(err, 'write', path);
  }
  // Keep an error listener: a failed write (disk full) must reject the writer, not crash the process.
  out.on('error', () => {});
  return out;
}

/**
 * Check, without creating anything, that `path` could be written: not a directory, and the file (or, if
 * it does not exist, its folder) writable. For outputs written only at the end of a long run.
 */
export function checkWritable(path: string): void {
  try {
    let st;
    try {
      st = statSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st?.isDirectory()) throw new ConfigError(`cannot write ${path}: it is a directory`);
    if (st) accessSync(path, constants.W_OK);
    else {
      const dir = dirname(path);
      if (!statSync(dir).isDirectory()) throw new ConfigError(`cannot write ${path}: ${dir} is not a directory`);
      accessSync(dir, constants.W_OK);
    }
  } catch (err) {
    throw isFileSystemError(err) ? new ConfigError(`cannot write ${path}: ${reason(err)}`) : err;
  }
}

/** Check that `path` can be read as a file: exists and is not a directory. */
export function checkReadable(path: string, what: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(`${what} not found: ${path}`);
    throw fileError(err, 'read', path);
  }
  if (st.isDirectory()) throw new ConfigError(`cannot read ${what} ${path}: it is a directory`);
}

/** Wait until `out` can take more, or reject with its error (also one it already had: it will never drain). */
export function drained(out: NodeJS.WritableStream): Promise<void> {
  const failed = (out as Partial<Writable>).errored;
  if (failed) return Promise.reject(failed);
  if ((out as Partial<Writable>).destroyed) return Promise.reject(new Error('the output was closed'));
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      out.removeListener('drain', onDrain);
      out.removeListener('error', done);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    out.once('drain', onDrain);
    out.once('error', done);
  });
}

/**
 * Refuse writing `output` when it is the file `input` (the same file by device and inode, whatever the path
 * says): it would be truncated before it is read. Paths that do not exist yet cannot be the input.
 */
export function checkNotSameFile(input: string, output: string, what: string): void {
  let a, b;
  try {
    a = statSync(input);
    b = statSync(output);
  } catch {
    return;
  }
  if (a.dev === b.dev && a.ino === b.ino) throw new ConfigError(`${what} ${output} is the input file: it would be overwritten before it is read`);
}

