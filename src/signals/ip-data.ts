// Offline IP → country and IP → ASN (+ AS organisation name).
//
// Data: the installed npm packages @ip-location-db/geo-whois-asn-country
// (CC0) and @ip-location-db/asn (CC BY 4.0: RouteViews, DB-IP, NRO — DB-IP
// asks for attribution where results are shown). We read their "-num" CSVs
// (`start,end,value[,org]`, inclusive ranges, decimal integers) because
// numbers need no address parsing at load time.
//
// Nothing is loaded at import: each of the 4 tables (v4/v6 × country/asn)
// loads on first use (synchronously, ~0.1–0.5 s) or up front via
// loadIpData(). Tables are compact typed arrays searched by bisection, so a
// lookup is O(log n) with no allocation beyond parsing the IP string.
//
// Upstream rows overlap in places (the package README itself warns about
// data bugs); rows are flattened with "later row wins", which for these
// files means the more specific (nested, later) row wins.

import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { RangeBuilder, findV4, findV6, sortOrder, type KeyWidth, type RangeTable } from './cidr-set.ts';
import { isPublicIp, parseIp, type IpParsed } from './ip.ts';

export type IpTableName = 'country4' | 'country6' | 'asn4' | 'asn6';

export interface IpDataPaths {
  country4: string;
  country6: string;
  asn4: string;
  asn6: string;
}

export interface IpTableStats {
  table: IpTableName;
  file: string;
  rows: number;
  ranges: number;
  /** Bytes held in typed arrays for this table (excludes the org-name map). */
  bytes: number;
  loadMs: number;
}

// IPv4 tables have 1 word per key, IPv6 tables 4 (big-endian 32-bit words).
type Table4 = RangeTable;
type Table6 = RangeTable;

function defaultPaths(): IpDataPaths {
  const req = createRequire(import.meta.url);
  // The packages have no "exports" map, so package.json is resolvable.
  const c = dirname(req.resolve('@ip-location-db/geo-whois-asn-country/package.json'));
  const a = dirname(req.resolve('@ip-location-db/asn/package.json'));
  return {
    country4: join(c, 'geo-whois-asn-country-ipv4-num.csv'),
    country6: join(c, 'geo-whois-asn-country-ipv6-num.csv'),
    asn4: join(a, 'asn-ipv4-num.csv'),
    asn6: join(a, 'asn-ipv6-num.csv'),
  };
}

let paths: IpDataPaths | null = null;
let country4: Table4 | null = null;
let country6: Table6 | null = null;
let asn4: Table4 | null = null;
let asn6: Table6 | null = null;
// Country codes are interned: vals hold an index into this list.
let countryCodes: string[] = [];
let countryIndex = new Map<string, number>();
// ASN → organisation name (same for every row of an ASN in the data).
let asOrgs = new Map<number, string>();
const stats = new Map<IpTableName, IpTableStats>();
let preload: Promise<IpTableStats[]> | null = null;

function getPaths(): IpDataPaths {
  return (paths ??= defaultPaths());
}

/**
 * Point at other CSV files of the same "-num" format (e.g. a fresher download
 * from the ip-location-db GitHub releases). Drops loaded tables.
 */
export function setIpDataPaths(p: Partial<IpDataPaths>): void {
  paths = { ...getPaths(), ...p };
  unloadIpData();
}

/** Free all tables (they reload lazily on next use). */
export function unloadIpData(): void {
  country4 = country6 = asn4 = asn6 = null;
  countryCodes = [];
  countryIndex = new Map();
  asOrgs = new Map();
  stats.clear();
  preload = null;
}

// --- CSV scanning over raw bytes --------------------------------------------
// Parsing the Buffer directly avoids creating a 20 MB JS string, and org
// names are decoded into fresh strings (slices of one huge string would keep
// the whole file alive in memory).

const COMMA = 0x2c;
const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

interface Row {
  start: number; // byte offsets of each field
  startEnd: number;
  end: number;
  endEnd: number;
  val: number;
  valEnd: number;
  rest: number; // 4th field start (or line end)
  lineEnd: number;
}

/** Call `fn` for each line with field offsets. Handles a quoted 4th field. */
function scan(buf: Buffer, fn: (r: Row) => void): void {
  const n = buf.length;
  let pos = 0;
  const r: Row = { start: 0, startEnd: 0, end: 0, endEnd: 0, val: 0, valEnd: 0, rest: 0, lineEnd: 0 };
  while (pos < n) {
    r.start = pos;
    while (pos < n && buf[pos] !== COMMA && buf[pos] !== NL) pos++;
    r.startEnd = pos;
    if (buf[pos] !== COMMA) {
      pos++; // blank/garbage line
      continue;
    }
    r.end = ++pos;
    while (pos < n && buf[pos] !== COMMA && buf[pos] !== NL) pos++;
    r.endEnd = pos;
    if (buf[pos] !== COMMA) {
      pos++;
      continue;
    }
    r.val = ++pos;
    while (pos < n && buf[pos] !== COMMA && buf[pos] !== NL && buf[pos] !== CR) pos++;
    r.valEnd = pos;
    r.rest = buf[pos] === COMMA ? pos + 1 : pos;
    pos = r.rest;
    if (buf[pos] === QUOTE) {
      pos++;
      while (pos < n) {
        if (buf[pos] === QUOTE) {
          if (buf[pos + 1] === QUOTE) pos += 2;
          else {
            pos++;
            break;
          }
        } else pos++;
      }
    }
    while (pos < n && buf[pos] !== NL) pos++;
    r.lineEnd = pos > 0 && buf[pos - 1] === CR ? pos - 1 : pos;
    fn(r);
    pos++;
  }
}

function readUint(buf: Buffer, a: number, b: number): number {
  let x = 0;
  for (let i = a; i < b; i++) {
    const d = (buf[i] as number) - 48;
    if (d < 0 || d > 9) return NaN;
    x = x * 10 + d;
  }
  return b > a ? x : NaN;
}

// 16-bit limbs (little-endian) for decimal → 128-bit conversion without
// BigInt: limb·10^9 + carry < 2^53, so double arithmetic stays exact.
const limbs = new Array<number>(8).fill(0);

/** Decimal digits in buf[a,b) → 4 words at out[4*i]. False if not a uint128. */
function readDec128(buf: Buffer, a: number, b: number, out: Uint32Array, i: number): boolean {
  if (b <= a) return false;
  limbs.fill(0);
  for (let p = a; p < b; ) {
    const q = Math.min(b, p + 9);
    let chunk = 0;
    let mul = 1;
    for (; p < q; p++) {
      const d = (buf[p] as number) - 48;
      if (d < 0 || d > 9) return false;
      chunk = chunk * 10 + d;
      mul *= 10;
    }
    let carry = chunk;
    for (let k = 0; k < 8; k++) {
      const v = (limbs[k] as number) * mul + carry;
      limbs[k] = v % 65536;
      carry = Math.floor(v / 65536);
    }
    if (carry !== 0) return false;
  }
  for (let k = 0; k < 4; k++) out[4 * i + k] = (limbs[7 - 2 * k] as number) * 65536 + (limbs[6 - 2 * k] as number);
  return true;
}

function decodeField(buf: Buffer, a: number, b: number): string {
  if (b > a && buf[a] === QUOTE) {
    const inner = buf.toString('utf8', a + 1, buf[b - 1] === QUOTE ? b - 1 : b);
    return inner.replaceAll('""', '"');
  }
  return buf.toString('utf8', a, b);
}

function internCountry(buf: Buffer, a: number, b: number): number {
  const code = buf.toString('latin1', a, b);
  let id = countryIndex.get(code);
  if (id === undefined) {
    id = countryCodes.length;
    countryCodes.push(code);
    countryIndex.set(code, id);
  }
  return id;
}

// --- table builders ------------------------------------------------------------

// Files are read in pieces of whole lines through one reused buffer, not in
// one piece: a 21 MB Buffer per file, freed after parsing, left ~35 MB of
// resident memory behind (the allocator keeps what it had to take for it),
// about a sixth of an idle instance. Measured in docs/benchmarks.md (Memory).
let chunkBytes = 1 << 20;

/** Test hook: the read size (tiny sizes put line breaks at every possible chunk edge). */
export function setIpDataChunkBytes(bytes: number): void {
  chunkBytes = Math.max(1, Math.floor(bytes));
}

/**
 * Call `fn` with consecutive pieces of `file`, each ending at a line break outside quotes (the last one at the
 * end of the file).
 */
function forEachChunk(file: string, fn: (buf: Buffer) => void): void {
  const fd = openSync(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(chunkBytes);
    // Bytes at the start of `buf` that belong to a line not ended yet.
    let carry = 0;
    for (;;) {
      if (carry === buf.length) {
        // A line longer than the buffer: grow it (never happens with the shipped files).
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, carry);
        buf = bigger;
      }
      const read = readSync(fd, buf, carry, buf.length - carry, null);
      const filled = carry + read;
      if (read === 0) {
        if (filled > 0) fn(buf.subarray(0, filled));
        return;
      }
      // The last line break outside quotes (a quoted organisation name may hold one; `scan` reads it whole).
      let lastNl = -1;
      let quoted = false;
      for (let i = 0; i < filled; i++) {
        const b = buf[i];
        if (b === QUOTE) quoted = !quoted;
        else if (b === NL && !quoted) lastNl = i;
      }
      if (lastNl < 0) {
        carry = filled;
        continue;
      }
      fn(buf.subarray(0, lastNl + 1));
      carry = filled - lastNl - 1;
      buf.copy(buf, 0, lastNl + 1, filled);
    }
  } finally {
    closeSync(fd);
  }
}

function countLines(file: string): number {
  let n = 1;
  forEachChunk(file, (buf) => {
    for (let i = buf.indexOf(NL); i >= 0; i = buf.indexOf(NL, i + 1)) n++;
  });
  return n;
}

function buildTable(file: string, w: KeyWidth, kind: 'country' | 'asn'): { t: RangeTable; rows: number } {
  // Rows go into flat typed arrays first (no per-row objects: keeps the
  // transient memory of a 400k-row load to a few MB).
  const cap = countLines(file);
  const rs = new Uint32Array(cap * w);
  const re = new Uint32Array(cap * w);
  const rv = new Uint32Array(cap);
  let n = 0;
  forEachChunk(file, (buf) => scan(buf, (r) => {
    if (w === 1) {
      const start = readUint(buf, r.start, r.startEnd);
      const end = readUint(buf, r.end, r.endEnd);
      if (!(start >= 0 && end >= start && end <= 0xffffffff)) return;
      rs[n] = start;
      re[n] = end;
    } else if (!readDec128(buf, r.start, r.startEnd, rs, n) || !readDec128(buf, r.end, r.endEnd, re, n)) return;
    let val: number;
    if (kind === 'country') val = internCountry(buf, r.val, r.valEnd);
    else {
      val = readUint(buf, r.val, r.valEnd);
      if (!(val > 0 && val <= 0xffffffff)) return; // AS0 = "not routed": no fact
      if (!asOrgs.has(val) && r.lineEnd > r.rest) asOrgs.set(val, decodeField(buf, r.rest, r.lineEnd));
    }
    rv[n] = val;
    n++;
  }));
  const order = sortOrder(w, rs, n);
  const rb = new RangeBuilder(w, n + 16);
  for (let k = 0; k < n; k++) {
    const i = order ? (order[k] as number) : k;
    rb.paint(rs, i, re, i, rv[i] as number);
  }
  return { t: rb.finish(), rows: n };
}

function tableBytes(t: Table4 | Table6): number {
  return t.starts.byteLength + t.ends.byteLength + t.vals.byteLength;
}

function install(name: IpTableName, t0: number): IpTableStats {
  const file = getPaths()[name];
  const kind = name.startsWith('country') ? 'country' : 'asn';
  const { t, rows } = buildTable(file, name.endsWith('4') ? 1 : 4, kind);
  if (name === 'country4') country4 = t;
  else if (name === 'country6') country6 = t;
  else if (name === 'asn4') asn4 = t;
  else asn6 = t;
  const st: IpTableStats = {
    table: name,
    file,
    rows,
    ranges: t.vals.length,
    bytes: tableBytes(t),
    loadMs: performance.now() - t0,
  };
  stats.set(name, st);
  return st;
}

function isLoaded(name: IpTableName): boolean {
  return (name === 'country4' ? country4 : name === 'country6' ? country6 : name === 'asn4' ? asn4 : asn6) !== null;
}

/** Synchronous lazy load of one table (blocks the event loop once). */
function ensure(name: IpTableName): void {
  if (isLoaded(name)) return;
  const t0 = performance.now();
  install(name, t0);
}

/**
 * Load tables up front, one table per event-loop turn (reading and parsing a
 * table takes ~0.1–0.5 s). Call at startup so the first request doesn't pay.
 * Throws if a data file is missing — that is a deployment error.
 */
export function loadIpData(opts: { tables?: IpTableName[] } = {}): Promise<IpTableStats[]> {
  const want = opts.tables ?? (['country4', 'asn4', 'country6', 'asn6'] as IpTableName[]);
  const run = async (): Promise<IpTableStats[]> => {
    const out: IpTableStats[] = [];
    for (const name of want) {
      if (!isLoaded(name)) {
        await new Promise((r) => setImmediate(r));
        if (!isLoaded(name)) install(name, performance.now());
      }
      const st = stats.get(name);
      if (st) out.push(st);
    }
    return out;
  };
  // Chain so concurrent callers don't parse the same file twice.
  const p = (preload ?? Promise.resolve([])).catch(() => []).then(run);
  preload = p;
  return p;
}

/** Stats of tables loaded so far. */
export function ipDataStats(): IpTableStats[] {
  return [...stats.values()];
}

/** Parsed public address, or null: non-public addresses get no facts. */
function toParsed(ip: string | IpParsed): IpParsed | null {
  let p: IpParsed;
  if (typeof ip !== 'string') p = ip;
  else {
    const r = parseIp(ip);
    if (!r.ok) return null;
    p = r;
  }
  return isPublicIp(p) ? p : null;
}

/** ISO 3166-1 alpha-2 country of the IP's registration/geofeed; null if unknown or not a public address. */
export function lookupCountry(ip: string | IpParsed): string | null {
  const p = toParsed(ip);
  if (!p) return null;
  let id: number;
  if (p.version === 4) {
    ensure('country4');
    id = country4 ? findV4(country4, p.v4) : -1;
  } else {
    ensure('country6');
    id = country6 ? findV6(country6, p.v6) : -1;
  }
  return id >= 0 ? (countryCodes[id] ?? null) : null;
}

/** Origin AS of the IP and its organisation name (if the data has one), or null. */
export function lookupAsn(ip: string | IpParsed): { asn: number; org: string | null } | null {
  const p = toParsed(ip);
  if (!p) return null;
  let asn: number;
  if (p.version === 4) {
    ensure('asn4');
    asn = asn4 ? findV4(asn4, p.v4) : -1;
  } else {
    ensure('asn6');
    asn = asn6 ? findV6(asn6, p.v6) : -1;
  }
  return asn > 0 ? { asn, org: asOrgs.get(asn) ?? null } : null;
}

/** Organisation name for an ASN, if known from the loaded ASN tables. */
export function asOrgName(asn: number): string | null {
  return asOrgs.get(asn) ?? null;
}
