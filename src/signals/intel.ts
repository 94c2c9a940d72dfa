// Intel: turns an IP or a number into facts, each hit naming its source.
//
// Sources:
// - operator list files in `dir` (e.g. ./data/intel), reloadable at runtime:
//     datacenter.txt, hosting-asns.txt → hosting
//     tor.txt → tor, proxy.txt → proxy, vpn.txt → vpn
//     disposable-numbers.txt → disposable
//   IP files take IPs, CIDRs and ASNs; the numbers file takes numbers and
//   prefixes (see lists-file.ts for the format).
// - shipped starter data, loaded once: intel/hosting-asns.txt (curated) and
//   the @ip1sms/disposable-phone-numbers package (~93k numbers, 2018–2024).
// - ip-data.ts for country / ASN / AS organisation.
//
// A fact is only a signal; the engine decides. `sources` says which list
// produced each hit, e.g. ['asn:intel/hosting-asns.txt', 'file:tor.txt'],
// so decisions can be explained and bad lists found.

import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CidrSet, PrefixSet } from './cidr-set.ts';
import { parseIp, type IpParsed } from './ip.ts';
import { ipDataStats, loadIpData, lookupAsn, lookupCountry, type IpTableStats } from './ip-data.ts';
import { parseListText, type ListError, type ListKind } from './lists-file.ts';

export type IpCategory = 'hosting' | 'tor' | 'proxy' | 'vpn';
type Category = IpCategory | 'disposable';

export interface IpFactsResult {
  country: string | null;
  asn: number | null;
  asOrg: string | null;
  hosting: boolean;
  tor: boolean;
  proxy: boolean;
  vpn: boolean;
  sources: string[];
}

export interface NumberFactsResult {
  disposable: boolean;
  sources: string[];
}

/** Runtime list files and what a hit in each means. */
export const INTEL_FILES: Readonly<Record<string, Category>> = {
  'datacenter.txt': 'hosting',
  'hosting-asns.txt': 'hosting',
  'tor.txt': 'tor',
  'proxy.txt': 'proxy',
  'vpn.txt': 'vpn',
  'disposable-numbers.txt': 'disposable',
};

const IP_KINDS: readonly ListKind[] = ['ip', 'cidr', 'asn'];
const NUMBER_KINDS: readonly ListKind[] = ['number', 'prefix'];

/** One loaded list: everything in it, ready for lookups. */
interface LoadedList {
  /** Name used in `sources`, e.g. 'tor.txt' or 'intel/hosting-asns.txt'. */
  label: string;
  category: Category;
  cidrs: CidrSet<true>;
  asns: Set<number>;
  numbers: PrefixSet<true>;
  entries: number;
  /** Source prefix for number hits ('file' or 'pkg'). */
  numberSource: 'file' | 'pkg';
}

export interface IntelFileStatus {
  name: string;
  path: string;
  category: Category;
  /** False if the file does not exist (its list is then empty). */
  present: boolean;
  entries: number;
  errors: ListError[];
  /** Read error other than "missing" — the previous version is kept. */
  readError?: string;
  mtimeMs: number | null;
}

export interface IntelReport {
  at: number;
  files: IntelFileStatus[];
  builtin: { label: string; entries: number; errors: number }[];
  ipData: IpTableStats[];
}

export interface IntelOptions {
  /** Directory of operator list files; omit for starter data only. */
  dir?: string;
  now: () => number;
  /** Country/ASN lookups via ip-data.ts (default true). */
  ipData?: boolean;
  /** Load the IP tables during load() instead of on first lookup (default true when ipData). */
  preloadIpData?: boolean;
  /** Shipped starter data (intel/hosting-asns.txt + disposable package); default true. */
  starter?: boolean;
  /** Poll the list files for changes and reload (default off). */
  watch?: boolean | { intervalMs?: number };
}

// src/signals/ → repo root; also right for dist/signals/ after a build.
const BUILTIN_DIR = fileURLToPath(new URL('../../intel/', import.meta.url));
const DISPOSABLE_PKG = '@ip1sms/disposable-phone-numbers';

function emptyList(label: string, category: Category, numberSource: 'file' | 'pkg' = 'file'): LoadedList {
  return { label, category, cidrs: new CidrSet<true>(), asns: new Set(), numbers: new PrefixSet<true>(), entries: 0, numberSource };
}

/** Build a LoadedList from list-file text. */
function listFromText(label: string, category: Category, text: string): { list: LoadedList; errors: ListError[] } {
  const accept = category === 'disposable' ? NUMBER_KINDS : IP_KINDS;
  const { entries, errors } = parseListText(text, { accept });
  const list = emptyList(label, category);
  for (const e of entries) {
    if (e.kind === 'ip' || e.kind === 'cidr') list.cidrs.add(e.value, true);
    else if (e.kind === 'asn') list.asns.add(e.value);
    else if (e.kind === 'number') list.numbers.addNumber(e.value, true);
    else list.numbers.addPrefix(e.value, true);
  }
  list.cidrs.build();
  list.numbers.build();
  list.entries = entries.length;
  return { list, errors };
}

interface FileSig {
  mtimeMs: number;
  size: number;
  ino: number;
}

function sigKey(s: FileSig | null): string {
  return s ? `${s.mtimeMs}:${s.size}:${s.ino}` : 'missing';
}

async function statSig(path: string): Promise<FileSig | null> {
  try {
    const s = await stat(path);
    return { mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
  } catch {
    return null;
  }
}

export class Intel {
  private builtin: LoadedList[] = [];
  private builtinReport: IntelReport['builtin'] = [];
  private fileLists = new Map<string, LoadedList>();
  private fileStatus = new Map<string, IntelFileStatus>();
  private sigs = new Map<string, string>();
  /** All lists, rebuilt on every swap so lookups iterate one array. */
  private ipLists: LoadedList[] = [];
  private numberLists: LoadedList[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private reloading: Promise<IntelReport> | null = null;
  private lastReport: IntelReport | null = null;

  private constructor(
    private readonly opts: IntelOptions,
  ) {}

  static async load(opts: IntelOptions): Promise<Intel> {
    const intel = new Intel(opts);
    if (opts.starter !== false) await intel.loadStarter();
    if ((opts.ipData ?? true) && (opts.preloadIpData ?? true)) await loadIpData();
    await intel.reload();
    if (opts.watch) intel.watch(typeof opts.watch === 'object' ? opts.watch.intervalMs : undefined);
    return intel;
  }

  private async loadStarter(): Promise<void> {
    const path = join(BUILTIN_DIR, 'hosting-asns.txt');
    const { list, errors } = listFromText('intel/hosting-asns.txt', 'hosting', await readFile(path, 'utf8'));
    this.builtin.push(list);
    this.builtinReport.push({ label: list.label, entries: list.entries, errors: errors.length });

    // The package is a JSON object { "<E.164 digits>": "<date added>" }.
    const req = createRequire(import.meta.url);
    const json = JSON.parse(await readFile(req.resolve(`${DISPOSABLE_PKG}/number-list.json`), 'utf8')) as Record<string, unknown>;
    const pkg = emptyList(DISPOSABLE_PKG, 'disposable', 'pkg');
    let bad = 0;
    for (const digits of Object.keys(json)) {
      if (pkg.numbers.addNumber(digits, true).ok) pkg.entries++;
      else bad++; // e.g. one 16-digit entry: cannot be E.164
    }
    pkg.numbers.build();
    this.builtin.push(pkg);
    this.builtinReport.push({ label: pkg.label, entries: pkg.entries, errors: bad });
    this.rebuildIndex();
  }

  private rebuildIndex(): void {
    const all = [...this.builtin, ...this.fileLists.values()];
    this.ipLists = all.filter((l) => l.category !== 'disposable' && (l.cidrs.size > 0 || l.asns.size > 0));
    this.numberLists = all.filter((l) => l.category === 'disposable' && l.numbers.size > 0);
  }

  /**
   * Re-read every list file in `dir` and swap the new lists in atomically.
   * A missing file means an empty list; a file that cannot be read keeps
   * its previous contents. Concurrent calls share one reload.
   */
  reload(): Promise<IntelReport> {
    if (this.reloading) return this.reloading;
    this.reloading = this.doReload().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async doReload(): Promise<IntelReport> {
    const dir = this.opts.dir;
    if (dir !== undefined) {
      // Rebuilt in INTEL_FILES order so `sources` order is stable.
      const next = new Map<string, LoadedList>();
      for (const [name, category] of Object.entries(INTEL_FILES)) {
        const path = join(dir, name);
        const sig = await statSig(path);
        let text: string | null = null;
        let readError: string | undefined;
        let missing = false;
        try {
          text = await readFile(path, 'utf8');
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') missing = true;
          else readError = `${code ?? 'error'}: ${(err as Error).message}`;
        }
        const status: IntelFileStatus = {
          name,
          path,
          category,
          present: !missing,
          entries: 0,
          errors: [],
          mtimeMs: sig?.mtimeMs ?? null,
          ...(readError ? { readError } : {}),
        };
        if (text !== null) {
          const { list, errors } = listFromText(name, category, text);
          next.set(name, list);
          status.entries = list.entries;
          status.errors = errors;
        } else if (!missing) {
          // Unreadable (permissions, EIO…): keep what we had.
          const prev = this.fileLists.get(name);
          if (prev) next.set(name, prev);
          status.entries = prev?.entries ?? 0;
        }
        this.fileStatus.set(name, status);
        // Only remember the signature of what we actually loaded, so a
        // transient read error is retried on the next poll.
        if (!readError) this.sigs.set(name, sigKey(sig));
      }
      this.fileLists = next;
      this.rebuildIndex();
    }
    const report: IntelReport = {
      at: this.opts.now(),
      files: [...this.fileStatus.values()],
      builtin: this.builtinReport,
      ipData: ipDataStats(),
    };
    this.lastReport = report;
    return report;
  }

  /**
   * Check file signatures (mtime, size, inode) and reload if any changed,
   * appeared or disappeared. Returns the report if a reload happened. The
   * watch() timer calls this; tests call it directly.
   */
  async checkForChanges(): Promise<IntelReport | null> {
    const dir = this.opts.dir;
    if (dir === undefined) return null;
    for (const name of Object.keys(INTEL_FILES)) {
      const key = sigKey(await statSig(join(dir, name)));
      if (this.sigs.get(name) !== key) return this.reload();
    }
    return null;
  }

  /**
   * Poll for list changes every `intervalMs` (default 5 s). Polling rather
   * than fs.watch: it also works for atomic renames, editors that replace
   * files, and network/container volumes where inotify is unreliable.
   * The timer is unref'd so it never keeps the process alive.
   */
  watch(intervalMs = 5000, onReload?: (r: IntelReport) => void, onError?: (e: unknown) => void): void {
    this.unwatch();
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.checkForChanges()
        .then((r) => {
          if (r && onReload) onReload(r);
        })
        .catch((e: unknown) => onError?.(e))
        .finally(() => {
          busy = false;
        });
    }, Math.max(100, intervalMs));
    this.timer.unref();
  }

  unwatch(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.unwatch();
  }

  /** Last reload report (file entry counts, per-line errors). */
  status(): IntelReport | null {
    return this.lastReport;
  }

  ipFacts(ip: string | IpParsed): IpFactsResult {
    const facts: IpFactsResult = {
      country: null,
      asn: null,
      asOrg: null,
      hosting: false,
      tor: false,
      proxy: false,
      vpn: false,
      sources: [],
    };
    let p: IpParsed;
    if (typeof ip === 'string') {
      const r = parseIp(ip);
      if (!r.ok) return facts;
      p = r;
    } else p = ip;
    if (this.opts.ipData ?? true) {
      facts.country = lookupCountry(p);
      const a = lookupAsn(p);
      if (a) {
        facts.asn = a.asn;
        facts.asOrg = a.org;
      }
    }
    for (const l of this.ipLists) {
      const cat = l.category as IpCategory;
      if (l.cidrs.size > 0 && l.cidrs.lookup(p) !== null) {
        facts[cat] = true;
        facts.sources.push(`file:${l.label}`);
      }
      if (facts.asn !== null && l.asns.has(facts.asn)) {
        facts[cat] = true;
        facts.sources.push(`asn:${l.label}`);
      }
    }
    return facts;
  }

  numberFacts(e164: string): NumberFactsResult {
    const facts: NumberFactsResult = { disposable: false, sources: [] };
    for (const l of this.numberLists) {
      if (l.numbers.lookup(e164) !== null) {
        facts.disposable = true;
        facts.sources.push(`${l.numberSource}:${l.label}`);
      }
    }
    return facts;
  }
}
