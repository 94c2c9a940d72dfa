/**
 * One data subject's records (docs/privacy.md, "Requests about one person"): which stored strings name a
 * destination. Shared by the stores' `subjectRecords`, so that all four find the same records.
 *
 * A destination is named by its key (E.164, or the canonical email address) and, for an address with a `+tag`,
 * by its limit key too (`NumberFacts.limitKey`). A counter, one-time marker or setting names it when one of its
 * key's `:`-separated parts is it (`n:+6281234567890:10m`, `tr:<it>:<hash>`, `pause:prefix:<it>`); an event, a
 * journal entry or a list note when its text contains it not as part of a longer number or address (so
 * `+491511234` does not find `+4915112345678`).
 */
export function keyNames(key: string, names: readonly string[]): boolean {
  for (const part of key.split(':')) if (names.includes(part)) return true;
  return false;
}

export function textNames(text: string | null | undefined, names: readonly string[]): boolean {
  if (!text) return false;
  return names.some((n) => boundary(n).test(text));
}

const cache = new Map<string, RegExp>();

function boundary(name: string): RegExp {
  let re = cache.get(name);
  if (!re) {
    const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // A number may not go on in digits; an address may not start or go on in address characters, and is
    // matched in any case (the key is the canonical, lower-case form; a note may write `Bob.Smith@Mail.example`).
    re = name.includes('@') ? new RegExp(`(?<![A-Za-z0-9.!#$%&'*+/=?^_\`{|}~-])${esc}(?![A-Za-z0-9.-])`, 'i') : new RegExp(`${esc}(?!\\d)`);
    if (cache.size > 100) cache.clear();
    cache.set(name, re);
  }
  return re;
}

/** `LIKE` pattern for "contains s" (a prefilter; `textNames`/`keyNames` decide). */
export function containsPattern(s: string): string {
  return `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A list entry's note with the destination's mentions replaced (the entry itself is someone else's: an IP block). */
export function redactText(text: string, names: readonly string[]): string {
  let out = text;
  for (const n of names) out = out.replace(new RegExp(boundary(n).source, `g${boundary(n).flags}`), '[erased]');
  return out;
}

/** Whether an erasure deletes the list entry (its value is the destination) or only redacts its note. */
export function entryIsSubject(e: { value: string }, names: readonly string[]): boolean {
  return names.includes(e.value);
}
