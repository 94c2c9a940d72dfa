import type { Command } from 'commander';

/** Commands added by the defense layers; kept apart so main.ts stays a table of contents. */
export const extraCommands: ((program: Command) => void)[] = [];
