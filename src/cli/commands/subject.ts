import type { Command } from 'commander';
import { counts, NOT_IN_THE_STORE, subjectRequest, subjectView } from '../../service/subjects.ts';
import { recordPersonalDataRead } from '../../service/data-reads.ts';
import { configFrom, print, storeFrom } from '../shared.ts';
import { listSignals } from './lists.ts';

function usage(message: string): Error {
  return Object.assign(new Error(message), { name: 'ConfigError' });
}

/**
 * `otp-shield subject show <number|address>` (an access request: every stored record naming it, as JSON) and
 * `otp-shield subject erase <number|address> --yes [--note TICKET]` (an erasure request). docs/privacy.md.
 */
export function registerSubject(program: Command): void {
  const subject = program.command('subject').description("one person's data (GDPR access and erasure requests): every stored record naming a number or an email address");
  subject
    .command('show <destination>')
    .description('print every stored record naming the number or address, as JSON (verifications, audit events, list entries, counter and setting keys, journal entries)')
    .action(async (destination: string, _opts: unknown, cmd: Command) => {
      const store = await storeFrom(configFrom(cmd));
      try {
        const r = await subjectRequest({ store, signals: listSignals }, destination, { erase: false, now: Date.now(), by: 'cli' });
        if (!r.ok) throw usage(`${JSON.stringify(destination)}: ${r.message}`);
        const found = counts(r.records);
        // An access request served is recorded, naming the person masked (service/data-reads.ts).
        await recordPersonalDataRead(store, { now: Date.now(), by: 'cli', what: 'subject', count: found.verifications + found.events + found.listEntries + found.keys + found.journal, filters: { number: r.destination } });
        print(JSON.stringify({ destination: r.destination, names: r.names, found, ...subjectView(r.records) }, null, 2));
      } finally {
        await store.close();
      }
    });
  subject
    .command('erase <destination>')
    .description('delete every stored record naming the number or address (verifications, events, list entries, counters, markers, settings, journal); recorded as a subject.erase event that names nobody')
    .option('--yes', 'really erase (without it, nothing is deleted)')
    .option('--note <text>', 'a reference for the record, e.g. the request ticket (not the number)')
    .action(async (destination: string, opts: { yes?: boolean; note?: string }, cmd: Command) => {
      if (!opts.yes) throw usage('erasing cannot be undone: add --yes (`subject show` lists what would go)');
      const store = await storeFrom(configFrom(cmd));
      try {
        const r = await subjectRequest({ store, signals: listSignals }, destination, { erase: true, now: Date.now(), by: 'cli', note: opts.note ?? null });
        if (!r.ok) throw usage(`${JSON.stringify(destination)}: ${r.message}`);
        const c = counts(r.records);
        print(`erased ${r.destination}: ${c.verifications} verifications, ${c.events} events, ${c.listEntries} list entries, ${c.keys} counters/markers/settings, ${c.journal} journal entries`);
        print(NOT_IN_THE_STORE);
      } finally {
        await store.close();
      }
    });
}
