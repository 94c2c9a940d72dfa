import type { Command } from 'commander';
import { registerLists } from './commands/lists.ts';
import { registerLookup } from './commands/lookup.ts';
import { registerReplay } from './commands/replay.ts';
import { registerEvents } from './commands/events.ts';
import { registerSimulate } from './commands/simulate.ts';
import { registerPause } from './commands/pause.ts';

/** Commands added by the defense layers; kept apart so main.ts stays a table of contents. */
export const extraCommands: ((program: Command) => void)[] = [registerLists, registerLookup];

extraCommands.push(registerReplay, registerEvents, registerSimulate);
extraCommands.push(registerPause);
