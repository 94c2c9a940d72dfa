/**
 * The CLI loads only the module of the command asked for (src/cli/registry.ts). Which command argv names, and
 * that help and unknown words still load every command (so `--help` lists them all and a typo gets a suggestion).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { COMMANDS, commandWord, registrationsFor } from '../../src/cli/registry.ts';

describe('CLI command registry', () => {
  it('finds the command word past the global options', () => {
    assert.equal(commandWord(['lists', 'list']), 'lists');
    assert.equal(commandWord(['-c', 'x.yaml', 'keys', 'create']), 'keys');
    assert.equal(commandWord(['--config', 'x.yaml', 'pause', '--all']), 'pause');
    assert.equal(commandWord(['--config=x.yaml', 'serve']), 'serve');
    assert.equal(commandWord(['--', 'events']), 'events');
    assert.equal(commandWord(['--version']), null);
    assert.equal(commandWord([]), null);
    // Help before the command is the program's help: every command is loaded so that it lists them all.
    assert.equal(commandWord(['--help', 'keys']), null);
    assert.equal(commandWord(['-h', 'lists']), null);
    assert.equal(commandWord(['keys', '--help']), 'keys');
  });

  it('registers one command for its word, none for --version, all for help or a typo', async () => {
    const names = async (args: string[]) => {
      const program = new Command();
      for (const register of await registrationsFor(args)) register(program);
      return program.commands.map((c) => c.name());
    };
    assert.deepEqual(await names(['lists', 'list']), ['lists']);
    assert.deepEqual(await names(['resume', '--all']), ['pause', 'resume', 'pauses']);
    assert.deepEqual(await names(['--version']), []);
    const all = COMMANDS.flatMap((c) => c.names);
    assert.deepEqual(await names(['--help', 'keys']), all);
    assert.deepEqual(await names(['nosuch']), all);
    assert.deepEqual(await names([]), all);
  });
});
