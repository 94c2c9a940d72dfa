import type { Command } from 'commander';
import { PauseError, listPauses, parsePauseScope, pauseSends, pauseView, resumeSends } from '../../monitoring/pause.ts';
import { configFrom, print, storeFrom } from '../shared.ts';
import { parseTtl } from './lists.ts';

interface ScopeOpts {
  channel?: string;
  country?: string;
  prefix?: string;
}

function scopeFrom(opts: ScopeOpts) {
  // The API's message names its body fields (`all`, `country`, `prefix`, `channel`); here they are flags, and no flag is "all".
  const given = [opts.country, opts.prefix, opts.channel].filter((x) => x !== undefined).length;
  if (given > 1) {
    throw Object.assign(new Error('give one of --country, --prefix or --channel, not several (none: every send)'), { name: 'ConfigError' });
  }
  try {
    // No flag = everything: the emergency switch must be one short command.
    return parsePauseScope(given === 0 ? { all: true } : { country: opts.country, prefix: opts.prefix, channel: opts.channel });
  } catch (err) {
    if (err instanceof PauseError) throw Object.assign(new Error(err.message), { name: 'ConfigError' });
    throw err;
  }
}

/**
 * `otp-shield pause [--country XX | --prefix +62812]`, `otp-shield resume [...]`, `otp-shield pauses`.
 * Writes straight to the configured store; running servers apply it within their state refresh (1 s).
 */
export function registerPause(program: Command): void {
  program
    .command('pause')
    .description('emergency switch: pause all sends, or those to a country or number prefix')
    .option('--country <XX>', 'ISO country code of the numbers to pause')
    .option('--prefix <+prefix>', 'number prefix to pause, e.g. +62812')
    .option('--channel <channel>', 'a channel to pause: sms, whatsapp, voice or email')
    .option('--note <text>', 'why (kept with the pause and in the audit event)')
    .option('--ttl <duration>', 'resume by itself after 30m, 12h, 7d … (like lists --ttl; a bare number is minutes)')
    .action(async (opts: ScopeOpts & { note?: string; ttl?: string }, cmd: Command) => {
      const scope = scopeFrom(opts);
      const ttlMs = opts.ttl === undefined ? null : pauseTtlMs(opts.ttl);
      if (ttlMs === null && opts.ttl !== undefined) throw Object.assign(new Error(`--ttl "${opts.ttl}" is not a duration like 30m, 12h or 7d (or a number of minutes)`), { name: 'ConfigError' });
      const store = await storeFrom(configFrom(cmd));
      try {
        const out = await pauseSends(store, scope, { now: Date.now(), note: opts.note ?? null, by: 'cli', ttlMs });
        print(`paused ${out.scope}${out.record.until ? ` until ${new Date(out.record.until).toISOString()}` : ''}`);
      } finally {
        await store.close();
      }
    });

  program
    .command('resume')
    .description('resume sends paused with `pause` (same flags)')
    .option('--country <XX>', 'ISO country code')
    .option('--prefix <+prefix>', 'number prefix, e.g. +62812')
    .option('--channel <channel>', 'sms, whatsapp, voice or email')
    .option('--note <text>', 'why (kept in the audit event)')
    .action(async (opts: ScopeOpts & { note?: string }, cmd: Command) => {
      const scope = scopeFrom({ country: opts.country, prefix: opts.prefix, channel: opts.channel });
      const store = await storeFrom(configFrom(cmd));
      try {
        const out = await resumeSends(store, scope, { now: Date.now(), by: 'cli', note: opts.note ?? null });
        print(out.existed ? `resumed ${out.scope}` : `${out.scope} was not paused`);
        if (out.stillPaused.length > 0) print(`still paused: ${out.stillPaused.join(', ')} (otp-shield pauses; resume each with --country, --prefix or --channel)`);
        if (out.warning) print(`warning: ${out.warning}`);
      } finally {
        await store.close();
      }
    });

  program
    .command('pauses')
    .description('list active pauses')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const store = await storeFrom(configFrom(cmd));
      try {
        const list = await listPauses(store, Date.now());
        // The shape of GET /v1/admin/pauses.
        if (opts.json) return print(JSON.stringify({ pauses: list.map((p) => pauseView(p.scope, p.record)) }));
        if (list.length === 0) return print('no active pauses');
        for (const p of list) {
          print(`${p.scope.padEnd(20)} since ${new Date(p.record.since).toISOString()}${p.record.until ? ` until ${new Date(p.record.until).toISOString()}` : ''}  ${p.record.by ?? ''}  ${p.record.note ?? ''}`);
        }
      } finally {
        await store.close();
      }
    });
}

/** `--ttl` of pause: a duration as `lists --ttl` takes it, or (as before) a positive number of minutes. */
export function pauseTtlMs(text: string): number | null {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) {
    const minutes = Number(t);
    return minutes > 0 ? Math.round(minutes * 60_000) : null;
  }
  return parseTtl(t);
}

