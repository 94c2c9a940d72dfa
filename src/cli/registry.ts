import type { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Every top-level command and how to load the module that registers it, in the order `--help` lists them. A
 * command module imports what its actions need (the store, the server, the engine), so main.ts loads only the
 * module of the command asked for: `otp-shield lists list` does not load the HTTP server.
 */
export const COMMANDS: readonly { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ['serve'], load: async () => (await import('./commands/serve.ts')).registerServe },
  { names: ['keys'], load: async () => (await import('./commands/keys.ts')).registerKeys },
  { names: ['config'], load: async () => (await import('./commands/config.ts')).registerConfig },
  { names: ['lists'], load: async () => (await import('./commands/lists.ts')).registerLists },
  { names: ['lookup'], load: async () => (await import('./commands/lookup.ts')).registerLookup },
  { names: ['replay'], load: async () => (await import('./commands/replay.ts')).registerReplay },
  { names: ['events'], load: async () => (await import('./commands/events.ts')).registerEvents },
  { names: ['simulate'], load: async () => (await import('./commands/simulate.ts')).registerSimulate },
  { names: ['pause', 'resume', 'pauses'], load: async () => (await import('./commands/pause.ts')).registerPause },
  { names: ['quarantines'], load: async () => (await import('./commands/quarantines.ts')).registerQuarantines },
  { names: ['unlock'], load: async () => (await import('./commands/unlock.ts')).registerUnlock },
  { names: ['subject'], load: async () => (await import('./commands/subject.ts')).registerSubject },
];

/**
 * The command word of `argv` (after node and the script): the first argument that is not a global option. Null
 * when help is asked for before it (`otp-shield --help keys` prints the program's help, which lists them all).
 */
export function commandWord(args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h' || a === '--help') return null;
    if (a === '--') return args[i + 1] ?? null;
    if (a === '-c' || a === '--config') i++; // its value
    else if (!a.startsWith('-')) return a;
  }
  return null;
}

/**
 * The registrations for `argv`: its command's alone when it names one; none for `--version`; else all of them
 * (help, a typo: commander lists them or suggests one).
 */
export async function registrationsFor(args: readonly string[]): Promise<Register[]> {
  const word = commandWord(args);
  if (word === null && (args.includes('-V') || args.includes('--version'))) return [];
  const own = COMMANDS.find((c) => word !== null && c.names.includes(word));
  return Promise.all((own ? [own] : COMMANDS).map((c) => c.load()));
}
