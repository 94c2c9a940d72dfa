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
} as const;

interface Snapshot {
  lists: ListEntry[];
  listsVersion: number;
  pauses: Map<string, { since: number; note: string | null }>;
  quarantines: Map<string, Quarantine>;
  throttles: Map<string, ThrottleState>;
  loadedAt: number;
}

export class SharedState {
  private snap: Snapshot = { lists: [], listsVersion: -1, pauses: new Map(), quarantines: new Map(), throttles: new Map(), loadedAt: -Infinity };
  private loading: Promise<void> | null = null;
  private readonly refreshers: (() => Promise<void>)[] = [];

  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
    private readonly refreshMs = 1000,
  ) {}

  /** Ensure the snapshot is at most `refreshMs` old. Concurrent callers share one refresh. */
  async fresh(): Promise<void> {
    if (this.clock() - this.snap.loadedAt < this.refreshMs) return;
    this.loading ??= this.reload().finally(() => (this.loading = null));
    await this.loading;
  }

  /** Other shared documents (the policy) refreshed on the same schedule. */
  addRefresher(fn: () => Promise<void>): void {
    this.refreshers.push(fn);
  }

  async reload(): Promise<void> {
    const now = this.clock();
    await Promise.all(this.refreshers.map((fn) => fn()));
    const version = await this.store.listsVersion();
    const lists = version === this.snap.listsVersion ? this.snap.lists : await this.store.listEntries(now);
    const [pauses, quarantines, throttles] = await Promise.all([
      this.store.listSettings<{ since: number; note: string | null }>(SETTING.pause, now),
      this.store.listSettings<Quarantine>(SETTING.quarantine, now),
      this.store.listSettings<ThrottleState>(SETTING.throttle, now),
    ]);
    this.snap = {
      lists,
      listsVersion: version,
      pauses: new Map(pauses.map((s) => [s.key.slice(SETTING.pause.length), s.value])),
      quarantines: new Map(quarantines.map((s) => [s.key.slice(SETTING.quarantine.length), s.value])),
      throttles: new Map(throttles.map((s) => [s.key.slice(SETTING.throttle.length), s.value])),
      loadedAt: now,
    };
  }

  /** Force the next `fresh()` to reload (after this instance wrote something). */
  invalidate(): void {
    this.snap.loadedAt = -Infinity;
  }

  listHits(q: { e164: string; region: string; ip: string | null; ipCountry: string | null; deviceId: string | null }, now: number): ListHit[] {
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
          hit = q.e164.startsWith(e.value);
          break;
        case 'country':
          hit = e.value === q.region || (q.ipCountry !== null && e.value === q.ipCountry);
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

  /** The pause that applies to this destination, if any: `all`, `country:XX` or the longest `prefix:+…`. */
  pausedFor(e164: string, region: string): string | null {
    const p = this.snap.pauses;
    if (p.has('all')) return 'all';
    if (p.has(`country:${region}`)) return `country:${region}`;
    for (const key of p.keys()) if (key.startsWith('prefix:') && e164.startsWith(key.slice(7))) return key;
    return null;
  }

  quarantineFor(prefix: string, region: string, now: number): Quarantine | null {
    const q = this.snap.quarantines.get(`prefix:${prefix}`) ?? this.snap.quarantines.get(`country:${region}`) ?? null;
    return q && q.until > now ? q : null;
  }

  throttle(scope: string): ThrottleState | null {
    return this.snap.throttles.get(scope) ?? null;
  }

  /** Update this instance's view immediately after it wrote a throttle state. */
  setThrottleLocal(scope: string, s: ThrottleState): void {
    this.snap.throttles.set(scope, s);
  }

  get pauses(): ReadonlyMap<string, { since: number; note: string | null }> {
    return this.snap.pauses;
  }

  get quarantines(): ReadonlyMap<string, Quarantine> {
    return this.snap.quarantines;
  }

  get throttles(): ReadonlyMap<string, ThrottleState> {
    return this.snap.throttles;
  }
}
