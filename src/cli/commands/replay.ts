/**
 * `otp-shield replay --policy FILE --input trace.ndjson --output decisions.ndjson`
 *
 * Runs a trace through the real engine (src/replay/driver.ts): one output line per input line, a summary on
 * stderr. Nothing is sent, no network is used, the store is a fresh in-memory one.
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { parsePolicy, PolicySchema, type Policy } from '../../engine/policy.ts';
import { replayLines, type ReplaySummary } from '../../replay/driver.ts';
import { checkNotSameFile, checkReadable, checkWritable, closeOutput, drained, fileError, openOutput } from '../errors.ts';
import { loadConfigFile } from '../shared.ts';

/**
 * Policy sections that layers read but the policy schema does not (yet) include. They are taken out before
 * validation and handed to the replay separately; once the schema has them they validate like the rest.
 */
const EXTRA_SECTIONS = ['pumping'] as const;

export function loadReplayPolicy(file: string): { policy: Policy; extras: Record<string, unknown> } {
  checkReadable(file, 'policy file');
  let doc: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`cannot parse policy ${file}: ${(err as Error).message}`);
  }
  doc ??= {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`invalid policy ${file}: the top level must be a mapping`);
  const rest: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
  const extras: Record<string, unknown> = {};
  const known = PolicySchema.properties as Record<string, unknown>;
  for (const k of EXTRA_SECTIONS) {
    if (k in rest && !(k in known)) {
      extras[k] = rest[k];
      delete rest[k];
    }
  }
  const res = parsePolicy(rest);
  if (!res.ok) throw new ConfigError(`invalid policy ${file}: ${res.errors.map((e) => `${e.path} ${e.message}`).join('; ')}`);
  return { policy: res.policy, extras };
}

/**
 * Buffered line writer that respects backpressure (a slow pipe must not buffer the whole output). A write
 * error (disk full) rejects `write`/`end` with a one-line message naming `name`.
 */
function lineWriter(out: Writable, name: string): { write(line: string): Promise<void> | void; end(): Promise<void> } {
  let buf = '';
  const flush = async (): Promise<void> => {
    if (buf === '') return;
    const chunk = buf;
    buf = '';
    try {
      if (!out.write(chunk)) await drained(out);
    } catch (err) {
      throw fileError(err, 'write', name);
    }
  };
  return {
    write(line) {
      buf += line + '\n';
      if (buf.length >= 64 * 1024) return flush();
    },
    async end() {
      await flush();
      if (out !== process.stdout) await closeOutput(out, name);
    },
  };
}

export function formatSummary(s: ReplaySummary): string {
  const n = (type: string) => s.auditEvents[type] ?? 0;
  const lines = [
    `replayed ${s.lines} lines (${s.firstAt ?? '-'} .. ${s.lastAt ?? '-'}) in ${(s.wallMs / 1000).toFixed(1)} s, ${s.eventsPerSecond} lines/s`,
    `sends:   allow ${s.sends.allow}, challenge ${s.sends.challenge}, block ${s.sends.block}, tarpit ${s.sends.tarpit}; messages that would have been sent: ${s.delivered}`,
    `checks:  approved ${s.checks.approved}, denied ${s.checks.denied}, expired ${s.checks.expired}, locked ${s.checks.locked}, not_found ${s.checks.not_found}`,
    `events:  quarantines started ${n('quarantine.start')}, ended ${n('quarantine.end')}; throttling tightened ${n('throttle.tightened')}, relaxed ${n('throttle.normal')}`,
    `other:   list changes and pauses applied ${s.applied}, ignored ${s.ignored}, invalid ${s.invalid}, out of order ${s.outOfOrder}`,
  ];
  if (s.maskedNumbers > 0) {
    lines.push(`warning: ${s.maskedNumbers} sends had masked numbers and were refused as invalid; export with --no-mask or --pseudonymize to backtest`);
  }
  return lines.join('\n');
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('run recorded or synthetic traffic through the real engine (nothing is sent)')
    .option('-p, --policy <file>', 'policy file (YAML or JSON); default: the built-in default policy')
    .requiredOption('-i, --input <file>', 'trace, one JSON event a line ("-" for stdin)')
    .option('-o, --output <file>', 'decisions, one JSON line per input line ("-" for stdout)', '-')
    .option('--summary-json <file>', 'also write the summary as JSON to this file ("-" for stdout, when --output is a file)')
    .action(async (opts: { policy?: string; input: string; output: string; summaryJson?: string }, cmd: Command) => {
      const globals = cmd.optsWithGlobals() as { config?: string };
      // The configuration (codes, channels, test numbers, operator intel lists) is used when one is given or
      // found; the store, senders and secret are always replaced by replay's own.
      const baseConfig: Config = loadConfigFile(globals.config, {
        overrides: { secrets: { codeSecret: randomBytes(32).toString('base64url'), previousCodeSecrets: [] }, store: { kind: 'memory' }, logLevel: 'silent' } as Partial<Config>,
      });
      const { policy, extras } = opts.policy ? loadReplayPolicy(opts.policy) : { policy: undefined, extras: {} };
      // Every file is checked before the replay runs: a bad path fails at once, in one line.
      if (opts.input !== '-') checkReadable(opts.input, 'input');
      // "-" is stdout, as for --input and --output (never a file named "-"), when the decisions go to a file.
      if (opts.summaryJson === '-' && opts.output === '-') throw new ConfigError('--summary-json - writes to stdout, which --output already uses: give one of them a file');
      if (opts.summaryJson && opts.summaryJson !== '-') checkWritable(opts.summaryJson);
      if (opts.input !== '-') {
        if (opts.output !== '-') checkNotSameFile(opts.input, opts.output, '--output');
        if (opts.summaryJson && opts.summaryJson !== '-') checkNotSameFile(opts.input, opts.summaryJson, '--summary-json');
      }
      const out = lineWriter(opts.output === '-' ? process.stdout : await openOutput(opts.output), opts.output);
      const summary = await replayLines(
        () => createInterface({ input: opts.input === '-' ? process.stdin : createReadStream(opts.input), crlfDelay: Infinity }),
        (line) => out.write(line),
        { baseConfig, ...(policy ? { policy } : {}), policyExtras: extras },
      );
      await out.end();
      process.stderr.write(formatSummary(summary) + '\n');
      if (opts.summaryJson === '-') process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      else if (opts.summaryJson) {
        try {
          writeFileSync(opts.summaryJson, JSON.stringify(summary, null, 2) + '\n');
        } catch (err) {
          throw fileError(err, 'write', opts.summaryJson);
        }
      }
      // Invalid lines were reported in place; the exit status tells scripts (a backtest in CI) that the trace
      // had problems, that its numbers were masked (every send refused as invalid: the backtest means nothing),
      // or that it was empty (an export from the wrong data directory).
      if (summary.lines === 0) process.stderr.write('error: the trace has no lines\n');
      if (summary.invalid > 0 || summary.maskedNumbers > 0 || summary.lines === 0) process.exitCode = 1;
    });
}
