/**
 * Policy versions in the store: `policy:current` (the document), `policy:version` (a counter) and
 * `policy:v:<n>` (history). Every instance polls the version with the shared state refresh and swaps
 * the policy in when it changes, so one PUT reaches the whole fleet within a second.
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

export async function savePolicy(store: Store, policy: Policy, meta: { now: number; by: string | null; note: string | null }): Promise<PolicyVersion> {
  const current = (await store.getSetting<number>('policy:version')) ?? 0;
  const entry: PolicyVersion = { version: current + 1, savedAt: meta.now, savedBy: meta.by, note: meta.note, policy };
  await store.putSetting(`policy:v:${String(entry.version).padStart(8, '0')}`, entry);
  await store.putSetting('policy:current', policy);
  await store.putSetting('policy:version', entry.version);
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
  const version = (await store.getSetting<number>('policy:version')) ?? 0;
  if (version === knownVersion) return null;
  const doc = await store.getSetting<unknown>('policy:current');
  const res = parsePolicy(doc ?? {}, { relations: 'warn' });
  return res.ok ? { version, policy: res.policy, warnings: res.warnings } : { version, policy: null, errors: res.errors };
}
