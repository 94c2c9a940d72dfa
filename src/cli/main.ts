#!/usr/bin/env node
/**
 * `otp-shield` — the command line. Each command lives in `commands/` and only parses arguments,
 * builds what it needs from the configuration, and prints; `registry.ts` lists them.
 */
import { Command } from 'commander';
import { VERSION } from '../service/version.ts';
import { registrationsFor } from './registry.ts';

// `otp-shield … | head` closes the pipe early: that is the reader being done, not an error to print a stack for.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command();
program
  .name('otp-shield')
  .description('Send one-time codes only when it is safe and necessary, and check them.')
  .version(VERSION)
  .option('-c, --config <file>', 'configuration file (YAML or JSON); also OTPSHIELD_CONFIG');

// Only the module of the command asked for is loaded (src/cli/registry.ts): `--version` starts at once, and a
// list or key command about a quarter sooner than with every command's imports (docs/decisions.md).
async function main(): Promise<void> {
  for (const register of await registrationsFor(process.argv.slice(2))) register(program);
  await program.parseAsync(process.argv);
}

main().catch(async (err: unknown) => {
  // Usage and file-system errors are one line; anything else is a bug and keeps its stack (src/cli/errors.ts).
  const { formatCliError } = await import('./errors.ts');
  process.stderr.write(`otp-shield: ${formatCliError(err)}\n`);
  process.exit(1);
});
