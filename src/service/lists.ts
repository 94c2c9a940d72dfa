/**
 * Block/allow list entries: validation and normalisation of values (so that `+62 812…` and `+62812…`
 * are one entry), shared by the admin API and `otp-shield lists`.
 */
import { randomBytes } from 'node:crypto';
import type { ListAction, ListEntry, ListKind, Store } from '../store/interface.ts';
import { recordedStep } from './journal.ts';
import { eventId } from './ids.ts';
import { parseCidr, parseIp } from '../signals/ip.ts';
import type { Signals } from './ports.ts';
import { regionProblem } from '../lib/regions.ts';
import { normalizeEmailAddress } from '../signals/email.ts';

export const LIST_KINDS = ['number', 'prefix', 'ip', 'cidr', 'device', 'country', 'email', 'domain'] as const satisfies readonly ListKind[];

export type NormalizedValue = { ok: true; value: string } | { ok: false; message: string };

export function normalizeListValue(kind: ListKind, raw: string, signals: Pick<Signals, 'parsePhone'>): NormalizedValue {
  const v = raw.trim();
  switch (kind) {
    case 'number': {
      const p = signals.parsePhone(v);
      return p.ok ? { ok: true, value: p.e164 } : { ok: false, message: `"${v}" is not a valid phone number` };
    }
    case 'prefix': {
      const digits = v.replace(/[\s().-]/g, '');
      return /^\+[1-9]\d{0,14}$/.test(digits) ? { ok: true, value: digits } : { ok: false, message: `"${v}" is not a number prefix like +62812` };
    }
    case 'ip': {
      const p = parseIp(v);
      return p.ok ? { ok: true, value: p.ip } : { ok: false, message: `"${v}" is not an IP address` };
    }
    case 'cidr': {
      const p = parseCidr(v);
      return p.ok ? { ok: true, value: v.toLowerCase() } : { ok: false, message: `"${v}" is not a CIDR like 203.0.113.0/24` };
    }
    case 'email': {
      // The canonical address, as the send path keys it (signals/email.ts): `J.Doe+x@GMail.com` is `jdoe@gmail.com`.
      const e = normalizeEmailAddress(v);
      return e.ok ? { ok: true, value: e.address } : { ok: false, message: `"${v}" is not a valid email address` };
    }
    case 'domain': {
      // A domain matches its addresses and its subdomains' (`example.com` matches `a@mail.example.com`).
      const e = normalizeEmailAddress(`postmaster@${v.replace(/^@/, '')}`);
      return e.ok ? { ok: true, value: e.domain } : { ok: false, message: `"${v}" is not a domain name like example.com` };
    }
    case 'device':
      return /^[\x21-\x7e]{1,128}$/.test(v) ? { ok: true, value: v } : { ok: false, message: 'device ids are 1-128 printable characters' };
    case 'country': {
      if (!/^[A-Za-z]{2}$/.test(v)) return { ok: false, message: `"${v}" is not a two-letter country code` };
      // A country entry matches the number's region or the IP's country.
      const problem = regionProblem(v.toUpperCase(), { ipCountry: true });
      return problem === null ? { ok: true, value: v.toUpperCase() } : { ok: false, message: problem };
    }
  }
}

/**
 * Add an entry, recorded (`list.add`, journaled ahead: service/journal.ts recordedStep); `by`: who (a key id,
 * `cli`). A value already in force in that list (same kind, same normalised value) is not added again:
 * `existed` and the entry in force, so that a retried request — a client whose first POST timed out — leaves
 * one entry, which one DELETE removes. When the request lasts longer (no expiry, or a later one) the entry in
 * force is extended to it (recorded as `list.add` with `extended`): a permanent block asked for over a
 * temporary one must not lapse with the temporary one. Its note stays. Two adds at the same moment on different
 * instances can still both add theirs.
 */
export async function addListEntry(
  ctx: { store: Store; signals: Pick<Signals, 'parsePhone'>; state: { invalidate(): void } },
  e: { list: ListAction; kind: ListKind; value: string; note: string | null; expiresAt: number | null },
  now: number,
  by: string | null = null,
  /** False when the caller has looked for the value in force itself (`lists import`, once per file). */
  lookUp = true,
): Promise<{ ok: true; entry: ListEntry; existed: boolean } | { ok: false; message: string }> {
  const norm = normalizeListValue(e.kind, e.value, ctx.signals);
  if (!norm.ok) return norm;
  if (e.expiresAt !== null && !(e.expiresAt > now)) return { ok: false, message: 'expiresAt must be in the future' };
  const existing = lookUp ? (await ctx.store.listEntries(now, { list: e.list, kind: e.kind })).find((x) => x.value === norm.value) : undefined;
  const outlasts = existing !== undefined && existing.expiresAt !== null && (e.expiresAt === null || e.expiresAt > existing.expiresAt);
  if (existing && !outlasts) return { ok: true, entry: existing, existed: true };
  // A new entry, or the one in force extended: one write, recorded the same way.
  const entry: ListEntry = existing
    ? { ...existing, expiresAt: e.expiresAt }
    : { id: `le_${randomBytes(9).toString('base64url')}`, list: e.list, kind: e.kind, value: norm.value, note: e.note, createdAt: now, expiresAt: e.expiresAt };
  try {
    await recordedStep(ctx.store, { id: eventId(), at: now, type: 'list.add', data: { entry, by, ...(existing ? { extended: true } : {}) } }, () => ctx.store.putListEntry(entry));
  } finally {
    // Even when only the event failed, the entry may be in force: instances re-read the lists.
    ctx.state.invalidate();
  }
  return { ok: true, entry, existed: existing !== undefined };
}

/** Remove an entry by id, recorded (`list.remove`) when there was one. Returns whether there was. */
export async function removeListEntry(ctx: { store: Store; state: { invalidate(): void } }, id: string, now: number, by: string | null): Promise<boolean> {
  try {
    return await recordedStep(ctx.store, { id: eventId(), at: now, type: 'list.remove', data: { id, by } }, () => ctx.store.removeListEntry(id), (removed, e) => (removed ? e : null));
  } finally {
    ctx.state.invalidate();
  }
}


export function listView(e: ListEntry) {
  return {
    id: e.id,
    list: e.list,
    kind: e.kind,
    value: e.value,
    note: e.note,
    createdAt: new Date(e.createdAt).toISOString(),
    expiresAt: e.expiresAt === null ? null : new Date(e.expiresAt).toISOString(),
  };
}
