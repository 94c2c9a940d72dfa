import type { Command } from 'commander';
import { API_SCOPES, createApiKey, keyView } from '../../service/api-keys.ts';
import type { ApiScope } from '../../store/interface.ts';
import { configFrom, print, storeFrom } from '../shared.ts';
import { recordedStep } from '../../service/journal.ts';
import { eventId } from '../../service/ids.ts';


/** The longest key lifetime `--expires-in-days` accepts: 100 years (36500 days); for longer, omit the option. */
export const MAX_EXPIRY_DAYS = 36_500;

/** `--expires-in-days`: a whole number of days, 1..MAX_EXPIRY_DAYS (so the expiry is always a valid date). */
export function parseExpiryDays(v: string): number {
  const days = /^\d{1,6}$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!(days >= 1 && days <= MAX_EXPIRY_DAYS)) {
    throw Object.assign(new Error(`--expires-in-days must be a whole number of days from 1 to ${MAX_EXPIRY_DAYS} (got ${JSON.stringify(v)}); omit it for a key that does not expire`), { name: 'ConfigError' });
  }
  return days;
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys (stored hashed; shown once)');

  keys
    .command('create')
    .description('create an API key and print it once')
    .option('-s, --scope <scope...>', 'scopes: verify (send and check), admin (everything else), read (admin reads, numbers masked), metrics (/metrics only)', ['verify'])
    .option('-n, --name <name>', 'a name to recognise the key by')
    .option('--expires-in-days <days>', `expire the key after this many days (a whole number, 1..${MAX_EXPIRY_DAYS})`)
    .option('--json', 'print JSON')
    .action(async (opts: { scope: string[]; name?: string; expiresInDays?: string; json?: boolean }, cmd: Command) => {
      const scopes = opts.scope.flatMap((s) => s.split(','));
      const bad = scopes.filter((s) => !API_SCOPES.includes(s as ApiScope));
      if (bad.length) throw Object.assign(new Error(`unknown scope: ${bad.join(', ')} (use verify, admin, read or metrics)`), { name: 'ConfigError' });
      const days = opts.expiresInDays !== undefined ? parseExpiryDays(opts.expiresInDays) : null;
      // The first step of a new install may come before the server ever ran: this one may create the database.
      const store = await storeFrom(configFrom(cmd), { create: true });
      const now = Date.now();
      const expiresAt = days ? now + days * 86_400_000 : null;
      // Recorded (key.create, journaled ahead: service/journal.ts recordedStep) with the key's id, never its secret.
      const ev = { id: eventId(), at: now, type: 'key.create', data: { id: null as string | null, scopes, name: opts.name ?? null, expiresAt, by: 'cli' } };
      const { key, record } = await recordedStep(
        store,
        ev,
        () => createApiKey(store, { scopes: scopes as ApiScope[], name: opts.name ?? null, expiresAt, now }),
        (made, e) => ({ ...e, data: { ...ev.data, id: made.record.id } }),
      ).finally(() => store.close());
      if (opts.json) print(JSON.stringify({ key, ...keyView(record) }));
      else {
        print(key);
        process.stderr.write(`Created key ${record.id} with scopes ${record.scopes.join(', ')}. It is shown only once: store it now.\n`);
      }
    });

  keys
    .command('list')
    .description('list API keys (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const store = await storeFrom(configFrom(cmd));
      const list = (await store.listApiKeys()).map(keyView);
      await store.close();
      if (opts.json) return print(JSON.stringify(list));
      if (list.length === 0) return print('no keys (create one with: otp-shield keys create --scope verify)');
      for (const k of list) print(`${k.id}  ${k.scopes.join(',').padEnd(12)}  ${k.revokedAt ? 'revoked' : k.expiresAt && Date.parse(k.expiresAt) < Date.now() ? 'expired' : 'active '}  ${k.name ?? ''}`);
    });

  keys
    .command('revoke <id>')
    .description('revoke an API key at once')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const store = await storeFrom(configFrom(cmd));
      const now = Date.now();
      let outcome: 'revoked' | 'already' | 'unknown';
      try {
        const ok = await recordedStep(store, { id: eventId(), at: now, type: 'key.revoke', data: { id, by: 'cli' } }, () => store.revokeApiKey(id, now), (revoked, e) => (revoked ? e : null));
        // Revoking a revoked key again is what a retried script does: the key is revoked, say so, exit 0.
        outcome = ok ? 'revoked' : (await store.getApiKey(id))?.revokedAt ? 'already' : 'unknown';
      } finally {
        await store.close();
      }
      if (outcome === 'unknown') throw Object.assign(new Error(`no such key: ${id}`), { name: 'ConfigError' });
      print(outcome === 'already' ? `already revoked ${id}` : `revoked ${id}`);
    });
}
