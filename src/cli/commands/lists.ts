/**
 * `otp-shield lists`: the block/allow lists from the command line (the same entries as
 * `/v1/admin/lists`, through the same `addListEntry`, so values are normalised identically).
 *
 *   lists add <kind> <value> [--allow] [--note N] [--ttl 7d | --expires ISO]
 *   lists remove <id>
 *   lists list [--list block|allow] [--kind K] [--json]
 *   lists import <file> [--kind K] [--allow] [--ttl 7d] [--json]
 *
 * The command writes to the store directly; running servers pick the change up by themselves, because
 * every instance polls the store's lists version about once a second (src/service/state.ts).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ConfigError } from '../../config/load.ts';
import { addListEntry, LIST_KINDS, listView, normalizeListValue, removeListEntry } from '../../service/lists.ts';
import { normalizePhone } from '../../signals/phone.ts';
import type { ListAction, ListEntry, ListKind, Store } from '../../store/interface.ts';
import { configFrom, print, storeFrom } from '../shared.ts';
import { parseIsoWithZone } from '../../lib/iso-time.ts';

/** Same bounds as the admin API's request schema, so an entry means the same whichever way it came in. */
const MAX_VALUE = 128;
const MAX_NOTE = 500;
const MAX_TTL_MS = 10 * 365 * 86_400_000;

/** The only signal lists need: phone parsing, without loading the IP and number intel. */
export const listSignals = { parsePhone: (input: unknown) => normalizePhone(input) };

/**
 * The CLI has no shared state of its own to refresh: a running server notices the new lists version
 * within its refresh interval.
 */
const noState = { invalidate(): void {} };

function usage(message: string): ConfigError {
  // ConfigError: main.ts prints its message without a stack trace and exits 1.
  return new ConfigError(message);
}

export function parseKind(kind: string): ListKind {
  const k = kind.trim().toLowerCase();
  if (!(LIST_KINDS as readonly string[]).includes(k)) throw usage(`unknown kind "${kind}" (use ${LIST_KINDS.join(', ')})`);
  return k as ListKind;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `90s`, `30m`, `12h`, `7d`, `2w` → milliseconds; null when the text is not such a duration. */
export function parseTtl(text: string): number | null {
  const m = /^(\d{1,6})\s*([smhdw])$/i.exec(text.trim());
  if (!m) return null;
  const ms = Number(m[1]) * (UNIT_MS[(m[2] as string).toLowerCase()] ?? 0);
  return ms > 0 && ms <= MAX_TTL_MS ? ms : null;
}

/** Expiry from `--ttl` / `--expires` (at most one of them). */
export function expiryFrom(opts: { ttl?: string; expires?: string }, now: number): number | null {
  if (opts.ttl !== undefined && opts.expires !== undefined) throw usage('use either --ttl or --expires, not both');
  if (opts.ttl !== undefined) {
    const ms = parseTtl(opts.ttl);
    if (ms === null) throw usage(`--ttl "${opts.ttl}" is not a duration like 30m, 12h, 7d or 2w (at most 10 years)`);
    return now + ms;
  }
  if (opts.expires !== undefined) {
    // ISO 8601 with a zone, or a bare date (UTC midnight): Date.parse would also take "12/31/2026" or "2027",
    // in the machine's local time zone.
    const bare = /^\d{4}-\d{2}-\d{2}$/.test(opts.expires);
    const at = parseIsoWithZone(bare ? `${opts.expires}T00:00:00Z` : opts.expires);
    if (!Number.isFinite(at) || (bare && new Date(at).toISOString().slice(0, 10) !== opts.expires)) {
      throw usage(`--expires "${opts.expires}" is not a date (use ISO 8601 with a zone, e.g. 2026-12-31T00:00:00Z, or a date, 2026-12-31)`);
    }
    if (at <= now) throw usage('--expires must be in the future');
    return at;
  }
  return null;
}

// ------------------------------------------------------------------ import file parsing (pure)

export interface ImportRow {
  line: number;
  kind: string | null;
  value: string;
  note: string | null;
  /** Raw expiresAt text from a CSV column, or null. */
  expiresAt: string | null;
}

export interface ImportParse {
  format: 'csv' | 'lines';
  rows: ImportRow[];
  errors: { line: number; message: string }[];
}

const CSV_COLUMNS = ['kind', 'value', 'note', 'expiresat'] as const;

/**
 * Split one CSV record: RFC 4180 quoting (`"a, b"`, `""` for a quote), no line breaks inside quotes.
 * Returns null when a quote is left open.
 */
export function splitCsvLine(line: string): string[] | null {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (line[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (ch === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (ch === ',') {
      out.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) return null;
  out.push(field);
  return out;
}

/**
 * Parse an import file. Two formats:
 * - CSV whose first line is a header naming the columns, from `kind,value,note,expiresAt` (any order,
 *   `value` required; a row's empty kind falls back to `--kind`);
 * - one value per line (needs `--kind`).
 * Blank lines and lines starting with `#` are skipped (a `#` elsewhere is data: device ids may contain it).
 * A bad line is reported with its number and never stops the rest.
 */
export function parseImportText(text: string): ImportParse {
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r?\n/);
  const meaningful = (l: string) => l.trim() !== '' && !l.trim().startsWith('#');
  const first = lines.findIndex(meaningful);
  const header = first >= 0 ? splitCsvLine(lines[first] as string)?.map((c) => c.trim().toLowerCase().replace(/_/g, '')) : undefined;
  const isCsv = header !== undefined && header.includes('value');
  const rows: ImportRow[] = [];
  const errors: ImportParse['errors'] = [];

  if (!isCsv) {
    lines.forEach((l, i) => {
      if (meaningful(l)) rows.push({ line: i + 1, kind: null, value: l.trim(), note: null, expiresAt: null });
    });
    return { format: 'lines', rows, errors };
  }

  const unknown = header.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
  if (unknown.length > 0) {
    errors.push({ line: first + 1, message: `unknown column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (the header is kind,value,note,expiresAt)` });
    return { format: 'csv', rows, errors };
  }
  const col = (name: (typeof CSV_COLUMNS)[number]) => header.indexOf(name);
  for (let i = first + 1; i < lines.length; i++) {
    const l = lines[i] as string;
    if (!meaningful(l)) continue;
    const cells = splitCsvLine(l);
    if (!cells) {
      errors.push({ line: i + 1, message: 'unbalanced quotes' });
      continue;
    }
    if (cells.length > header.length) {
      errors.push({ line: i + 1, message: `${cells.length} fields, the header has ${header.length} (quote notes that contain commas)` });
      continue;
    }
    const cell = (name: (typeof CSV_COLUMNS)[number]) => {
      const idx = col(name);
      const v = idx >= 0 ? (cells[idx] ?? '').trim() : '';
      return v === '' ? null : v;
    };
    const value = cell('value');
    if (value === null) {
      errors.push({ line: i + 1, message: 'empty value' });
      continue;
    }
    rows.push({ line: i + 1, kind: cell('kind'), value, note: cell('note'), expiresAt: cell('expiresat') });
  }
  return { format: 'csv', rows, errors };
}

// ------------------------------------------------------------------ commands

function entryLine(e: ListEntry): string {
  const v = listView(e);
  return [v.id, v.list.padEnd(5), v.kind.padEnd(7), v.value.padEnd(24), v.expiresAt ? `expires ${v.expiresAt}` : 'no expiry'.padEnd(32), v.note ?? ''].join('  ').trimEnd();
}

async function withStore<T>(cmd: Command, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await storeFrom(configFrom(cmd));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

interface AddOpts {
  allow?: boolean;
  note?: string;
  ttl?: string;
  expires?: string;
  json?: boolean;
}

interface ImportOpts {
  kind?: string;
  allow?: boolean;
  ttl?: string;
  json?: boolean;
}

interface ImportReport {
  imported: ReturnType<typeof listView>[];
  skipped: { line: number; value: string; existing: string }[];
  errors: { line: number; message: string }[];
}

async function importFile(store: Store, file: string, opts: ImportOpts, now: number): Promise<ImportReport> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw usage(`cannot read ${file}: ${(err as Error).message}`);
  }
  const defaultKind = opts.kind !== undefined ? parseKind(opts.kind) : null;
  const list: ListAction = opts.allow ? 'allow' : 'block';
  const ttlExpiry = opts.ttl !== undefined ? expiryFrom({ ttl: opts.ttl }, now) : null;
  const parsed = parseImportText(text);
  if (parsed.format === 'lines' && defaultKind === null && parsed.rows.length > 0) {
    throw usage('a file with one value per line needs --kind (or use a CSV file with the header kind,value,note,expiresAt)');
  }

  const report: ImportReport = { imported: [], skipped: [], errors: [...parsed.errors] };
  // Importing the same file twice must not double every entry: an entry that is already listed (same list,
  // kind and normalised value, not expired) is skipped and reported.
  const existing = new Map((await store.listEntries(now, { list })).map((e) => [`${e.kind}|${e.value}`, e.id]));
  for (const row of parsed.rows) {
    const fail = (message: string) => report.errors.push({ line: row.line, message });
    let kind: ListKind | null = defaultKind;
    if (row.kind !== null) {
      try {
        kind = parseKind(row.kind);
      } catch (err) {
        fail((err as Error).message);
        continue;
      }
    }
    if (kind === null) {
      fail('no kind (fill the kind column or pass --kind)');
      continue;
    }
    if (row.value.length > MAX_VALUE) {
      fail(`value longer than ${MAX_VALUE} characters`);
      continue;
    }
    if (row.note !== null && row.note.length > MAX_NOTE) {
      fail(`note longer than ${MAX_NOTE} characters`);
      continue;
    }
    let expiresAt = ttlExpiry;
    if (row.expiresAt !== null) {
      try {
        expiresAt = expiryFrom({ expires: row.expiresAt }, now);
      } catch (err) {
        fail((err as Error).message.replace('--expires', 'expiresAt'));
        continue;
      }
    }
    const norm = normalizeListValue(kind, row.value, listSignals);
    if (!norm.ok) {
      fail(norm.message);
      continue;
    }
    const dup = existing.get(`${kind}|${norm.value}`);
    if (dup !== undefined) {
      report.skipped.push({ line: row.line, value: norm.value, existing: dup });
      continue;
    }
    // Each row at its own time: its journal entry's time is when it was written (a long import must not look
    // like an interrupted one to a running server's recovery).
    const res = await addListEntry({ store, signals: listSignals, state: noState }, { list, kind, value: row.value, note: row.note, expiresAt }, Math.max(now, Date.now()), 'cli', false);
    if (!res.ok) {
      fail(res.message);
      continue;
    }
    existing.set(`${kind}|${res.entry.value}`, res.entry.id);
    report.imported.push(listView(res.entry));
  }
  report.errors.sort((a, b) => a.line - b.line);
  return report;
}

export function registerLists(program: Command): void {
  const lists = program.command('lists').description(`block/allow lists (kinds: ${LIST_KINDS.join(', ')})`);

  lists
    .command('add <kind> <value>')
    .description('add a block entry (or an allow entry with --allow)')
    .option('--allow', 'add to the allow list instead of the block list')
    .option('--note <text>', 'why the entry exists (shown in lists and events)')
    .option('--ttl <duration>', 'expire after 30m, 12h, 7d, 2w …')
    .option('--expires <iso>', 'expire at this time (ISO 8601)')
    .option('--json', 'print JSON')
    .action(async (kindArg: string, value: string, opts: AddOpts, cmd: Command) => {
      const kind = parseKind(kindArg);
      const now = Date.now();
      const expiresAt = expiryFrom(opts, now);
      if (value.length > MAX_VALUE) throw usage(`value longer than ${MAX_VALUE} characters`);
      if (opts.note !== undefined && opts.note.length > MAX_NOTE) throw usage(`--note longer than ${MAX_NOTE} characters`);
      const res = await withStore(cmd, (store) =>
        addListEntry({ store, signals: listSignals, state: noState }, { list: opts.allow ? 'allow' : 'block', kind, value, note: opts.note ?? null, expiresAt }, now, 'cli'),
      );
      if (!res.ok) throw usage(res.message);
      if (opts.json) print(JSON.stringify(listView(res.entry)));
      else print(`${res.existed ? 'already listed, unchanged:' : 'added'} ${entryLine(res.entry)}`);
    });

  lists
    .command('remove <id>')
    .description('remove an entry by id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const removed = await withStore(cmd, (store) => removeListEntry({ store, state: noState }, id, Date.now(), 'cli'));
      if (!removed) throw usage(`no such list entry: ${id}`);
      print(`removed ${id}`);
    });

  lists
    .command('list')
    .description('list the entries in force (expired ones are not shown)')
    .option('--list <list>', 'only block or allow')
    .option('--kind <kind>', 'only this kind')
    .option('--json', 'print JSON')
    .action(async (opts: { list?: string; kind?: string; json?: boolean }, cmd: Command) => {
      if (opts.list !== undefined && opts.list !== 'block' && opts.list !== 'allow') throw usage('--list is block or allow');
      const filter = { ...(opts.list ? { list: opts.list as ListAction } : {}), ...(opts.kind ? { kind: parseKind(opts.kind) } : {}) };
      const entries = await withStore(cmd, (store) => store.listEntries(Date.now(), filter));
      if (opts.json) return print(JSON.stringify(entries.map(listView)));
      if (entries.length === 0) return print('no entries');
      for (const e of entries) print(entryLine(e));
    });

  lists
    .command('import <file>')
    .description('import entries from a CSV (header kind,value,note,expiresAt) or a file with one value per line; bad lines are reported and the rest imported (exit code 1 if any line was rejected)')
    .option('--kind <kind>', 'kind of every value (one-per-line files) or of CSV rows with an empty kind')
    .option('--allow', 'import into the allow list instead of the block list')
    .option('--ttl <duration>', 'expiry for rows without an expiresAt (30m, 12h, 7d, 2w …)')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: ImportOpts, cmd: Command) => {
      const report = await withStore(cmd, (store) => importFile(store, file, opts, Date.now()));
      if (opts.json) print(JSON.stringify(report));
      else {
        for (const e of report.errors) process.stderr.write(`${file}:${e.line}: ${e.message}\n`);
        for (const s of report.skipped) print(`line ${s.line}: ${s.value} already listed as ${s.existing}, skipped`);
        print(`imported ${report.imported.length}, skipped ${report.skipped.length} already listed, rejected ${report.errors.length} line${report.errors.length === 1 ? '' : 's'}`);
      }
      if (report.errors.length > 0) process.exitCode = 1;
    });
}
