import type { Command } from 'commander';
import { loadConfig, type LoadOptions } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { openStore, storeConfigOf } from '../store/factory.ts';
import type { Store } from '../store/interface.ts';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../config/load.ts';
import { fileError, isSqliteError } from './errors.ts';

export function configFrom(cmd: Command): Config {
  const opts = cmd.optsWithGlobals() as { config?: string };
  return loadConfigFile(opts.config, {});
}

/** `loadConfig`, with a configuration file that cannot be read (a directory …) reported in one line. */
export function loadConfigFile(file: string | undefined, rest: Omit<LoadOptions, 'file'>): Config {
  try {
    return loadConfig(file ? { ...rest, file } : rest);
  } catch (err) {
    throw fileError(err, 'read', file ?? process.env.OTPSHIELD_CONFIG ?? 'otp-shield.yaml');
  }
}

/**
 * Open the configured store for a one-shot command (the server may be running on the same store). An embedded
 * (SQLite) database that does not exist yet is created only with `create` (`keys create`, the first step of a
 * new install): any other command run from the wrong directory — the default data directory `./data` is
 * relative to the working directory — would otherwise read an empty new database and succeed (an export of
 * nothing, a block entry the server never sees).
 */
export async function storeFrom(cfg: Config, opts: { create?: boolean } = {}): Promise<Store> {
  const options = storeConfigOf(cfg);
  const sqlitePath = options.sqlitePath;
  if (cfg.store.kind === 'sqlite' && sqlitePath !== ':memory:' && !existsSync(sqlitePath)) {
    const where = resolve(sqlitePath);
    if (!opts.create) {
      throw new ConfigError(
        `no database at ${where} (data directory ${resolve(cfg.dataDir)}, relative to the working directory ${process.cwd()}): run the command where the server runs, or point it at the server's data with --config, OTPSHIELD_DATA_DIR or OTPSHIELD_SQLITE_PATH`,
      );
    }
    process.stderr.write(`otp-shield: created a new database at ${where}\n`);
  }
  const opening = openStore(options);
  // A file that is not a database (or a corrupt one): one line naming it, not a stack.
  return opening.catch((err: unknown) => {
    if (!isSqliteError(err)) throw err;
    throw new ConfigError(`cannot open the sqlite store at ${resolve(sqlitePath)}: ${err.message}${err.code ? ` (${err.code})` : ''}`);
  });
}

export function print(line = ''): void {
  process.stdout.write(line + '\n');
}

/** A line for the person at the terminal, not the command's output (which may be piped): to stderr. */
export function note(line: string): void {
  process.stderr.write(line + '\n');
}
