/**
 * The client address of a browser-facing request. X-Forwarded-For is believed only when the socket peer
 * is a configured trusted proxy, and then walked right to left, skipping trusted proxies: the first
 * untrusted hop is the client. The leftmost value is whatever the client wrote and is never used
 * (the classic bypass of IP limits). X-Real-IP, True-Client-IP, CF-Connecting-IP and Forwarded are never read:
 * one header with one rule is easier to get right than five.
 *
 * Hops are read as proxies write them: IIS, Azure Application Gateway and others append the client's port
 * (`203.0.113.5:51234`, `[2001:db8::1]:443`), which is taken off. A hop that is still no address (`unknown`,
 * garbage) leaves the client unknown: the address is then the proxy's own (so per-address limits stay
 * conservative: everyone unknown shares one budget), marked `known: false`, and the admin allowlist refuses
 * it. Falling back to the proxy's address silently let anyone through an allowlist that names the proxy.
 */
import { cidrContains, parseCidr, parseIp, withoutPort, type CidrParsed } from '../signals/ip.ts';

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

export interface ClientAddress {
  ip: string;
  /** False when a trusted proxy forwarded a hop that is not an address: who the client is, is unknown. */
  known: boolean;
}

export function clientIp(socketIp: string, xff: string | string[] | undefined, trusted: CidrParsed[]): ClientAddress {
  const peer = normalizeIp(socketIp);
  if (trusted.length === 0 || !inCidrs(peer, trusted) || !xff) return { ip: peer, known: true };
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(withoutPort(hops[i]!));
    // Garbage in the chain: trust nothing beyond the proxy, and do not pretend to know the client.
    if (!parseIp(hop).ok) return { ip: peer, known: false };
    if (!inCidrs(hop, trusted)) return { ip: hop, known: true };
  }
  return { ip: peer, known: true };
}

/** Canonical text of an address (`::ffff:1.2.3.4` → `1.2.3.4`); anything unparseable is returned as is. */
export function normalizeIp(ip: string): string {
  const p = parseIp(ip);
  return p.ok ? p.ip : ip;
}
