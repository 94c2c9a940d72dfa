/**
 * Keyed pseudonyms of IP addresses for exports that must stay replayable (`events export --pseudonymize`).
 *
 * What the decisions use of an address is its groupings, not its identity: the per-address counters (an IPv4
 * address, an IPv6 /64), the per-subnet ones (IPv4 /24, IPv6 /56 and /48) and the address's facts (country,
 * network, hosting, Tor, proxy, VPN), which the export carries beside it. So a pseudonym keeps the routed
 * network (IPv4 /24, IPv6 /48) and replaces what identifies a subscriber inside it by a keyed permutation:
 *  - IPv4: the last octet, permuted within its /24;
 *  - IPv6: the /56 inside its /48 and the /64 inside its /56, each permuted (so two /64s of one /56 stay in
 *    one /56, and distinct ones stay distinct); the interface identifier (the low 64 bits, which no counter
 *    reads) becomes keyed hash bits.
 * Permutations, not hashes: two addresses of one /24 never merge, so a replay counts exactly what the live
 * service counted. Without the key, the host part is one of 256 (an IPv4 /24) or 65,536 (an IPv6 /48) — a
 * pseudonym, not anonymity: the network stays visible, and the key must be kept as secret as the numbers'.
 */
import { createHmac } from 'node:crypto';
import { parseCidr, parseIp, v4ToString, v6Network, v6ToString } from '../signals/ip.ts';

/**
 * A keyed permutation of 0..255: a 4-round Feistel network over two 4-bit halves, whose round function is an
 * HMAC of the key, the context and the round. Any round function gives a bijection.
 */
function permuteByte(secret: string, context: string, x: number): number {
  let l = x >> 4;
  let r = x & 15;
  for (let round = 0; round < 4; round++) {
    const f = createHmac('sha256', secret).update(`${context}|${round}|${r}`).digest()[0]! & 15;
    [l, r] = [r, l ^ f];
  }
  return (l << 4) | r;
}

export type IpPseudonymizer = (ip: string) => string;

export function ipPseudonymizer(secret: string, cacheSize = 100_000): IpPseudonymizer {
  if (secret.length === 0) throw new Error('ipPseudonymizer: an empty key');
  const cache = new Map<string, string>();
  const compute = (ip: string): string => {
    const p = parseIp(ip);
    if (!p.ok) return ip;
    if (p.version === 4) {
      const net = p.v4 >>> 8;
      return v4ToString(((net << 8) | permuteByte(secret, `v4|${net}`, p.v4 & 255)) >>> 0);
    }
    const w = Uint32Array.from(p.v6);
    // Word 1 holds bits 32–63: its high half is the rest of the /48, then the /56 byte, then the /64 byte.
    const site = `${w[0]}:${w[1]! >>> 16}`;
    const b56 = (w[1]! >>> 8) & 255;
    const b64 = w[1]! & 255;
    const p56 = permuteByte(secret, `v6|${site}`, b56);
    const p64 = permuteByte(secret, `v6|${site}:${b56}`, b64);
    w[1] = ((w[1]! & 0xffff0000) | (p56 << 8) | p64) >>> 0;
    const iid = createHmac('sha256', secret).update(`iid|${p.ip}`).digest();
    w[2] = iid.readUInt32BE(0);
    w[3] = iid.readUInt32BE(4);
    return v6ToString(w);
  };
  return (ip) => {
    let out = cache.get(ip);
    if (out === undefined) {
      out = compute(ip);
      if (cache.size >= cacheSize) cache.clear();
      cache.set(ip, out);
    }
    return out;
  };
}

/**
 * A network's pseudonym (a block-list CIDR in an export), consistent with its addresses' pseudonyms where that
 * can be expressed as one network: an IPv4 network of /24 or wider and an IPv6 one of /48 or wider are kept
 * (their addresses' pseudonyms stay inside them); an IPv6 /56 or /64, and a single address, become the
 * network of their pseudonyms. Other lengths (an IPv4 /28, an IPv6 /60): their addresses' pseudonyms are
 * scattered over the enclosing /24 or /56, so no network of the same length holds them, and any real one
 * would hold other people's: they become a network of the documentation ranges (192.0.2.0/24, 2001:db8::/32),
 * which matches no traffic, so a replay applies the entry to nobody (docs/privacy.md).
 */
export function cidrPseudonym(pseudo: IpPseudonymizer, cidr: string): string {
  const c = parseCidr(cidr);
  if (!c.ok) return cidr;
  if (c.version === 4) {
    if (c.prefix <= 24) return c.cidr;
    if (c.prefix < 32) return `192.0.2.0/${c.prefix}`;
    return `${pseudo(v4ToString(c.start))}/32`;
  }
  if (c.prefix <= 48) return c.cidr;
  if (c.prefix !== 56 && c.prefix !== 64 && c.prefix !== 128) return `2001:db8::/${c.prefix}`;
  const p = parseIp(pseudo(v6ToString(c.start)));
  if (!p.ok || p.version !== 6) return `2001:db8::/${c.prefix}`;
  return `${v6ToString(v6Network(p.v6, c.prefix))}/${c.prefix}`;
}
