/**
 * Shared state that changes rarely but is read on every request: block/allow lists, emergency pauses,
 * quarantines and throttle states. Each instance keeps a snapshot and refreshes it from the store at most
 * every `refreshMs` (and at once after its own writes), so a change made on one instance reaches the
 * others within that interval without a store round trip per request.
 */
import { cidrContains, parseCidr, parseIp } from '../signals/ip.ts';
import type { ListEntry, Store } from '../store/interface.ts';
import type { ListHit } from '../engine/facts.ts';
import type { ThrottleState } from '../engine/throttle.ts';
import { isEmailKey } from '../signals/email.ts';
import { limitKeyOf } from '../engine/limits.ts';

export interface Quarantine {
  scope: string;
  mode: 'challenge' | 'block';
  reason: string;
  since: number;
  until: number;
}

export const SETTING = {
  pause: 'pause:',
  quarantine: 'quarantine:',
  throttle: 'throttle:',
  /** `breaker-off:XX`: an admin resumed the budget breaker's pause of country XX; its budget no longer refuses sends today. */
  breakerOff: 'breaker-off:',
} as const;

type Pause = { since: number; note: string | null };

/** The shared settings as the store holds them, by scope (key without its prefix), in key order. */
interface Loaded {
  pauses: Map<string, Pause>;
  quarantines: Map<string, Quarantine>;
  throttles: Map<string, ThrottleState>;
  breakerOff: Map<string, unknown>;
}

interface Snapshot extends Loaded {
  lists: ListEntry[];
  listsVersion: number;
  /** This instance's throttle updates since the load (`setThrottleLocal`); a reload drops them. */
  localThrottles: Map<string, ThrottleState>;
  loadedAt: number;
}

const SETTING_KINDS = [
  [SETTING.pause, 'pauses'],
  [SETTING.quarantine, 'quarantines'],
  [SETTING.throttle, 'throttles'],
  [SETTING.breakerOff, 'breakerOff'],
] as const;

/**
 * Whether `key` is one of the settings the shared snapshot holds (pauses, quarantines, throttle states): a
 * store that reports `settingChanges` must report every write, delete and expiry of these.
 */
export function isSharedSetting(key: string): boolean {
  return SETTING_KINDS.some(([prefix]) => key.startsWith(prefix));
}

export interface SharedStateOptions {
  /** How old the snapshot may get before `fresh()` reloads it. Default 1 s. */
  refreshMs?: number;
  /**
   * The keys of the shared settings (`pause:…`, `quarantine:…`, `throttle:…`) that were written, deleted or
   * ran out since the previous call, or null when the store cannot tell (then everything is listed again).
   * With it, a reload reads only the settings that changed instead of listing and copying all of them; the
   * snapshot is the same. Only a store written by this process alone can answer (the replay's in-memory
   * store); a shared store does not see other instances' writes, so the server passes none.
   */
  settingChanges?: (now: number) => Iterable<string> | null;
}

const byKey = <V>([a]: [string, V], [b]: [string, V]): number => (a < b ? -1 : a > b ? 1 : 0);

export class SharedState {
  private snap: Snapshot = {
    lists: [],
    listsVersion: -1,
    pauses: new Map(),
    quarantines: new Map(),
    throttles: new Map(),
    breakerOff: new Map(),
    localThrottles: new Map(),
    loadedAt: -Infinity,
  };
  private loading: Promise<void> | null = null;
  /** Bumped by `invalidate()`: a reload that was already running when it came does not count as fresh. */
  private generation = 0;
  private readonly refreshers: (() => Promise<void>)[] = [];
  private readonly refreshMs: number;
  private readonly settingChanges: ((now: number) => Iterable<string> | null) | null;
  /** Whether `snap` holds a complete load that `settingChanges` can be applied to. */
  private loadedOnce = false;
  /** Maps of the snapshot handed out by the getters: changes copy them instead of updating in place. */
  private readonly exposed = new Set<keyof Loaded>();

  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
    opts: SharedStateOptions | number = {},
  ) {
    const o = typeof opts === 'number' ? { refreshMs: opts } : opts;
    this.refreshMs = o.refreshMs ?? 1000;
    this.settingChanges = o.settingChanges ?? null;
  }

  /** Ensure the snapshot is at most `refreshMs` old. Concurrent callers share one refresh. */
  async fresh(): Promise<void> {
    // Twice at most: a load that was running when this instance invalidated the snapshot (it had just written
    // a pause) may have read past the write; then one more.
    for (let i = 0; i < 2 && this.clock() - this.snap.loadedAt >= this.refreshMs; i++) {
      this.loading ??= this.reload().finally(() => (this.loading = null));
      await this.loading;
    }
  }

  /** Other shared documents (the policy) refreshed on the same schedule. */
  addRefresher(fn: () => Promise<void>): void {
    this.refreshers.push(fn);
  }

  async reload(): Promise<void> {
    const now = this.clock();
    const generation = this.generation;
    await Promise.all(this.refreshers.map((fn) => fn()));
    const version = await this.store.listsVersion();
    const lists = version === this.snap.listsVersion ? this.snap.lists : await this.store.listEntries(now);
    const changed = this.settingChanges?.(now) ?? null;
    let loaded: Loaded;
    if (changed !== null && this.loadedOnce) loaded = await this.applyChanges(changed, now);
    else {
      loaded = await this.listAll(now);
      this.exposed.clear();
    }
    this.loadedOnce = this.settingChanges !== null;
    // Invalidated while this load ran (this instance wrote a pause after the listing had read past it): the
    // next `fresh()` loads again instead of trusting this snapshot for `refreshMs`.
    this.snap = { lists, listsVersion: version, ...loaded, localThrottles: new Map(), loadedAt: generation === this.generation ? now : -Infinity };
  }

  private async listAll(now: number): Promise<Loaded> {
    const [pauses, quarantines, throttles, breakerOff] = await Promise.all([
      this.store.listSettings<Pause>(SETTING.pause, now),
      this.store.listSettings<Quarantine>(SETTING.quarantine, now),
      this.store.listSettings<ThrottleState>(SETTING.throttle, now),
      this.store.listSettings<unknown>(SETTING.breakerOff, now),
    ]);
    return {
      pauses: new Map(pauses.map((s) => [s.key.slice(SETTING.pause.length), s.value])),
      quarantines: new Map(quarantines.map((s) => [s.key.slice(SETTING.quarantine.length), s.value])),
      throttles: new Map(throttles.map((s) => [s.key.slice(SETTING.throttle.length), s.value])),
      breakerOff: new Map(breakerOff.map((s) => [s.key.slice(SETTING.breakerOff.length), s.value])),
    };
  }

  /**
   * The last load with the changed settings read again: what `listAll` would return (same values, same key
   * order). A map is updated in place unless a getter handed it out (then it is copied first, so whoever
   * holds it keeps a consistent view).
   */
  private async applyChanges(keys: Iterable<string>, now: number): Promise<Loaded> {
    const out: Loaded = { pauses: this.snap.pauses, quarantines: this.snap.quarantines, throttles: this.snap.throttles, breakerOff: this.snap.breakerOff };
    for (const key of keys) {
      const kind = SETTING_KINDS.find(([prefix]) => key.startsWith(prefix));
      if (!kind) continue;
      const [prefix, field] = kind;
      const scope = key.slice(prefix.length);
      const value = await this.store.getSetting(key, now);
      const m = out[field] as Map<string, unknown>;
      if (value === null && !m.has(scope)) continue;
      const next = this.exposed.delete(field) ? new Map(m) : m;
      if (value === null) next.delete(scope);
      else if (next.has(scope)) next.set(scope, value);
      else {
        next.set(scope, value);
        // A new scope goes where the store's key order (listSettings sorts) would put it.
        const sorted = [...next].sort(byKey);
        next.clear();
        for (const [k, v] of sorted) next.set(k, v);
      }
      (out as unknown as Record<string, unknown>)[field] = next;
    }
    return out;
  }

  /** Force the next `fresh()` to reload (after this instance wrote something). */
  invalidate(): void {
    this.generation++;
    this.snap.loadedAt = -Infinity;
  }

  listHits(q: { e164: string; region: string | null; ip: string | null; ipCountry: string | null; deviceId: string | null }, now: number): ListHit[] {
    const hits: ListHit[] = [];
    const ip = q.ip ? parseIp(q.ip) : null;
    for (const e of this.snap.lists) {
      if (e.expiresAt !== null && e.expiresAt <= now) continue;
      let hit = false;
      switch (e.kind) {
        case 'number':
          hit = e.value === q.e164;
          break;
        case 'prefix':
          // A number's prefix: never an email address, even one that starts with `+62812`.
          hit = q.e164.startsWith(e.value) && !isEmailKey(q.e164);
          break;
        case 'country':
          hit = (q.region !== null && e.value === q.region) || (q.ipCountry !== null && e.value === q.ipCountry);
          break;
        case 'email':
          // The address, or any address that shares its budget (`bob@x` blocks `bob+tag@x`: the same mailbox).
          hit = e.value === q.e164 || e.value === limitKeyOf(q.e164);
          break;
        case 'domain':
          hit = q.e164.endsWith(`@${e.value}`) || (isEmailKey(q.e164) && q.e164.endsWith(`.${e.value}`));
          break;
        case 'device':
          hit = q.deviceId !== null && e.value === q.deviceId;
          break;
        case 'ip':
        case 'cidr': {
          if (!ip || !ip.ok) break;
          const c = parseCidr(e.value.includes('/') ? e.value : `${e.value}/${e.value.includes(':') ? 128 : 32}`);
          hit = c.ok && cidrContains(c, ip);
          break;
        }
      }
      if (hit) hits.push({ list: e.list, kind: e.kind, value: e.value });
    }
    return hits;
  }

  /** The pause that applies to this send, if any: `all`, `channel:…`, `country:XX` or a `prefix:+…`. */
  pausedFor(e164: string, region: string | null, channel: string): string | null {
    const p = this.snap.pauses;
    if (p.has('all')) return 'all';
    if (p.has(`channel:${channel}`)) return `channel:${channel}`;
    // An email address (region null, no leading +) is paused only by `all`.
    if (region !== null && p.has(`country:${region}`)) return `country:${region}`;
    if (isEmailKey(e164)) return null;
    for (const key of p.keys()) if (key.startsWith('prefix:') && e164.startsWith(key.slice(7))) return key;
    return null;
  }

  /**
   * Whether an admin resumed the budget breaker's pause of this country on the UTC day `day` (its budget then
   * refuses nothing that day). The day is compared, not only the setting's expiry: a snapshot loaded before
   * midnight is used for up to a second after it, when the new day's budget must already hold (a diff review).
   */
  breakerOffFor(country: string, day: string): boolean {
    const v = this.snap.breakerOff.get(country) as { day?: unknown } | undefined;
    return v !== undefined && v.day === day;
  }

  /** The quarantine of the prefix or else the country; none for an email address (both null). */
  quarantineFor(prefix: string | null, region: string | null, now: number): Quarantine | null {
    const q = (prefix !== null ? this.snap.quarantines.get(`prefix:${prefix}`) : undefined) ?? (region !== null ? this.snap.quarantines.get(`country:${region}`) : undefined) ?? null;
    return q && q.until > now ? q : null;
  }

  throttle(scope: string): ThrottleState | null {
    return this.snap.localThrottles.get(scope) ?? this.snap.throttles.get(scope) ?? null;
  }

  /** Update this instance's view immediately after it wrote (or updated without writing) a throttle state. */
  setThrottleLocal(scope: string, s: ThrottleState): void {
    this.snap.localThrottles.set(scope, s);
  }

  get pauses(): ReadonlyMap<string, { since: number; note: string | null }> {
    this.exposed.add('pauses');
    return this.snap.pauses;
  }

  get quarantines(): ReadonlyMap<string, Quarantine> {
    this.exposed.add('quarantines');
    return this.snap.quarantines;
  }

  /** The scopes tightened in this instance's view, without building the merged map `throttles` returns. */
  tightenedScopes(): string[] {
    const { throttles, localThrottles } = this.snap;
    const out: string[] = [];
    for (const [k, s] of localThrottles) if (s.tightenedSince !== null) out.push(k);
    for (const [k, s] of throttles) if (s.tightenedSince !== null && !localThrottles.has(k)) out.push(k);
    return out;
  }

  get throttles(): ReadonlyMap<string, ThrottleState> {
    const { throttles, localThrottles } = this.snap;
    if (localThrottles.size === 0) {
      this.exposed.add('throttles');
      return throttles;
    }
    const merged = new Map(throttles);
    for (const [k, v] of localThrottles) merged.set(k, v);
    return merged;
  }
}
