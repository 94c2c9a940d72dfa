/**
 * Development sender: prints the message instead of sending it, so a developer can run the whole flow
 * without a provider account. It writes the plain code to a stream, which is exactly why the factory
 * refuses to build it in production.
 */
import type { Writable } from 'node:stream';
import { CHANNELS } from '../store/interface.ts';
import { SenderConfigError, type OutboundMessage, type SendResult, type Sender } from './sender.ts';
import { checkName } from './options.ts';

export interface ConsoleSenderOptions {
  env: 'development' | 'production' | 'test';
  /** Where the block is written: stderr by default, since stdout carries the JSON log; tests pass a buffer. */
  stdout?: Writable;
  name?: string;
}

const RULE = '='.repeat(64);

export function createConsoleSender(opts: ConsoleSenderOptions): Sender {
  const name = checkName(opts.name ?? 'console');
  if (opts.env === 'production') {
    throw new SenderConfigError(
      'the console sender prints codes instead of delivering them and is refused in production; configure a real sender',
      name,
    );
  }
  const out = opts.stdout ?? process.stderr;
  return {
    name,
    type: 'console',
    channels: new Set(CHANNELS),
    async send(msg: OutboundMessage): Promise<SendResult> {
      out.write(formatBlock(msg));
      return { ok: true, sender: name, providerId: null, detail: 'printed to console' };
    },
  };
}

function formatBlock(msg: OutboundMessage): string {
  const text = msg.text.split('\n').map((line) => `  ${line}`).join('\n');
  return [
    '',
    RULE,
    ' OTP SHIELD CONSOLE SENDER (development only: nothing was sent)',
    RULE,
    ` id:      ${msg.verificationId}`,
    ` to:      ${msg.to}`,
    ` channel: ${msg.channel}`,
    ` locale:  ${msg.locale ?? '-'}`,
    ` code:    ${msg.code}`,
    ' text:',
    text,
    RULE,
    '',
  ].join('\n');
}
