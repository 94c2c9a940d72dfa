/**
 * `otp-shield unlock <number | address | ip>`: reset what refuses one person or one address — send budgets,
 * cooldowns, failed-check locks, escalation — and record it (service/unlock.ts). Writes straight to the
 * configured store, which every running server reads: the next request sees the reset counters.
 */
import type { Command } from 'commander';
import { ConfigError } from '../../config/load.ts';
import { buildSignals } from '../../service/signals.ts';
import { unlock } from '../../service/unlock.ts';
import { configFrom, print, storeFrom } from '../shared.ts';
import { effectivePolicy } from './lookup.ts';

export function registerUnlock(program: Command): void {
  program
    .command('unlock <target>')
    .description('reset the send limits, cooldowns, failed-check locks and escalation of a number, an email address or an IP (a user locked out by guesses or a bombing run)')
    .action(async (target: string, _opts: unknown, cmd: Command) => {
      const cfg = configFrom(cmd);
      const store = await storeFrom(cfg);
      try {
        const now = Date.now();
        const { policy } = await effectivePolicy(cfg, store, undefined);
        const signals = await buildSignals(cfg, store, () => now, '');
        const r = await unlock({ store, signals, policy }, target, { now, by: 'cli' }).finally(() => signals.close());
        if (!r.ok) throw new ConfigError(`${JSON.stringify(target)} is ${r.message}`);
        print(`unlocked ${r.target.kind === 'ip' ? r.target.ip : r.target.to}: ${r.keys} counters reset (send limits, cooldowns, failed-check locks, escalation)`);
      } finally {
        await store.close();
      }
    });
}
