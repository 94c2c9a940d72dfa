// Fast membership structures built once and queried on every request.
//
// CidrSet: IPv4/IPv6 CIDRs and single IPs → tag. Overlaps are flattened at
// build time into sorted, disjoint ranges so a lookup is one binary search
// (O(log n), no allocation for a pre-parsed IP). The most specific CIDR wins;
// for identical CIDRs the one added last wins (like Map.set).
//
// PrefixSet: E.164 numbers (exact) and number prefixes (longest match).

import { parseCidr, parseIp, type CidrParsed, type IpParsed } from './ip.ts';

// ---------------------------------------------------------------------------
// Range flattening ("painter's algorithm"). Ranges are fed sorted by start; a
// later range paints over earlier ones where they overlap. For CIDRs sorted by
// (start asc, size desc) that means nested/more-specific wins. Also used by
// ip-data.ts, whose upstream CSVs contain overlapping rows.
//
// Keys are `w` big-endian 32-bit words (1 for IPv4, 4 for IPv6) stored in
// flat Uint32Arrays, so building 400k ranges makes no per-range objects.

export type KeyWidth = 1 | 4;

function cmpKey(w: KeyWidth, a: Uint32Array, ai: number, b: Uint32Array, bi: number): number {
  const x0 = ai * w;
  const y0 = bi * w;
  for (let k = 0; k < w; k++) {
    const x = a[x0 + k] as number;
    const y = b[y0 + k] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function copyKey(w: KeyWidth, dst: Uint32Array, di: number, src: Uint32Array, si: number): void {
  const d0 = di * w;
  const s0 = si * w;
  for (let k = 0; k < w; k++) dst[d0 + k] = src[s0 + k] as number;
}

/** dst[di] = src[si] + delta (delta ±1). Returns false on wrap-around. */
function stepKey(w: KeyWidth, dst: Uint32Array, di: number, src: Uint32Array, si: number, delta: 1 | -1): boolean {
  copyKey(w, dst, di, src, si);
  const d0 = di * w;
  for (let k = w - 1; k >= 0; k--) {
    const x = dst[d0 + k] as number;
    if (delta === 1) {
      if (x !== 0xffffffff) {
        dst[d0 + k] = x + 1;
        return true;
      }
      dst[d0 + k] = 0;
    } else {
      if (x !== 0) {
        dst[d0 + k] = x - 1;
        return true;
      }
      dst[d0 + k] = 0xffffffff;
    }
  }
  return false;
}

function grow(a: Uint32Array, size: number): Uint32Array {
  if (a.length >= size) return a;
  const b = new Uint32Array(Math.max(size, a.length * 2));
  b.set(a);
  return b;
}

export interface RangeTable {
  /** `w` words per entry. */
  starts: Uint32Array;
  ends: Uint32Array;
  vals: Uint32Array;
}

export class RangeBuilder {
  private s: Uint32Array;
  private e: Uint32Array;
  private v: Uint32Array;
  private n = 0;
  // Scratch for pieces of popped ranges that lie after the new range.
  private as: Uint32Array = new Uint32Array(16);
  private ae: Uint32Array = new Uint32Array(16);
  private av: Uint32Array = new Uint32Array(4);
  private tmp: Uint32Array;

  constructor(
    readonly w: KeyWidth,
    capacity = 16,
  ) {
    const c = Math.max(1, capacity);
    this.s = new Uint32Array(c * w);
    this.e = new Uint32Array(c * w);
    this.v = new Uint32Array(c);
    this.tmp = new Uint32Array(2 * w);
  }

  get length(): number {
    return this.n;
  }

  private reserve(n: number): void {
    if (this.v.length >= n) return;
    const c = Math.max(n, this.v.length * 2);
    this.s = grow(this.s, c * this.w);
    this.e = grow(this.e, c * this.w);
    this.v = grow(this.v, c);
  }

  /** Append (start,end,val), merging with the previous range if adjacent and equal-valued. */
  private pushMerge(S: Uint32Array, si: number, E: Uint32Array, ei: number, val: number): void {
    const w = this.w;
    const n = this.n;
    if (n > 0 && this.v[n - 1] === val && stepKey(w, this.tmp, 0, this.e, n - 1, 1) && cmpKey(w, this.tmp, 0, S, si) === 0) {
      copyKey(w, this.e, n - 1, E, ei);
      return;
    }
    this.reserve(n + 1);
    copyKey(w, this.s, n, S, si);
    copyKey(w, this.e, n, E, ei);
    this.v[n] = val;
    this.n = n + 1;
  }

  /** Paint [S[si], E[ei]] with `val`. Starts must be fed in non-decreasing order. */
  paint(S: Uint32Array, si: number, E: Uint32Array, ei: number, val: number): void {
    const w = this.w;
    if (cmpKey(w, E, ei, S, si) < 0) return;
    let na = 0;
    while (this.n > 0 && cmpKey(w, this.e, this.n - 1, S, si) >= 0) {
      const i = --this.n;
      if (cmpKey(w, this.e, i, E, ei) > 0) {
        // The part of the popped range after the new one survives.
        if (this.av.length <= na) {
          this.as = grow(this.as, (na + 1) * 2 * w);
          this.ae = grow(this.ae, (na + 1) * 2 * w);
          this.av = grow(this.av, (na + 1) * 2);
        }
        stepKey(w, this.as, na, E, ei, 1); // E < e[i] ≤ max, so no wrap
        if (cmpKey(w, this.s, i, this.as, na) > 0) copyKey(w, this.as, na, this.s, i);
        copyKey(w, this.ae, na, this.e, i);
        this.av[na] = this.v[i] as number;
        na++;
      }
      if (cmpKey(w, this.s, i, S, si) < 0) {
        // The part before the new range survives in place.
        stepKey(w, this.e, i, S, si, -1); // S > s[i] ≥ 0, so no wrap
        this.n = i + 1;
        break;
      }
    }
    this.pushMerge(S, si, E, ei, val);
    for (let k = na - 1; k >= 0; k--) this.pushMerge(this.as, k, this.ae, k, this.av[k] as number);
  }

  /** Trimmed copy of the flattened ranges. */
  finish(): RangeTable {
    return {
      starts: this.s.slice(0, this.n * this.w),
      ends: this.e.slice(0, this.n * this.w),
      vals: this.v.slice(0, this.n),
    };
  }
}

/** Sort permutation of `n` keys (stable), or null if already sorted. */
export function sortOrder(w: KeyWidth, keys: Uint32Array, n: number): Uint32Array | null {
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) if (cmpKey(w, keys, i - 1, keys, i) > 0) sorted = false;
  if (sorted) return null;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort((a, b) => cmpKey(w, keys, a, keys, b) || a - b);
}

/** Index of the last range whose start ≤ x, or -1 (IPv4 / numeric keys). */
export function searchV4(starts: Uint32Array, x: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((starts[mid] as number) <= x) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

/** Compare 4-word key at `arr[4*i]` with `w`. */
function cmpAt(arr: Uint32Array, i: number, w: ArrayLike<number>): number {
  const b = 4 * i;
  for (let k = 0; k < 4; k++) {
    const x = arr[b + k] as number;
    const y = w[k] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Index of the last range whose start ≤ w, or -1 (IPv6, 4 words per key). */
export function searchV6(starts: Uint32Array, w: ArrayLike<number>): number {
  let lo = 0;
  let hi = starts.length / 4 - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (cmpAt(starts, mid, w) <= 0) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

/** Value of the IPv4 range containing x, or -1. */
export function findV4(t: RangeTable, x: number): number {
  const i = searchV4(t.starts, x);
  return i >= 0 && x <= (t.ends[i] as number) ? (t.vals[i] as number) : -1;
}

/** Value of the IPv6 range containing w (4 words), or -1. */
export function findV6(t: RangeTable, w: ArrayLike<number>): number {
  const i = searchV6(t.starts, w);
  return i >= 0 && cmpAt(t.ends, i, w) >= 0 ? (t.vals[i] as number) : -1;
}

// ---------------------------------------------------------------------------

export type AddResult = { ok: true } | { ok: false; reason: string };

const EMPTY: RangeTable = { starts: new Uint32Array(0), ends: new Uint32Array(0), vals: new Uint32Array(0) };

/**
 * Pending entries kept flat (w start words, w end words, tag per entry) in a
 * plain number array: ~8 bytes per word instead of an object per CIDR, which
 * matters for 100k-line datacenter lists.
 */
function flatten(w: KeyWidth, flat: number[]): RangeTable {
  const stride = 2 * w + 1;
  const n = flat.length / stride;
  const s = new Uint32Array(n * w);
  const e = new Uint32Array(n * w);
  const v = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < w; k++) {
      s[i * w + k] = flat[i * stride + k] as number;
      e[i * w + k] = flat[i * stride + w + k] as number;
    }
    v[i] = flat[i * stride + 2 * w] as number;
  }
  // start asc, then larger (end desc) first so nested ranges paint over it,
  // then insertion order so a later identical CIDR wins.
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => cmpKey(w, s, a, s, b) || cmpKey(w, e, b, e, a) || a - b);
  const rb = new RangeBuilder(w, n);
  for (const i of order) rb.paint(s, i, e, i, v[i] as number);
  return rb.finish();
}

export class CidrSet<T = string> {
  private tags: T[] = [];
  private tagIndex = new Map<T, number>();
  private pending4: number[] = [];
  private pending6: number[] = [];
  private count = 0;
  private dirty = false;
  private t4: RangeTable = EMPTY;
  private t6: RangeTable = EMPTY;

  /** Number of CIDRs/IPs added. */
  get size(): number {
    return this.count;
  }

  /** Number of disjoint ranges after flattening (for stats). */
  get rangeCount(): number {
    this.build();
    return this.t4.vals.length + this.t6.vals.length;
  }

  private tagId(tag: T): number {
    let id = this.tagIndex.get(tag);
    if (id === undefined) {
      id = this.tags.length;
      this.tags.push(tag);
      this.tagIndex.set(tag, id);
    }
    return id;
  }

  /** Add a CIDR or single IP. Invalid input is reported, not thrown. */
  add(cidr: string | CidrParsed, tag: T): AddResult {
    const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
    if (!c.ok) return { ok: false, reason: c.reason };
    const id = this.tagId(tag);
    if (c.version === 4) this.pending4.push(c.start, c.end, id);
    else this.pending6.push(...c.start, ...c.end, id);
    this.count++;
    this.dirty = true;
    return { ok: true };
  }

  /** Flatten into lookup tables. Called automatically by lookup() if needed. */
  build(): this {
    if (!this.dirty) return this;
    this.t4 = flatten(1, this.pending4);
    this.t6 = flatten(4, this.pending6);
    this.dirty = false;
    return this;
  }

  /** Tag of the most specific entry containing `ip`, or null (also for invalid input). */
  lookup(ip: string | IpParsed): T | null {
    if (this.dirty) this.build();
    let p: IpParsed;
    if (typeof ip === 'string') {
      const r = parseIp(ip);
      if (!r.ok) return null;
      p = r;
    } else p = ip;
    const id = p.version === 4 ? findV4(this.t4, p.v4) : findV6(this.t6, p.v6);
    return id < 0 ? null : (this.tags[id] ?? null);
  }

  has(ip: string | IpParsed): boolean {
    return this.lookup(ip) !== null;
  }
}

// ---------------------------------------------------------------------------

export interface PrefixMatch<T> {
  tag: T;
  kind: 'exact' | 'prefix';
  /** The entry that matched, e.g. '+4470' or the full number. */
  matched: string;
}

const E164_DIGITS_RE = /^\+?([1-9]\d{0,14})$/;

/**
 * Phone numbers (exact) and prefixes (longest match) over E.164 digits.
 * Exact numbers are stored as doubles in a sorted Float64Array (15 digits
 * < 2^53, and E.164 never starts with 0, so digits↔number is one-to-one):
 * ~12 bytes per number instead of ~70 for a Map<string>. Prefixes are few
 * and live in a Map keyed by digit string.
 */
export class PrefixSet<T = string> {
  private tags: T[] = [];
  private tagIndex = new Map<T, number>();
  private pendingNums: number[] = [];
  private pendingTags: number[] = [];
  private prefixes = new Map<string, number>();
  private maxPrefixLen = 0;
  private dirty = false;
  private nums = new Float64Array(0);
  private numTags = new Uint32Array(0);

  private tagId(tag: T): number {
    let id = this.tagIndex.get(tag);
    if (id === undefined) {
      id = this.tags.length;
      this.tags.push(tag);
      this.tagIndex.set(tag, id);
    }
    return id;
  }

  get size(): number {
    return this.pendingNums.length + this.prefixes.size;
  }

  /** Exact E.164 number ('+' optional). Later adds of the same number win. */
  addNumber(e164: string, tag: T): AddResult {
    const m = E164_DIGITS_RE.exec(e164);
    if (!m) return { ok: false, reason: 'not_e164_digits' };
    this.pendingNums.push(Number(m[1]));
    this.pendingTags.push(this.tagId(tag));
    this.dirty = true;
    return { ok: true };
  }

  /** Number prefix such as '+4470' (country code + leading digits). */
  addPrefix(prefix: string, tag: T): AddResult {
    const m = E164_DIGITS_RE.exec(prefix);
    if (!m) return { ok: false, reason: 'not_e164_digits' };
    const d = m[1] as string;
    this.prefixes.set(d, this.tagId(tag));
    if (d.length > this.maxPrefixLen) this.maxPrefixLen = d.length;
    return { ok: true };
  }

  build(): this {
    if (!this.dirty) return this;
    const n = this.pendingNums.length;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const nums = this.pendingNums;
    // Stable on ties → for duplicates the last one added ends up last; we
    // keep the last of each run so later adds win.
    order.sort((a, b) => (nums[a] as number) - (nums[b] as number) || a - b);
    const outN: number[] = [];
    const outT: number[] = [];
    for (let k = 0; k < n; k++) {
      const i = order[k] as number;
      const v = nums[i] as number;
      const t = this.pendingTags[i] as number;
      if (outN.length > 0 && outN[outN.length - 1] === v) outT[outT.length - 1] = t;
      else {
        outN.push(v);
        outT.push(t);
      }
    }
    this.nums = Float64Array.from(outN);
    this.numTags = Uint32Array.from(outT);
    this.dirty = false;
    return this;
  }

  /** Exact match first, then the longest prefix. Null if neither. */
  lookupDetail(e164: string): PrefixMatch<T> | null {
    if (this.dirty) this.build();
    const m = E164_DIGITS_RE.exec(e164);
    if (!m) return null;
    const d = m[1] as string;
    const x = Number(d);
    const nums = this.nums;
    let lo = 0;
    let hi = nums.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = nums[mid] as number;
      if (v === x) {
        const tag = this.tags[this.numTags[mid] as number];
        if (tag !== undefined) return { tag, kind: 'exact', matched: `+${d}` };
        break;
      }
      if (v < x) lo = mid + 1;
      else hi = mid - 1;
    }
    for (let len = Math.min(d.length, this.maxPrefixLen); len >= 1; len--) {
      const p = d.slice(0, len);
      const id = this.prefixes.get(p);
      if (id !== undefined) {
        const tag = this.tags[id];
        if (tag !== undefined) return { tag, kind: 'prefix', matched: `+${p}` };
      }
    }
    return null;
  }

  lookup(e164: string): T | null {
    return this.lookupDetail(e164)?.tag ?? null;
  }
}
