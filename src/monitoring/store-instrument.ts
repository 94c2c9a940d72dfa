/**
 * Store instrumentation: latency and errors of every store operation, and a tap on the audit events.
 *
 * Why in place: the verification service already holds the store object when layers are installed, so the
 * only way to observe its calls without changing the core is to wrap the methods on that same object.
 * Wrapping is idempotent per (store, observer) and keeps `this`, so class-based stores with private state
 * work unchanged. The event tap runs only after a successful append, so what monitoring counts is exactly
 * what the audit log holds.
 *
 * A store marked with `skipStoreTiming` (the replay's: its latencies are those of an in-memory map, and no
 * metrics route serves them) gets only the event tap — no per-operation wrapper, timer or histogram sample.
 */
import type { AuditEvent, Store } from '../store/interface.ts';

export const STORE_OPS = [
  'ping', 'createVerification', 'consumeLimitsAndCreate', 'getVerification', 'findPending', 'addCode', 'withdrawCode', 'reserveAttempt', 'transition',
  'consumeLimits', 'peekLimits', 'resetLimits', 'tally', 'useOnce', 'putApiKey', 'getApiKey', 'listApiKeys', 'revokeApiKey',
  'touchApiKey', 'putListEntry', 'removeListEntry', 'listEntries', 'listsVersion', 'getSetting', 'putSetting',
  'deleteSetting', 'listSettings', 'putJournal', 'deleteJournal', 'listJournal', 'appendEvents', 'queryEvents', 'purgeEvents',
  'sweep', 'subjectRecords',
] as const satisfies readonly (keyof Store)[];

export interface StoreObserver {
  /** Duration of one operation in seconds; `ok` false when it threw. */
  op(name: string, seconds: number, ok: boolean): void;
  /** Events that were appended successfully. Must not throw. */
  events(events: AuditEvent[]): void;
}

const WRAPPED = Symbol.for('otpshield.monitoring.instrumented');
const UNTIMED = Symbol.for('otpshield.monitoring.untimed');

/** Mark `store` so that `instrumentStore` taps its audit events but does not time its operations. */
export function skipStoreTiming(store: Store): void {
  (store as unknown as Record<symbol, unknown>)[UNTIMED] = true;
}

/**
 * Wrap `store`'s methods in place (not undone: the wrappers live as long as the store). Another layer may
 * wrap on top; each wrapper calls the one below it.
 */
export function instrumentStore(store: Store, obs: StoreObserver): void {
  const target = store as unknown as Record<string | symbol, unknown>;
  const already = (target[WRAPPED] as Set<StoreObserver> | undefined) ?? new Set<StoreObserver>();
  if (already.has(obs)) return;
  already.add(obs);
  target[WRAPPED] = already;

  if (target[UNTIMED] === true) {
    const append = target.appendEvents as (events: AuditEvent[], forget?: string) => Promise<void>;
    target.appendEvents = async function tapped(this: unknown, events: AuditEvent[], forget?: string) {
      await append.call(store, events, forget);
      obs.events(events);
    };
    return;
  }

  for (const name of STORE_OPS) {
    const fn = target[name];
    if (typeof fn !== 'function') continue;
    const isAppend = name === 'appendEvents';
    target[name] = async function instrumented(this: unknown, ...args: unknown[]) {
      const started = performance.now();
      try {
        const out = await (fn as (...a: unknown[]) => Promise<unknown>).apply(store, args);
        obs.op(name, (performance.now() - started) / 1000, true);
        if (isAppend) obs.events(args[0] as AuditEvent[]);
        return out;
      } catch (err) {
        obs.op(name, (performance.now() - started) / 1000, false);
        throw err;
      }
    };
  }
}
