// Parser for plain-text list files (tor.txt, datacenter.txt, …).
//
// Format, one entry per line:
//   203.0.113.7            single IPv4 or IPv6 address
//   198.51.100.0/24        CIDR (host bits are cleared: 10.1.2.3/8 → 10.0.0.0/8)
//   +447400123456          E.164 number (anything normalizePhone accepts
//                          with a leading +, e.g. "+44 7400 123456")
//   +4470*                 number prefix (explicit, trailing *)
//   +4470                  number prefix (a + entry that is not a valid full
//                          number is taken as a prefix)
//   AS16509                autonomous system number
//   # comment              also allowed after an entry
// Blank lines are ignored; CRLF and a UTF-8 BOM are tolerated.
//
// A bad line never aborts the file: it is reported with its line number so
// an operator can fix it while the rest of the list stays in force.

import { parseCidr, parseIp } from './ip.ts';
import { foldPhoneText, normalizePhone } from './phone.ts';

export type ListKind = 'ip' | 'cidr' | 'number' | 'prefix' | 'asn';

export type ListEntry =
  | { kind: 'ip'; value: string; version: 4 | 6; line: number }
  | { kind: 'cidr'; value: string; version: 4 | 6; line: number }
  | { kind: 'number'; value: string; line: number }
  | { kind: 'prefix'; value: string; line: number }
  | { kind: 'asn'; value: number; line: number };

export interface ListError {
  /** 1-based line number. */
  line: number;
  /** The offending line (trimmed, truncated to 120 chars). */
  text: string;
  reason: 'line_too_long' | 'invalid_ip' | 'invalid_cidr' | 'invalid_number' | 'invalid_asn' | 'unrecognized' | 'wrong_kind';
}

export interface ListParse {
  entries: ListEntry[];
  errors: ListError[];
}

export interface ListParseOptions {
  /** Only these kinds are accepted; others are reported as `wrong_kind`. */
  accept?: readonly ListKind[];
  /** Lines longer than this are errors (default 256). */
  maxLineLength?: number;
}

const ASN_RE = /^AS\s?(\d{1,20})$/i;
const PREFIX_RE = /^\+([1-9]\d{0,14})\*?$/;

function classify(t: string, line: number): ListEntry | ListError['reason'] {
  if (ASN_RE.test(t)) {
    const n = Number(ASN_RE.exec(t)?.[1]);
    return n >= 1 && n <= 0xffffffff ? { kind: 'asn', value: n, line } : 'invalid_asn';
  }
  if (t.startsWith('+') || t.startsWith('＋') || t.toLowerCase().startsWith('tel:')) {
    const folded = foldPhoneText(t).replace(/[\p{Pd}.()/]/gu, '');
    if (folded.endsWith('*')) {
      const m = PREFIX_RE.exec(folded);
      return m ? { kind: 'prefix', value: `+${m[1]}`, line } : 'invalid_number';
    }
    const p = normalizePhone(t);
    if (p.ok) return { kind: 'number', value: p.e164, line };
    if (p.reason === 'has_extension' || p.reason === 'invalid_characters' || p.reason === 'too_long') return 'invalid_number';
    const m = PREFIX_RE.exec(folded);
    return m ? { kind: 'prefix', value: `+${m[1]}`, line } : 'invalid_number';
  }
  if (t.includes('/')) {
    const c = parseCidr(t);
    return c.ok ? { kind: 'cidr', value: c.cidr, version: c.version, line } : 'invalid_cidr';
  }
  if (t.includes(':') || /^[\d.]+$/.test(t)) {
    const p = parseIp(t);
    return p.ok ? { kind: 'ip', value: p.ip, version: p.version, line } : 'invalid_ip';
  }
  return 'unrecognized';
}

/** Parse list text. Never throws; bad lines land in `errors`. */
export function parseListText(text: string, opts: ListParseOptions = {}): ListParse {
  const maxLen = opts.maxLineLength ?? 256;
  const accept = opts.accept ? new Set(opts.accept) : null;
  const entries: ListEntry[] = [];
  const errors: ListError[] = [];
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const lineNo = i + 1;
    if (raw.length > maxLen) {
      errors.push({ line: lineNo, text: raw.slice(0, 120), reason: 'line_too_long' });
      continue;
    }
    const hash = raw.indexOf('#');
    const t = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (t === '') continue;
    const r = classify(t, lineNo);
    if (typeof r === 'string') errors.push({ line: lineNo, text: t.slice(0, 120), reason: r });
    else if (accept && !accept.has(r.kind)) errors.push({ line: lineNo, text: t.slice(0, 120), reason: 'wrong_kind' });
    else entries.push(r);
  }
  return { entries, errors };
}
