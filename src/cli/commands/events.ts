/**
 * `otp-shield events export [--from ISO] [--to ISO] [--type send,check] [--mask|--no-mask|--pseudonymize]`
 *
 * Writes the audit log as NDJSON, oldest first. Send and check lines are replay input
 * (src/service/audit-export.ts), so an unmasked or pseudonymised export can be fed to `otp-shield replay`.
 */
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { ConfigError } from '../../config/load.ts';
import { exportEvents, numberMasker, type MaskMode } from '../../service/audit-export.ts';
import { recordPersonalDataRead } from '../../service/data-reads.ts';
import { configFrom, storeFrom } from '../shared.ts';
import { closeOutput, drained, fileError, openOutput } from '../errors.ts';
import { parseIsoWithZone } from '../../lib/iso-time.ts';

/** What an audit event type looks like (send, check, quarantine.start, throttle.tightened): anything else matches nothing. */
const EVENT_TYPE_RE = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

/** `--type a,b`: the listed event types; a name that cannot be an event type is a usage error, not an empty export. */
export function parseTypes(v: string | undefined): string[] {
  if (v === undefined) return [];
  const types = v.split(',').map((t) => t.trim()).filter(Boolean);
  const bad = types.filter((t) => !EVENT_TYPE_RE.test(t));
  if (bad.length) throw new ConfigError(`--type: not an event type: ${bad.map((t) => JSON.stringify(t)).join(', ')} (event types are lowercase letters, digits, dots and underscores, e.g. send,check,quarantine.start)`);
  return types;
}

function parseTime(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  // A bare date is that day's UTC midnight; 9 or more digits are epoch milliseconds, as the admin API takes them.
  const ms = /^\d{9,16}$/.test(v) ? Number(v) : parseIsoWithZone(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(ms)) throw new ConfigError(`--${name} must be a date (2026-11-23), an ISO time with a zone (2026-11-23T08:00:00Z) or epoch milliseconds`);
  return ms;
}

/** The event types an export line is of (every line has `"type":"…"` before any nested object). */
const TYPE_RE = /"type":"([^"]+)"/;

async function writeAll(out: Writable, lines: AsyncIterable<string>, seen?: Set<string>): Promise<number> {
  let n = 0;
  let buf = '';
  for await (const line of lines) {
    buf += line + '\n';
    n++;
    if (seen) {
      const t = TYPE_RE.exec(line)?.[1];
      if (t !== undefined) seen.add(t);
    }
    if (buf.length >= 64 * 1024) {
      if (!out.write(buf)) await drained(out);
      buf = '';
    }
  }
  if (buf !== '' && !out.write(buf)) await drained(out);
  return n;
}

export function registerEvents(program: Command): void {
  const events = program.command('events').description('the audit log');
  events
    .command('export')
    .description('export audit events as NDJSON (oldest first); sends and checks are replay input')
    .option('--from <time>', 'events at or after this date/time (UTC date or ISO time with zone)')
    .option('--to <time>', 'events before this date/time')
    .option('--type <types>', 'comma-separated event types, e.g. send,check')
    .option('--mask', 'mask phone numbers (+62812*****890); the default when privacy.maskNumbersInLogs is on')
    .option('--no-mask', 'write phone numbers in full')
    .option('--pseudonymize', 'replace numbers, IP addresses and device ids by stable pseudonyms in the same prefix or network (replayable, not reversible without the key)')
    .option('--pseudonym-key <key>', 'key for --pseudonymize, to get the same pseudonyms across exports (default: random)')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(
      async (
        opts: { from?: string; to?: string; type?: string; mask?: boolean; pseudonymize?: boolean; pseudonymKey?: string; output?: string },
        cmd: Command,
      ) => {
        const cfg = configFrom(cmd);
        const from = parseTime('from', opts.from);
        const to = parseTime('to', opts.to);
        // The range is [from, to): one that ends where or before it starts is a mistake, not an empty export.
        if (from !== undefined && to !== undefined && from >= to) throw new ConfigError(`--from (${opts.from}) must be before --to (${opts.to})`);
        const types = parseTypes(opts.type);
        // --mask/--no-mask and --pseudonymize say different things about the same numbers: refuse both at once.
        if (opts.pseudonymize && opts.mask !== undefined) throw new ConfigError('use one of --mask, --no-mask or --pseudonymize');
        const mode: MaskMode = opts.pseudonymize ? 'pseudonymize' : (opts.mask ?? cfg.privacy.maskNumbersInLogs) ? 'mask' : 'none';
        if (opts.pseudonymKey !== undefined && mode !== 'pseudonymize') throw new ConfigError('--pseudonym-key needs --pseudonymize');
        // An empty key (an unset $KEY in a script) would make pseudonyms anyone can recompute from a number.
        if (opts.pseudonymKey !== undefined && opts.pseudonymKey.length < 16) throw new ConfigError('--pseudonym-key must be at least 16 characters (omit it for a random key per export)');
        // Opened before the store, so an unwritable output fails at once, in one line.
        const out: Writable = opts.output ? await openOutput(opts.output) : process.stdout;
        const store = await storeFrom(cfg);
        const seen = new Set<string>();
        try {
          const n = await writeAll(
            out,
            exportEvents(store, {
              ...(from !== undefined ? { from } : {}),
              ...(to !== undefined ? { to } : {}),
              types,
              mask: numberMasker(mode, opts.pseudonymKey),
            }),
            seen,
          ).catch((err: unknown) => {
            throw fileError(err, 'write', opts.output ?? 'stdout');
          });
          // Closed before the count is reported: a write that fails at the end (disk full) fails the export.
          if (opts.output) await closeOutput(out, opts.output);
          // Numbers in full where they are masked by default: recorded (service/data-reads.ts).
          if (mode === 'none' && cfg.privacy.maskNumbersInLogs) {
            await recordPersonalDataRead(store, { now: Date.now(), by: 'cli', what: 'events.export', count: n, filters: { from: opts.from, to: opts.to, type: opts.type } });
          }
          process.stderr.write(`exported ${n} events (numbers: ${mode === 'none' ? 'in full' : mode === 'mask' ? 'masked' : 'pseudonymised, with IP addresses and device ids'})\n`);
          // A type nothing matched may be a typo (`sends`): say so, without failing (a quiet range is normal).
          // A failed send is written as a send line (replay input), so `send.failed` is seen as `send`.
          const missing = types.filter((t) => !seen.has(t === 'send.failed' ? 'send' : t));
          if (missing.length > 0) process.stderr.write(`warning: no events of type ${missing.map((t) => `"${t}"`).join(', ')} in the range (types include send, check, list.add, pause, quarantine.start, throttle.tightened, alert)\n`);
        } finally {
          await store.close();
          // After a failure the file is abandoned, not ended: ending it would throw over the error that matters.
          if (out !== process.stdout && !out.writableFinished) out.destroy();
        }
      },
    );
}
