/**
 * Monitoring facts: the few things monitoring counts, derived from the audit events the service writes
 * (and from the approval hook, which knows how many messages the approved verification cost). Metrics,
 * the hourly aggregates and the alert rules all consume these, so they cannot disagree.
 *
 * Pure: event in, facts out. Prices are looked up here so every consumer sees the same amount.
 */
import type { AuditEvent, Channel } from '../store/interface.ts';
import { CHANNELS } from '../store/interface.ts';
import type { MonitoringPolicy } from './config.ts';
import { priceMicros } from './prices.ts';

export type ReceiptStatus = 'delivered' | 'undelivered' | 'failed';

export type MonitorFact =
  | {
      kind: 'request';
      at: number;
      country: string | null;
      prefix: string | null;
      channel: Channel;
      number: string | null;
      /** The client's IP; for IPv6 its /64 (one client's network). */
      ip: string | null;
      ipCountry: string | null;
      decision: string;
      reasons: string[];
      /** What a send would have cost: blocked and tarpitted requests count it as saved. */
      priceMicros: number;
    }
  | { kind: 'sent'; at: number; country: string | null; prefix: string | null; channel: Channel; sender: string; first: boolean; priceMicros: number }
  | { kind: 'delivery_failed'; at: number; country: string | null; prefix: string | null; channel: Channel; sender: string | null }
  /** One sender's attempt at a message: the one that delivered it, and each that failed before (or instead). */
  | { kind: 'attempt'; at: number; channel: Channel; sender: string; ok: boolean; /** The sender's answer time, when the event has it. */ ms?: number }
  | { kind: 'approved'; at: number; country: string | null; prefix: string | null; channel: Channel; spendMicros: number }
  | { kind: 'check'; at: number; result: string }
  | { kind: 'receipt'; at: number; country: string | null; prefix: string | null; channel: Channel; sender: string; status: ReceiptStatus }
  | { kind: 'event'; at: number; type: string }
  /** An SMS-pumping quarantine the detector started (or renewed); an admin's own are not alerted. */
  | { kind: 'quarantine'; at: number; scope: string; mode: string; reason: string; until: number; repeat: number };

/** `{ ms }` when v is a plausible duration: spread into an attempt fact. */
function msOf(v: unknown): { ms?: number } {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? { ms: v } : {};
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

function channelOf(data: Record<string, unknown>): Channel {
  const c = data.channel;
  return typeof c === 'string' && (CHANNELS as readonly string[]).includes(c) ? (c as Channel) : 'sms';
}

/** Facts of one audit event. Unknown event types yield only the generic `event` fact. */
export function factsFromEvent(e: AuditEvent, prices: MonitoringPolicy['prices']): MonitorFact[] {
  const out: MonitorFact[] = [{ kind: 'event', at: e.at, type: e.type }];
  const data = (e.data ?? {}) as Record<string, unknown>;
  if (e.type === 'send' || e.type === 'send.failed') {
    // Test numbers never reach a sender and are not traffic: they are left out of every number.
    if (data.testNumber === true) return out;
    const channel = channelOf(data);
    const country = e.country ?? null;
    const prefix = e.prefix ?? null;
    const price = priceMicros(prices, country, channel);
    const ipFacts = (data.ipFacts ?? null) as { country?: unknown; subnet?: unknown } | null;
    // An IPv6 client owns its /64 and rotates the rest at will: counted as one source, as the limits count it.
    const ip = e.ip && e.ip.includes(':') ? (str(ipFacts?.subnet) ?? e.ip) : (e.ip ?? null);
    out.push({
      kind: 'request',
      at: e.at,
      country,
      prefix,
      channel,
      number: e.to ?? null,
      ip,
      ipCountry: str(ipFacts?.country),
      decision: e.decision ?? 'unknown',
      reasons: e.reasons ?? [],
      priceMicros: price,
    });
    const delivery = (data.delivery ?? null) as { ok?: unknown; sender?: unknown; interrupted?: unknown; failed?: unknown } | null;
    if (e.type === 'send.failed') {
      out.push({ kind: 'delivery_failed', at: e.at, country, prefix, channel, sender: str(delivery?.sender) });
    } else if (e.decision === 'allow' && (delivery?.ok === true || delivery?.interrupted === true)) {
      // An interrupted delivery (service/journal.ts) may have reached the phone: counted as sent, so
      // spend and budgets err on the side of the money.
      out.push({ kind: 'sent', at: e.at, country, prefix, channel, sender: str(delivery.sender) ?? 'unknown', first: data.resend !== true, priceMicros: price });
    }
    // Per-sender attempts (events written before they were recorded name only the sender that delivered).
    if (Array.isArray(delivery?.failed)) {
      for (const a of delivery.failed as { sender?: unknown; ms?: unknown }[]) out.push({ kind: 'attempt', at: e.at, channel, sender: str(a?.sender) ?? 'unknown', ok: false, ...msOf(a?.ms) });
    }
    if (e.type === 'send' && delivery?.ok === true && str(delivery.sender)) out.push({ kind: 'attempt', at: e.at, channel, sender: str(delivery.sender)!, ok: true, ...msOf((delivery as { ms?: unknown }).ms) });
  } else if (e.type === 'check') {
    if (data.testNumber === true) return out;
    out.push({ kind: 'check', at: e.at, result: e.decision ?? 'unknown' });
  } else if (e.type === 'quarantine.start') {
    const until = typeof data.until === 'number' ? data.until : null;
    if (data.by === null && typeof data.scope === 'string' && until !== null) {
      out.push({ kind: 'quarantine', at: e.at, scope: data.scope, mode: str(data.mode) ?? e.decision ?? 'challenge', reason: e.reasons?.[0] ?? 'unknown', until, repeat: typeof data.repeat === 'number' ? data.repeat : 0 });
    }
  } else if (e.type === 'delivery.receipt') {
    const status = e.decision;
    if (status === 'delivered' || status === 'undelivered' || status === 'failed') {
      // Receipts recorded before they carried their channel were SMS or WhatsApp ones: read as sms.
      out.push({ kind: 'receipt', at: e.at, country: e.country ?? null, prefix: e.prefix ?? null, channel: channelOf(data), sender: str(data.sender) ?? 'unknown', status });
    }
  }
  return out;
}

/** Check results that count as failures for the failure-rate alert (a wrong or unknown code, a lock). */
export const FAILED_CHECK_RESULTS: ReadonlySet<string> = new Set(['denied', 'not_found', 'locked']);
