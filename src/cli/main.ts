#!/usr/bin/env node
/**
 * `otp-shield` — the command line. Each command lives in `commands/` and only parses arguments,
 * builds what it needs from the configuration, and prints.
 */
import { Command } from 'commander';
import { registerServe } from './commands/serve.ts';
import { registerKeys } from './commands/keys.ts';
import { registerConfig } from './commands/config.ts';
import { VERSION } from '../service/context.ts';
import { extraCommands } from './registry.ts';
import { formatCliError } from './errors.ts';

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

registerServe(program);
registerKeys(program);
registerConfig(program);
for (const register of extraCommands) register(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Usage and file-system errors are one line; anything else is a bug and keeps its stack (src/cli/errors.ts).
  process.stderr.write(`otp-shield: ${formatCliError(err)}\n`);
  process.exit(1);
});
