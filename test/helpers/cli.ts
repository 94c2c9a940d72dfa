/** Runs the real `otp-shield` CLI in a child process, isolated to one data dir. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `otp-shield …` with only this data dir (no inherited OTPSHIELD_* settings). */
export function cli(dataDir: string, args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTPSHIELD_') && k !== 'NODE_TEST_CONTEXT' && k !== 'NODE_OPTIONS') env[k] = v;
  env.OTPSHIELD_DATA_DIR = dataDir;
  env.NODE_ENV = 'test';
  return new Promise((resolve) => {
    // cwd = the data dir, so an otp-shield.yaml in the repository cannot leak into the test.
    execFile(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: dataDir, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Create the (empty) embedded database of a data dir, as the server or `keys create` would: the other commands
 * refuse a data dir without one (src/cli/shared.ts `storeFrom`).
 */
export async function withDatabase(dataDir: string): Promise<string> {
  await new SqliteStore(join(dataDir, 'otp-shield.db')).close();
  return dataDir;
}

