/**
 * `otp-shield quarantines [--json]` and `otp-shield quarantines lift <scope>`: the SMS-pumping quarantines in
 * force, and lifting one, from the command line (on call, without curl and an admin key). The same steps as
 * `GET` / `DELETE /v1/admin/quarantines` (service/pumping.ts): a lift is recorded as a `quarantine.end` event
 * and starts the grace period; running servers apply it within their state refresh (1 s).
 */
import type { Command } from 'commander';
import { pino } from 'pino';
import { ConfigError } from '../../config/load.ts';
import { PumpingDefense, type QuarantineScope } from '../../service/pumping.ts';
import { QUARANTINE_SCOPE_PATTERN, quarantineJson } from '../../service/quarantine-view.ts';
import { buildSignals } from '../../service/signals.ts';
import { SharedState } from '../../service/state.ts';
import { configFrom, print, storeFrom } from '../shared.ts';
import { effectivePolicy } from './lookup.ts';

const SCOPE_RE = new RegExp(QUARANTINE_SCOPE_PATTERN);
const iso = (ms: number) => new Date(ms).toISOString();

export function registerQuarantines(program: Command): void {
  const q = program.command('quarantines').description('SMS-pumping quarantines in force; `lift <scope>` ends one now').option('--json', 'print JSON (the shape of GET /v1/admin/quarantines)');
  q.action(async (opts: { json?: boolean }, cmd: Command) => {
    const cfg = configFrom(cmd);
    const store = await storeFrom(cfg);
    try {
      const now = Date.now();
      const { defense, close, prefixDigits } = await defenseFor(cfg, store, now);
      const list = await defense.list(now).finally(close);
      const view = list.map((x) => quarantineJson(x, now, prefixDigits));
      if (opts.json) return print(JSON.stringify({ quarantines: view }));
      if (view.length === 0) return print('no quarantines in force');
      for (const x of view) {
        const stale = x.inEffect ? '' : `  NOT IN EFFECT: not a calling code + ${prefixDigits} digits (lift it)`;
        print(`${x.scope.padEnd(16)} ${x.mode.padEnd(9)} ${x.reason.padEnd(24)} until ${x.until} (${Math.ceil(x.remainingSeconds / 60)} min)${stale}`);
      }
    } finally {
      await store.close();
    }
  });
  q.command('lift <scope>')
    .description('end a quarantine now, e.g. prefix:+62812 or country:ID (starts pumping.liftGraceMinutes without automatic ones)')
    .action(async (scope: string, _opts: unknown, cmd: Command) => {
      const compact = scope.replace(/\s/g, '');
      const wanted = compact.startsWith('country:') ? `country:${compact.slice(8).toUpperCase()}` : compact;
      if (!SCOPE_RE.test(wanted)) throw new ConfigError(`"${scope}" is not a quarantine scope like prefix:+62812 or country:ID`);
      const cfg = configFrom(cmd);
      const store = await storeFrom(cfg);
      try {
        const now = Date.now();
        const { defense, close } = await defenseFor(cfg, store, now);
        const lifted = await defense.lift(wanted as QuarantineScope, 'cli', now).finally(close);
        if (!lifted) throw new ConfigError(`no quarantine of ${wanted} is in force (otp-shield quarantines lists them)`);
        print(`lifted ${wanted}${lifted.graceUntil !== null ? `; no automatic quarantine of it before ${iso(lifted.graceUntil)}` : ''}`);
      } finally {
        await store.close();
      }
    });
}

async function defenseFor(cfg: Parameters<typeof buildSignals>[0], store: Parameters<typeof buildSignals>[1], now: number): Promise<{ defense: PumpingDefense; close: () => void; prefixDigits: number }> {
  const { policy } = await effectivePolicy(cfg, store, undefined);
  const signals = await buildSignals(cfg, store, () => now, '');
  const defense = new PumpingDefense({ store, state: new SharedState(store, () => now), signals, policy: () => policy, clock: () => now, log: pino({ level: 'silent' }) });
  return { defense, close: () => signals.close(), prefixDigits: policy.limits.prefixDigits };
}
