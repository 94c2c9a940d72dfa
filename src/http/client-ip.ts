/**
 * The client address of a browser-facing request. X-Forwarded-For is believed only when the socket peer
 * is a configured trusted proxy, and then walked right to left, skipping trusted proxies: the first
 * untrusted hop is the client. The leftmost value is whatever the client wrote and is never used
 * (the classic bypass of IP limits). X-Real-IP, True-Client-IP, CF-Connecting-IP and Forwarded are never read:
 * one header with one rule is easier to get right than five.
 */
import { cidrContains, parseCidr, parseIp, type CidrParsed } from '../signals/ip.ts';

export function compileCidrs(cidrs: string[]): CidrParsed[] {
  const out: CidrParsed[] = [];
  for (const c of cidrs) {
    const spec = c.includes('/') ? c : `${c}/${c.includes(':') ? 128 : 32}`;
    const parsed = parseCidr(spec);
    if (!parsed.ok) throw new Error(`invalid CIDR "${c}"`);
    out.push(parsed);
  }
  return out;
}

export function inCidrs(ip: string, cidrs: CidrParsed[]): boolean {
  const p = parseIp(ip);
  return p.ok && cidrs.some((c) => cidrContains(c, p));
}

export function clientIp(socketIp: string, xff: string | string[] | undefined, trusted: CidrParsed[]): string {
  const peer = normalizeIp(socketIp);
  if (trusted.length === 0 || !inCidrs(peer, trusted) || !xff) return peer;
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]!);
    if (!parseIp(hop).ok) return peer; // garbage in the chain: trust nothing beyond the proxy
    if (!inCidrs(hop, trusted)) return hop;
  }
  return peer;
}

/** Canonical text of an address (`::ffff:1.2.3.4` → `1.2.3.4`); anything unparseable is returned as is. */
export function normalizeIp(ip: string): string {
  const p = parseIp(ip);
  return p.ok ? p.ip : ip;
}
