import type { Command } from 'commander';
import { loadConfig, type LoadOptions } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { openStore } from '../store/factory.ts';
import type { Store } from '../store/interface.ts';
import { join } from 'node:path';
import { fileError } from './errors.ts';

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

/** Open the configured store for a one-shot command (the server may be running on the same store). */
export async function storeFrom(cfg: Config): Promise<Store> {
  return openStore({
    kind: cfg.store.kind,
    sqlitePath: cfg.store.sqlitePath ?? join(cfg.dataDir, 'otp-shield.db'),
    ...(cfg.store.redisUrl ? { redisUrl: cfg.store.redisUrl } : {}),
    ...(cfg.store.postgresUrl ? { postgresUrl: cfg.store.postgresUrl } : {}),
    ...(cfg.store.prefix ? { prefix: cfg.store.prefix } : {}),
  });
}

export function print(line = ''): void {
  process.stdout.write(line + '\n');
}
