/**
 * Pre-aggregated hourly statistics.
 *
 * Why: the stats API and the dashboard must answer "a day by country/prefix/reason/hour" in milliseconds
 * even after millions of requests. Scanning audit events would grow with traffic; these documents grow only
 * with the number of distinct countries/prefixes/reasons (prefixes are capped per hour).
 *
 * How: each instance accumulates its own counts per UTC hour in memory and writes them, as cumulative
 * totals, to the setting `mon:h:<YYYYMMDDHH>:<instance>` every few seconds. Because each document has a
 * single writer it is a plain overwrite (no read-modify-write race between instances), and a reader sums
 * the documents of every instance. A crash loses at most the last flush interval of this instance's
 * counts (the audit events remain the record of truth).
 */
import type { Store } from '../store/interface.ts';
import type { MonitorFact } from './facts.ts';

export const CELL_FIELDS = [
  'req', // send requests (decisions)
  'allow',
  'chal',
  'block',
  'tarpit',
  'sent', // messages handed to a sender (first sends and resends)
  'ver', // verifications started (first sends)
  'appr', // verifications approved
  'dfail', // sender refused at send time
  'dlv', // receipts: delivered
  'undl', // receipts: undelivered
  'rfail', // receipts: failed
  'spend', // micro-units spent on sent messages
  'vspend', // micro-units spent on verifications that were approved
  'save', // micro-units not spent because the request was blocked or tarpitted
] as const;
export type CellField = (typeof CELL_FIELDS)[number];
/** Sparse: zero fields are omitted to keep documents small. */
export type Cell = Partial<Record<CellField, number>>;

export interface HourDoc {
  v: 1;
  /** Start of the UTC hour, epoch ms. */
  hour: number;
  total: Cell;
  countries: Record<string, Cell>;
  prefixes: Record<string, Cell>;
  /** Decisions by reason: block / chal / tarpit counts and `save`. A decision with two reasons counts in both. */
  reasons: Record<string, Cell>;
  senders: Record<string, Cell>;
  /** By channel (sms, whatsapp, voice, email); documents written before this field lack it. */
  channels?: Record<string, Cell>;
  /** Check results (approved, denied, expired, locked, not_found, not_pending). */
  checks: Record<string, number>;
  /**
   * Send requests by the country of the client's IP. The alert engine's learned regions include IP countries,
   * so a restart seeds them from here too (documents written before this field lack it).
   */
  ipCountries?: Record<string, number>;
}

export const HOUR_MS = 3_600_000;
export const OTHER = 'other';
export const SETTING_PREFIX = 'mon:h:';

export function hourOf(at: number): number {
  return Math.floor(at / HOUR_MS) * HOUR_MS;
}

/** `YYYYMMDDHH` (UTC): sorts like time, and a shared prefix selects a day or month in one listing. */
export function hourKey(hour: number): string {
  return new Date(hour).toISOString().slice(0, 13).replace(/[-T]/g, '');
}

export function emptyDoc(hour: number): HourDoc {
  return { v: 1, hour, total: {}, countries: {}, prefixes: {}, reasons: {}, senders: {}, channels: {}, checks: {}, ipCountries: {} };
}

function bump(cell: Cell, field: CellField, n: number): void {
  if (n !== 0) cell[field] = (cell[field] ?? 0) + n;
}

function cellIn(map: Record<string, Cell>, key: string): Cell {
  let c = map[key];
  if (!c) {
    c = {};
    map[key] = c;
  }
  return c;
}

/** Apply one fact to an hour document (mutates it). `maxPrefixes` caps distinct prefixes; the rest go to "other". */
export function applyFact(doc: HourDoc, f: MonitorFact, maxPrefixes: number): void {
  const add = (dims: { country?: string | null; prefix?: string | null; sender?: string | null; channel?: string }, field: CellField, n = 1): void => {
    bump(doc.total, field, n);
    if (dims.channel) bump(cellIn((doc.channels ??= {}), dims.channel), field, n);
    if (dims.country) bump(cellIn(doc.countries, dims.country), field, n);
    if (dims.prefix) {
      const key = dims.prefix in doc.prefixes || Object.keys(doc.prefixes).length < maxPrefixes ? dims.prefix : OTHER;
      bump(cellIn(doc.prefixes, key), field, n);
    }
    if (dims.sender) bump(cellIn(doc.senders, dims.sender), field, n);
  };
  switch (f.kind) {
    case 'request': {
      const dims = { country: f.country, prefix: f.prefix, channel: f.channel };
      add(dims, 'req');
      if (f.ipCountry && /^[A-Z]{2}$/.test(f.ipCountry)) {
        const ipc = (doc.ipCountries ??= {});
        ipc[f.ipCountry] = (ipc[f.ipCountry] ?? 0) + 1;
      }
      const field: CellField | null =
        f.decision === 'allow' ? 'allow' : f.decision === 'challenge' ? 'chal' : f.decision === 'block' ? 'block' : f.decision === 'tarpit' ? 'tarpit' : null;
      if (field) add(dims, field);
      if (field === 'block' || field === 'tarpit') add(dims, 'save', f.priceMicros);
      if (field && field !== 'allow') {
        for (const r of f.reasons) {
          const c = cellIn(doc.reasons, r);
          // A reason row's requests are the refused requests that carry the reason.
          bump(c, 'req', 1);
          bump(c, field, 1);
          if (field !== 'chal') bump(c, 'save', f.priceMicros);
        }
      }
      break;
    }
    case 'sent': {
      const dims = { country: f.country, prefix: f.prefix, sender: f.sender, channel: f.channel };
      add(dims, 'sent');
      if (f.first) add(dims, 'ver');
      add(dims, 'spend', f.priceMicros);
      break;
    }
    case 'delivery_failed':
      add({ country: f.country, prefix: f.prefix, sender: f.sender, channel: f.channel }, 'dfail');
      break;
    case 'approved':
      add({ country: f.country, prefix: f.prefix, channel: f.channel }, 'appr');
      add({ country: f.country, prefix: f.prefix, channel: f.channel }, 'vspend', f.spendMicros);
      break;
    case 'check':
      doc.checks[f.result] = (doc.checks[f.result] ?? 0) + 1;
      break;
    case 'receipt':
      add({ country: f.country, prefix: f.prefix, sender: f.sender, channel: f.channel }, f.status === 'delivered' ? 'dlv' : f.status === 'undelivered' ? 'undl' : 'rfail');
      break;
    case 'event':
      break;
  }
}

function mergeCell(into: Cell, from: Cell): void {
  for (const k of CELL_FIELDS) {
    const v = from[k];
    if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
  }
}

function mergeMap(into: Record<string, Cell>, from: Record<string, Cell> | undefined): void {
  for (const [k, c] of Object.entries(from ?? {})) mergeCell(cellIn(into, k), c);
}

/** Sum several documents of one hour (one per instance) into a new document. */
export function mergeDocs(hour: number, docs: HourDoc[]): HourDoc {
  const out = emptyDoc(hour);
  for (const d of docs) {
    mergeCell(out.total, d.total ?? {});
    mergeMap(out.countries, d.countries);
    mergeMap(out.prefixes, d.prefixes);
    mergeMap(out.reasons, d.reasons);
    mergeMap(out.senders, d.senders);
    mergeMap(out.channels!, d.channels);
    for (const [k, n] of Object.entries(d.checks ?? {})) out.checks[k] = (out.checks[k] ?? 0) + n;
    for (const [k, n] of Object.entries(d.ipCountries ?? {})) out.ipCountries![k] = (out.ipCountries![k] ?? 0) + n;
  }
  return out;
}

/** Longest common prefix of two strings: one listing covers every hour key between them. */
function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

/** This instance's hourly documents in memory, and their persistence. */
export class StatsAggregator {
  /** `merge`: the hour's document was written and forgotten before; the stored one is added in before writing. */
  private readonly docs = new Map<number, { doc: HourDoc; dirty: boolean; merge: boolean }>();
  /** Hours whose document this instance wrote and forgot (a late fact for one must not overwrite it). */
  private readonly forgotten = new Set<number>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: { instanceId: string; maxPrefixes: () => number; retentionMs: () => number },
  ) {}

  apply(f: MonitorFact): void {
    if (f.kind === 'event') return;
    const hour = hourOf(f.at);
    let entry = this.docs.get(hour);
    if (!entry) {
      entry = { doc: emptyDoc(hour), dirty: false, merge: this.forgotten.has(hour) };
      this.docs.set(hour, entry);
    }
    applyFact(entry.doc, f, this.o.maxPrefixes());
    entry.dirty = true;
  }

  /** The in-memory document of an hour (this instance only). */
  local(hour: number): HourDoc | null {
    return this.docs.get(hour)?.doc ?? null;
  }

  /** Write changed documents; forget those of past hours once written. Flushes never overlap. */
  flush(store: Store, now: number): Promise<void> {
    const run = this.flushing.then(() => this.flushNow(store, now));
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushNow(store: Store, now: number): Promise<void> {
    const current = hourOf(now);
    for (const [hour, entry] of [...this.docs]) {
      if (entry.dirty) {
        entry.dirty = false;
        const ttl = hour + HOUR_MS + this.o.retentionMs() - now;
        const key = `${SETTING_PREFIX}${hourKey(hour)}:${this.o.instanceId}`;
        try {
          if (entry.merge && ttl > 0) {
            // A late fact (a send the journal recovered an hour later) for an hour this instance wrote and
            // forgot: the stored document is its only writer's, so adding it in is exact. Without this the late
            // fact's document replaced the hour's figures.
            const stored = await store.getSetting<HourDoc>(key, now);
            if (stored) entry.doc = mergeDocs(hour, [stored, entry.doc]);
            entry.merge = false;
          }
          if (ttl > 0) await store.putSetting(key, structuredClone(entry.doc), ttl, now);
        } catch (err) {
          entry.dirty = true;
          throw err;
        }
      }
      // Late facts for the previous hour still arrive around the boundary (approvals of older codes are
      // counted at approval time, so they never do): keep one past hour in memory.
      if (hour < current - HOUR_MS && !entry.dirty) {
        this.docs.delete(hour);
        this.forgotten.add(hour);
      }
    }
    // Hours past the retention have no document left to protect.
    for (const hour of this.forgotten) if (hour + HOUR_MS + this.o.retentionMs() <= now) this.forgotten.delete(hour);
  }

  /** Merged documents of every instance for the hours in [from, to), ascending. */
  async read(store: Store, from: number, to: number, now: number): Promise<HourDoc[]> {
    await this.flush(store, now);
    const first = hourOf(from);
    const last = hourOf(to - 1);
    const prefix = SETTING_PREFIX + commonPrefix(hourKey(first), hourKey(last));
    const rows = await store.listSettings<HourDoc>(prefix, now);
    const byHour = new Map<number, HourDoc[]>();
    for (const r of rows) {
      const d = r.value;
      if (!d || typeof d.hour !== 'number' || d.hour < first || d.hour > last) continue;
      const list = byHour.get(d.hour) ?? [];
      list.push(d);
      byHour.set(d.hour, list);
    }
    return [...byHour.entries()].sort((a, b) => a[0] - b[0]).map(([hour, list]) => mergeDocs(hour, list));
  }
}
