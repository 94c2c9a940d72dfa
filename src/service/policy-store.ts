/**
 * Policy versions in the store:
 * - `policy:head`: `{version, policy}`, the policy in force and its version, in one document, so an instance
 *   can never adopt one version's number with another's policy;
 * - `policy:v:<n>`: the history, one document per version;
 * - `policy:claim:<n>` (one-time tokens): a version number belongs to one save, even when two admins save at
 *   the same moment on two instances (a read-then-write counter gave both the same number);
 * - `policy:current` and `policy:version`: what versions before the head document wrote and read; still
 *   written, and read when newer than the head, so instances of both versions follow each other during a
 *   rolling upgrade.
 * Every instance polls the head with the shared state refresh and swaps the policy in when it changes, so
 * one PUT reaches the whole fleet within a second, and instances always converge on the same document.
 */
import { parsePolicy, type Policy, type PolicyProblem } from '../engine/policy.ts';
import type { Store } from '../store/interface.ts';

export interface PolicyVersion {
  version: number;
  savedAt: number;
  savedBy: string | null;
  note: string | null;
  policy: Policy;
}

interface Head {
  version: number;
  policy: unknown;
}

const HEAD = 'policy:head';
/** A claim must outlive a save; after it, the head's version is above the claimed number anyway. */
const CLAIM_TTL_MS = 86_400_000;

/** Another save took effect after this one: the policy in force is `inForce`, not the one just saved. */
export class PolicySaveConflict extends Error {
  override readonly name = 'PolicySaveConflict';
  constructor(readonly saved: number, readonly inForce: number) {
    super(`policy version ${saved} was saved, but version ${inForce}, saved at the same moment, is in force`);
  }
}

async function latestVersion(store: Store): Promise<number> {
  const [head, legacy] = await Promise.all([store.getSetting<Head>(HEAD), store.getSetting<number>('policy:version')]);
  return Math.max(head?.version ?? 0, legacy ?? 0);
}

/**
 * Save `policy` as a new version and put it in force. Throws `PolicySaveConflict` when a concurrent save
 * overwrote the head after this one (the version stays in the history; the caller reports a conflict).
 */
export async function savePolicy(store: Store, policy: Policy, meta: { now: number; by: string | null; note: string | null }): Promise<PolicyVersion> {
  let version = (await latestVersion(store)) + 1;
  for (let tries = 0; !(await store.useOnce(`policy:claim:${version}`, CLAIM_TTL_MS, meta.now)); tries++) {
    if (tries >= 100) throw new Error('cannot claim a policy version number');
    version++;
  }
  const entry: PolicyVersion = { version, savedAt: meta.now, savedBy: meta.by, note: meta.note, policy };
  await store.putSetting(`policy:v:${String(version).padStart(8, '0')}`, entry);
  await store.putSetting(HEAD, { version, policy } satisfies Head);
  await store.putSetting('policy:current', policy);
  await store.putSetting('policy:version', version);
  const head = await store.getSetting<Head>(HEAD);
  if (head && head.version !== version) throw new PolicySaveConflict(version, head.version);
  return entry;
}

export async function policyHistory(store: Store): Promise<PolicyVersion[]> {
  const rows = await store.listSettings<PolicyVersion>('policy:v:');
  return rows.map((r) => r.value).sort((a, b) => b.version - a.version);
}

export type StoredPolicy =
  | { version: number; policy: Policy; warnings: PolicyProblem[] }
  /** The stored document does not load (written by a newer version, or edited in the store by hand). */
  | { version: number; policy: null; errors: PolicyProblem[] };

/**
 * Reload the stored policy when its version changed; null when it did not. A stored document is read with
 * `relations: 'warn'` (it was valid when it was saved); one that does not load at all comes back with its
 * errors, for the caller to report loudly — never silently replaced by the defaults.
 */
export async function refreshPolicy(store: Store, knownVersion: number): Promise<StoredPolicy | null> {
  const [head, legacy] = await Promise.all([store.getSetting<Head>(HEAD), store.getSetting<number>('policy:version')]);
  // A save by an instance of an older version writes only the legacy keys: follow it when it is newer.
  const useHead = head !== null && head.version >= (legacy ?? 0);
  const version = useHead ? head.version : (legacy ?? 0);
  if (version === knownVersion) return null;
  const doc = useHead ? head.policy : await store.getSetting<unknown>('policy:current');
  // Keys and rules this version does not know come from a newer version (every saved document carries the
  // defaults of the version that saved it, new keys included): they are set aside, with a warning naming each,
  // rather than the whole policy refused and the built-in defaults left in force on a rolled-back or
  // not-yet-upgraded instance. The parser names a limited number of problems per pass, so this repeats; what
  // fails after them is reported as the reason.
  let current: unknown = doc ?? {};
  const ignored: PolicyProblem[] = [];
  for (let pass = 0; pass < MAX_TRIM_PASSES; pass++) {
    const res = parsePolicy(current, { relations: 'warn' });
    if (res.ok) return { version, policy: res.policy, warnings: [...ignored, ...res.warnings] };
    const unknown = res.errors.filter((e) => e.message.startsWith('unknown key') || e.message.startsWith('unknown rule'));
    if (unknown.length === 0 || current === null || typeof current !== 'object' || Array.isArray(current)) return { version, policy: null, errors: res.errors };
    for (const e of unknown) ignored.push({ path: e.path, message: 'ignored: not a setting of this version (saved by a newer version?)' });
    current = withoutPaths(current as Record<string, unknown>, unknown.map((e) => e.path));
  }
  return { version, policy: null, errors: [{ path: '/', message: `more than ${ignored.length} keys this version does not know` }] };
}

/** Passes of setting unknown keys aside (each names up to 20 problems): a newer version adds a few. */
const MAX_TRIM_PASSES = 10;

/** A copy of `doc` without the keys at these JSON-pointer paths (`/monitoring/alerts/senderFailures`). */
function withoutPaths(doc: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  const copy = structuredClone(doc);
  for (const path of paths) {
    const parts = path.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    let at: unknown = copy;
    for (const key of parts.slice(0, -1)) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
    if (at !== null && typeof at === 'object' && parts.length > 0) delete (at as Record<string, unknown>)[parts.at(-1)!];
  }
  return copy;
}
