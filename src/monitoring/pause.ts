/**
 * The emergency switch: pause sends to everyone, a country, a number prefix or a channel, and resume them.
 *
 * A pause is the setting `pause:all`, `pause:country:XX`, `pause:prefix:+62812` or `pause:channel:whatsapp` (read by SharedState on
 * every instance within its refresh interval; the engine then blocks with reason `paused`). Every pause and
 * resume is an audit event. Shared by the admin API, the CLI and the budget circuit breaker.
 */
import { eventId } from '../service/ids.ts';
import type { AuditEvent, Store } from '../store/interface.ts';
import { recordedStep } from '../service/journal.ts';
import { SETTING } from '../service/state.ts';
import { regionProblem } from '../lib/regions.ts';
import { CHANNELS, type Channel } from '../store/interface.ts';

const DAY_MS = 86_400_000;

export type PauseScope = { kind: 'all' } | { kind: 'country'; country: string } | { kind: 'prefix'; prefix: string } | { kind: 'channel'; channel: Channel };

export interface PauseRecord {
  since: number;
  note: string | null;
  /** Who paused: an API key id, `cli`, or `budget` for the circuit breaker. */
  by: string | null;
  until: number | null;
}

export class PauseError extends Error {
  override readonly name = 'PauseError';
}

/** Parse `{ all | country | prefix | channel }` input into a scope; throws PauseError on bad values. */
export function parsePauseScope(input: { all?: boolean; country?: string; prefix?: string; channel?: string }): PauseScope {
  const given = [input.all === true, input.country !== undefined, input.prefix !== undefined, input.channel !== undefined].filter(Boolean).length;
  if (given !== 1) throw new PauseError('give exactly one of: all, country, prefix, channel');
  if (input.all) return { kind: 'all' };
  if (input.channel !== undefined) {
    // A channel whose provider is down or being pumped (WhatsApp, voice) can be stopped without a restart.
    const c = input.channel.trim().toLowerCase();
    if (!(CHANNELS as readonly string[]).includes(c)) throw new PauseError(`"${input.channel}" is not a channel (${CHANNELS.join(', ')})`);
    return { kind: 'channel', channel: c as Channel };
  }
  if (input.country !== undefined) {
    const c = input.country.trim().toUpperCase();
    if (!/^[A-Z]{2}$/.test(c)) throw new PauseError(`"${input.country}" is not a two-letter country code`);
    const problem = regionProblem(c);
    if (problem !== null) throw new PauseError(problem);
    return { kind: 'country', country: c };
  }
  const p = (input.prefix ?? '').replace(/[\s().-]/g, '');
  if (!/^\+[1-9]\d{0,14}$/.test(p)) throw new PauseError(`"${input.prefix}" is not a number prefix like +62812`);
  return { kind: 'prefix', prefix: p };
}

/** The scope as SharedState names it: `all`, `country:ID`, `prefix:+62812`, `channel:whatsapp`. */
export function scopeName(s: PauseScope): string {
  return s.kind === 'all' ? 'all' : s.kind === 'country' ? `country:${s.country}` : s.kind === 'channel' ? `channel:${s.channel}` : `prefix:${s.prefix}`;
}

/** The scope of a name `scopeName` gave (a pause or resume event's `data.scope`); throws PauseError. */
export function parseScopeName(name: string): PauseScope {
  if (name === 'all') return { kind: 'all' };
  const [kind, value] = [name.slice(0, name.indexOf(':')), name.slice(name.indexOf(':') + 1)];
  if (kind === 'country') return parsePauseScope({ country: value });
  if (kind === 'prefix') return parsePauseScope({ prefix: value });
  if (kind === 'channel') return parsePauseScope({ channel: value });
  throw new PauseError(`"${name}" is not a pause scope`);
}

export async function pauseSends(
  store: Store,
  scope: PauseScope,
  o: { now: number; note?: string | null; by?: string | null; ttlMs?: number | null },
): Promise<{ scope: string; record: PauseRecord }> {
  const name = scopeName(scope);
  const record: PauseRecord = { since: o.now, note: o.note ?? null, by: o.by ?? null, until: o.ttlMs ? o.now + o.ttlMs : null };
  const event: AuditEvent = { id: eventId(), at: o.now, type: 'pause', ...scopeFields(scope), data: { scope: name, note: record.note, by: record.by, until: record.until } };
  await recordedStep(store, event, () => store.putSetting(SETTING.pause + name, record, o.ttlMs ?? undefined, o.now));
  return { scope: name, record };
}

/**
 * Resume `scope`. Says what stays paused (a bare resume is `all`, which does not lift a country's pause) and, for
 * a pause the budget breaker set, that the country's budget stops refusing its sends until the UTC day ends:
 * the setting `breaker-off:XX` (until midnight UTC), which the send limits read (monitoring/budget.ts). The
 * resume is recorded whether or not a pause existed (someone pressed the button).
 */
export async function resumeSends(
  store: Store,
  scope: PauseScope,
  o: { now: number; by?: string | null; note?: string | null },
): Promise<{ scope: string; existed: boolean; stillPaused: string[]; warning: string | null }> {
  const name = scopeName(scope);
  const was = await store.getSetting<Partial<PauseRecord>>(SETTING.pause + name, o.now);
  const existed = was !== null;
  const event: AuditEvent = { id: eventId(), at: o.now, type: 'resume', ...scopeFields(scope), data: { scope: name, by: o.by ?? null, existed, note: o.note ?? null } };
  await recordedStep(store, event, async () => {
    // The override first: were the pause gone without it, the budget would go on refusing the sends.
    if (was?.by === 'budget' && scope.kind === 'country') {
      const midnight = Math.floor(o.now / DAY_MS) * DAY_MS + DAY_MS;
      await store.putSetting(SETTING.breakerOff + scope.country, { since: o.now, by: o.by ?? null, day: new Date(o.now).toISOString().slice(0, 10) }, midnight - o.now, o.now);
    }
    await store.deleteSetting(SETTING.pause + name);
  });
  const stillPaused = (await listPauses(store, o.now)).map((p) => p.scope).filter((s) => s !== name);
  const warning =
    was?.by === 'budget'
      ? `${name} was paused by the budget circuit breaker: its budget no longer refuses sends until midnight UTC, and nothing stops its spend until then (pause it again by hand if needed)`
      : null;
  return { scope: name, existed, stillPaused, warning };
}

export async function listPauses(store: Store, now: number): Promise<{ scope: string; record: PauseRecord }[]> {
  const rows = await store.listSettings<Partial<PauseRecord>>(SETTING.pause, now);
  return rows.map((r) => ({
    scope: r.key.slice(SETTING.pause.length),
    record: { since: r.value.since ?? 0, note: r.value.note ?? null, by: r.value.by ?? null, until: r.value.until ?? null },
  }));
}

/** A pause as the admin API and `otp-shield pauses --json` show it: times in ISO 8601. */
export function pauseView(scope: string, r: PauseRecord): { scope: string; since: string; note: string | null; by: string | null; until: string | null } {
  return { scope, since: new Date(r.since).toISOString(), note: r.note, by: r.by, until: r.until === null ? null : new Date(r.until).toISOString() };
}

function scopeFields(s: PauseScope): { country?: string; prefix?: string } {
  return s.kind === 'country' ? { country: s.country } : s.kind === 'prefix' ? { prefix: s.prefix } : {};
}
