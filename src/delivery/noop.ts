/**
 * Sends nothing and reports success. For benchmarks (measure OTP Shield, not a provider) and tests
 * that need a working pipeline without a fake server. Unlike the console sender it never prints the
 * code, so it is not refused in any environment; the config that picks it is the operator's call.
 */
import { CHANNELS, type Channel } from '../store/interface.ts';
import type { SendResult, Sender } from './sender.ts';
import { checkName, resolveChannels } from './options.ts';

export interface NoopSenderOptions {
  name?: string;
  channels?: Channel[];
}

export function createNoopSender(opts: NoopSenderOptions = {}): Sender {
  const name = checkName(opts.name ?? 'noop');
  const channels = resolveChannels(opts.channels, CHANNELS, CHANNELS, name);
  return {
    name,
    type: 'noop',
    channels,
    async send(): Promise<SendResult> {
      return { ok: true, sender: name, providerId: null, detail: 'noop' };
    },
  };
}
