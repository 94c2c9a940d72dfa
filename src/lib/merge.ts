/**
 * Deep merge of plain objects for layered documents (defaults ← file ← environment).
 * Arrays and scalars replace; objects merge. Never follows `__proto__`, `constructor` or `prototype`:
 * policy and config documents can come from an API call, so they are untrusted input.
 */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * JSON-pointer paths of the keys deepMerge skips, so that a validator can report them as unknown instead of
 * their being dropped without a word (`{"limits": {"constructor": 1}}` used to validate as the defaults).
 */
export function reservedKeyPaths(doc: unknown, path = ''): string[] {
  if (doc === null || typeof doc !== 'object') return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    const at = `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (RESERVED.has(k)) out.push(at);
    else out.push(...reservedKeyPaths(v, at));
  }
  return out;
}

export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (RESERVED.has(k)) continue;
    const cur = out[k];
    out[k] = isPlainObject(v) && isPlainObject(cur) ? deepMerge(cur, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
