// IP address parsing and subnet helpers.
//
// Everything downstream (rate limits keyed by subnet, list membership, ASN
// lookups) needs ONE canonical spelling per address, otherwise an attacker
// rotates spellings (`::ffff:1.2.3.4`, `0001.2.3.4`, upper-case hex, ...) to
// dodge per-IP counters. So parsing is strict and always returns a canonical
// form plus a numeric form that lookups can use without re-parsing.
//
// The IPv6 parser is our own (see v6FromString); ipaddr.js serves as the
// reference implementation in the tests.

/** Parsed IPv4: `v4` is the address as an unsigned 32-bit integer. */
export interface Ipv4Parsed {
  ok: true;
  version: 4;
  ip: string;
  v4: number;
}

/** Parsed IPv6: `v6` is the address as 4 big-endian 32-bit words. Treat as read-only. */
export interface Ipv6Parsed {
  ok: true;
  version: 6;
  ip: string;
  v6: Uint32Array;
}

export type IpParsed = Ipv4Parsed | Ipv6Parsed;
export type IpParseError = { ok: false; reason: 'not_a_string' | 'too_long' | 'invalid' | 'zone_id' };
export type IpParseResult = IpParsed | IpParseError;

// Longest legal textual IPv6 (with embedded IPv4) is 45 chars; leave slack for
// surrounding whitespace but refuse to run regexes over megabytes of header.
const MAX_IP_LEN = 64;

// Strict dotted-quad: exactly 4 decimal parts, no leading zeros (a leading
// zero is octal in inet_aton, so `010.0.0.1` means different things to
// different parsers — refuse rather than guess).
const V4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const V6_CHARS_RE = /^[0-9a-fA-F:.]+$/;

function v4FromString(s: string): number | null {
  const m = V4_RE.exec(s);
  if (!m) return null;
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

export function v4ToString(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;

/**
 * RFC 5952 text for 4 words: lower-case, no leading zeros, the longest run
 * (first on ties) of two or more zero groups shortened to `::`.
 */
export function v6ToString(w: ArrayLike<number>): string {
  const g: number[] = [];
  for (let i = 0; i < 4; i++) {
    const x = (w[i] ?? 0) >>> 0;
    g.push(x >>> 16, x & 0xffff);
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number): string => g.slice(a, b).map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/**
 * Strict RFC 4291 text → 4 words, or null. Hand-written instead of
 * ipaddr.js because it runs per request (ipaddr.js costs ~8 µs) and
 * ipaddr.js 2.x reads `::1.2.3.4` as `::ffff:1.2.3.4`; the tests check this
 * parser against ipaddr.js on everything else.
 */
function v6FromString(t: string): Uint32Array | null {
  const dbl = t.indexOf('::');
  if (dbl >= 0 && t.indexOf('::', dbl + 1) >= 0) return null;
  const headText = dbl >= 0 ? t.slice(0, dbl) : t;
  const tailText = dbl >= 0 ? t.slice(dbl + 2) : '';
  const head = headText === '' ? [] : headText.split(':');
  const tail = tailText === '' ? [] : tailText.split(':');
  const groups: number[] = [];
  const tailGroups: number[] = [];
  const last = dbl >= 0 ? tail : head;
  const take = (parts: string[], into: number[]): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      if (parts === last && i === parts.length - 1 && part.includes('.')) {
        const q = v4FromString(part);
        if (q === null) return false;
        into.push(q >>> 16, q & 0xffff);
      } else if (HEX_GROUP_RE.test(part)) into.push(parseInt(part, 16));
      else return false;
    }
    return true;
  };
  if (!take(head, groups) || !take(tail, tailGroups)) return null;
  const total = groups.length + tailGroups.length;
  if (dbl >= 0 ? total > 7 : total !== 8) return null;
  while (dbl >= 0 && groups.length + tailGroups.length < 8) groups.push(0);
  groups.push(...tailGroups);
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = (((groups[2 * i] as number) << 16) | (groups[2 * i + 1] as number)) >>> 0;
  return w;
}

function v4Result(n: number): Ipv4Parsed {
  return { ok: true, version: 4, ip: v4ToString(n), v4: n };
}

/**
 * An address as integrators forward it, without the decorations some proxies add: `203.0.113.5:51234`
 * (IIS and Azure append the client's port to X-Forwarded-For), `[2001:db8::1]` and `[2001:db8::1]:443`.
 * Anything else is returned as given, for `parseIp` to accept or refuse. A bare IPv6 address is never
 * mistaken for one with a port: only the bracketed form carries one.
 */
export function withoutPort(s: string): string {
  const t = s.trim();
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(t);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(t);
  return v4 ? v4[1]! : t;
}

/**
 * Parse an IP address strictly into canonical form.
 * - IPv4: dotted quad only (no octal/hex/short forms).
 * - IPv6: any RFC 4291 spelling; output is RFC 5952 (lower-case, `::`).
 * - IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes the IPv4 address, because a
 *   dual-stack socket reports v4 clients that way and they must share keys.
 * - Zone ids (`fe80::1%eth0`) are rejected: they are host-local and would
 *   otherwise create unlimited distinct keys for one address.
 * Surrounding whitespace is trimmed (header splitting leaves it behind).
 */
export function parseIp(s: unknown): IpParseResult {
  if (typeof s !== 'string') return { ok: false, reason: 'not_a_string' };
  if (s.length > MAX_IP_LEN) return { ok: false, reason: 'too_long' };
  const t = s.trim();
  const n = v4FromString(t);
  if (n !== null) return v4Result(n);
  if (t.includes('%')) return { ok: false, reason: 'zone_id' };
  if (!t.includes(':') || !V6_CHARS_RE.test(t)) return { ok: false, reason: 'invalid' };

  const w = v6FromString(t);
  if (w === null) return { ok: false, reason: 'invalid' };
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return v4Result(w[3] ?? 0);
  return { ok: true, version: 6, ip: v6ToString(w), v6: w };
}

// IPv4 special-purpose blocks (RFC 6890 registry, simplified) as
// [network, prefix]. Addresses here are never a client's public identity.
const V4_SPECIAL: readonly [number, number][] = [
  [0x00000000, 8], // 0.0.0.0/8 "this network"
  [0x0a000000, 8], // 10/8 private
  [0x64400000, 10], // 100.64/10 carrier-grade NAT
  [0x7f000000, 8], // 127/8 loopback
  [0xa9fe0000, 16], // 169.254/16 link-local
  [0xac100000, 12], // 172.16/12 private
  [0xc0000000, 24], // 192.0.0.0/24 IETF protocol assignments
  [0xc0000200, 24], // 192.0.2.0/24 TEST-NET-1
  [0xc0a80000, 16], // 192.168/16 private
  [0xc6120000, 15], // 198.18/15 benchmarking
  [0xc6336400, 24], // 198.51.100/24 TEST-NET-2
  [0xcb007100, 24], // 203.0.113/24 TEST-NET-3
  [0xe0000000, 4], // 224/4 multicast
  [0xf0000000, 4], // 240/4 reserved + broadcast
];

/**
 * True for globally routable unicast addresses. Private, loopback,
 * link-local, CGNAT, documentation, multicast and reserved ranges are not:
 * lookups for them must not produce facts (the upstream country data even
 * maps 192.168.0.0/16 to AU). IPv6 is public only inside 2000::/3, minus
 * the documentation prefixes 2001:db8::/32 and 3fff::/20.
 */
export function isPublicIp(ip: string | IpParsed): boolean {
  const p = asParsed(ip);
  if (!p) return false;
  if (p.version === 4) {
    // Indexed loop: destructuring for-of allocated an iterator result per range (twice per request's IP).
    for (let i = 0; i < V4_SPECIAL.length; i++) {
      const [net, len] = V4_SPECIAL[i]!;
      if (((p.v4 & mask32(len)) >>> 0) === net) return false;
    }
    return true;
  }
  const w0 = p.v6[0] ?? 0;
  if (w0 >>> 29 !== 1) return false; // outside 2000::/3 (ULA fc00::/7, fe80::/10, ff00::/8, ::1 …)
  if (w0 === 0x20010db8) return false;
  if (w0 >>> 20 === 0x3ff) return false; // 3fff::/20
  return true;
}

function asParsed(ip: string | IpParsed): IpParsed | null {
  if (typeof ip !== 'string') return ip;
  const r = parseIp(ip);
  return r.ok ? r : null;
}

/** Mask of the top `bits` bits of a 32-bit word (bits in 0..32). */
function mask32(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** Network address of `w` (4 words) for prefix length `prefix` (0..128). */
export function v6Network(w: ArrayLike<number>, prefix: number): Uint32Array {
  const out = new Uint32Array(4);
  for (let i = 0; i < 4; i++) out[i] = ((w[i] ?? 0) & mask32(prefix - 32 * i)) >>> 0;
  return out;
}

/** Last address of the `prefix` network containing `w`. */
export function v6Broadcast(w: ArrayLike<number>, prefix: number): Uint32Array {
  const out = new Uint32Array(4);
  for (let i = 0; i < 4; i++) out[i] = ((w[i] ?? 0) | ~mask32(prefix - 32 * i)) >>> 0;
  return out;
}

/**
 * `ip`'s enclosing subnet as canonical CIDR text, e.g. `36.72.10.0/24`.
 * Returns null for unparseable input.
 */
export function subnetOf(ip: string | IpParsed, v4Bits: number, v6Bits: number): string | null {
  const p = asParsed(ip);
  if (!p) return null;
  if (p.version === 4) {
    const b = Math.max(0, Math.min(32, v4Bits));
    return `${v4ToString((p.v4 & mask32(b)) >>> 0)}/${b}`;
  }
  const b = Math.max(0, Math.min(128, v6Bits));
  return `${v6ToString(v6Network(p.v6, b))}/${b}`;
}

/**
 * /24 for IPv4, /64 for IPv6: the network of the trust context (device + network), and for IPv6 the
 * per-address key (`addressKey`): one IPv6 customer (one LAN) gets a whole /64, so an attacker can trivially
 * rotate through the low 64 bits. The per-subnet limit counts `networkKey` and `siteKey` instead.
 */
export function subnetKey(ip: string | IpParsed): string | null {
  return subnetOf(ip, 24, 64);
}

/**
 * Key for "same client address" counters (failed API keys, challenges, failed checks): the address itself for
 * IPv4, its /64 for IPv6 — one IPv6 customer gets a whole /64, so counting full addresses would let anyone
 * rotate through the low 64 bits for a fresh budget per request. Unparseable input is returned as given.
 */
export function addressKey(ip: string | IpParsed): string {
  const p = asParsed(ip);
  if (!p) return typeof ip === 'string' ? ip : String(ip);
  return p.version === 4 ? p.ip : subnetKey(p)!;
}

/**
 * Key for "same allocation" counters (the per-subnet send limit): /24 for IPv4, /56 for IPv6. A home is usually
 * delegated a /56 (RFC 6177), 256 /64s as a /24 holds 256 addresses; `subnetKey`'s /64 is a single IPv6 client,
 * which can rotate its /64s through the delegation.
 */
export function networkKey(ip: string | IpParsed): string | null {
  return subnetOf(ip, 24, 56);
}

/** An IPv6 address's /48 (a site: 256 /56s); null for IPv4 and unparseable input. */
export function siteKey(ip: string | IpParsed): string | null {
  const p = asParsed(ip);
  return p && p.version === 6 ? subnetOf(p, 24, 48) : null;
}

export type CidrParsed =
  | { ok: true; version: 4; cidr: string; prefix: number; start: number; end: number }
  | { ok: true; version: 6; cidr: string; prefix: number; start: Uint32Array; end: Uint32Array };
export type CidrParseResult = CidrParsed | { ok: false; reason: 'not_a_string' | 'invalid' | 'bad_prefix' };

const PREFIX_RE = /^\d{1,3}$/;

/**
 * Parse `a.b.c.d/n`, `v6/n`, or a bare address (= /32 or /128).
 * Host bits below the prefix are cleared (`10.1.2.3/8` → `10.0.0.0/8`), as
 * routers do, rather than rejected — list files from the wild contain them.
 * An IPv4-mapped IPv6 CIDR with prefix ≥ 96 becomes the IPv4 CIDR so it
 * matches what parseIp() produces for mapped addresses.
 */
export function parseCidr(s: unknown): CidrParseResult {
  if (typeof s !== 'string') return { ok: false, reason: 'not_a_string' };
  const t = s.trim();
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  const a = parseIp(addrText);
  if (!a.ok) return { ok: false, reason: 'invalid' };
  const wasV6Text = addrText.includes(':');
  let prefix: number;
  if (slash < 0) prefix = wasV6Text ? 128 : 32;
  else {
    const pt = t.slice(slash + 1);
    if (!PREFIX_RE.test(pt)) return { ok: false, reason: 'bad_prefix' };
    prefix = Number(pt);
  }
  if (a.version === 4) {
    if (wasV6Text) {
      // Mapped form ::ffff:a.b.c.d/n — only meaningful for n ≥ 96.
      if (prefix < 96 || prefix > 128) return { ok: false, reason: 'bad_prefix' };
      prefix -= 96;
    } else if (prefix > 32) return { ok: false, reason: 'bad_prefix' };
    const start = (a.v4 & mask32(prefix)) >>> 0;
    const end = (start | ~mask32(prefix)) >>> 0;
    return { ok: true, version: 4, cidr: `${v4ToString(start)}/${prefix}`, prefix, start, end };
  }
  if (prefix > 128) return { ok: false, reason: 'bad_prefix' };
  const start = v6Network(a.v6, prefix);
  const end = v6Broadcast(a.v6, prefix);
  return { ok: true, version: 6, cidr: `${v6ToString(start)}/${prefix}`, prefix, start, end };
}

/** Lexicographic compare of two 4-word IPv6 values. */
export function cmpV6(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < 4; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** True if `ip` lies in `cidr`. False for anything unparseable or a version mismatch. */
export function cidrContains(cidr: string | CidrParsed, ip: string | IpParsed): boolean {
  const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  const p = asParsed(ip);
  if (!c.ok || !p || c.version !== p.version) return false;
  if (c.version === 4 && p.version === 4) return p.v4 >= c.start && p.v4 <= c.end;
  if (c.version === 6 && p.version === 6) return cmpV6(p.v6, c.start) >= 0 && cmpV6(p.v6, c.end) <= 0;
  return false;
}
