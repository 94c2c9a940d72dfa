/**
 * The invariant the whole service exists for, fuzzed: never more messages than the limits allow, whatever
 * the sequence of requests. fast-check generates sequences of sends — random spellings of a few numbers,
 * random client addresses, bursts of parallel requests, random clock advances — against a running server;
 * the fake provider records each message with the injected clock. For every number:
 *  - at most 3 messages in any 10 minutes and 10 in any 24 hours (DEFAULT_POLICY.limits.number);
 *  - at most one message per cooldown: 30 s after the first message of a verification, then 60 s, 120 s…
 *    (DEFAULT_POLICY.limits.cooldown), and never two messages less than 30 s apart — less the documented
 *    edge tolerance: the cooldown window is one slot (1/60) shorter so that a resend at exactly
 *    `resendAfter` always passes, so a message may come up to 1/60 of the cooldown early (docs/rate-limits.md,
 *    "Behaviour at the edge"; 0.5 s of 30 s). Seed -2042498521 found a resend 29,569 ms after the first.
 *
 * One server for all runs: each run uses its own numbers and starts two days after the previous one, so
 * no window of an earlier run reaches into the next.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { cooldownMs } from '../../src/engine/limits.ts';
import { DEFAULT_POLICY } from '../../src/engine/policy.ts';
import { slotMsFor } from '../../src/engine/window.ts';
import { spellingOf } from './spellings.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const IPS = ['36.72.80.1', '36.72.80.2', '36.72.81.7', '103.10.20.30', '2400:cb00:1::1'];
/** The shortest gap the cooldown guarantees after the `sendsSoFar`-th message (see the file comment). */
const minGap = (sendsSoFar: number) => {
  const cd = cooldownMs(DEFAULT_POLICY, sendsSoFar);
  return cd - slotMsFor(cd);
};
const FIRST_COOLDOWN = minGap(1);

/** `OTPSHIELD_FUZZ_REPLAY='{"seed":…,"path":"…"}'` (printed by a failure) re-runs exactly that case. */
function replayFromEnv(): { seed?: number; path?: string } {
  const raw = process.env.OTPSHIELD_FUZZ_REPLAY;
  if (!raw) return {};
  const { seed, path } = JSON.parse(raw) as { seed: number; path?: string };
  return path ? { seed, path } : { seed };
}

interface Delivery {
  to: string;
  id: string;
  at: number;
}

describe('send limits, property-based', () => {
  let t: TestApp;
  const log: Delivery[] = [];
  let run = 0;
  let delivered = 0;
  before(async () => {
    t = await startTestApp();
    t.receiver.setHandler((req) => {
      const j = req.json as { to?: string; id?: string };
      if (j.to && j.id) log.push({ to: j.to, id: j.id, at: t.clock() });
      return { status: 200, json: { ok: true } };
    });
  });
  after(async () => t.close());

  /** Numbers of one run: a fresh Indonesian mobile number per index, spelled like spellings.ts spells them. */
  const numberOf = (r: number, i: number) => {
    const e164 = `+62857${String(10_000_000 + r * 10 + i)}`;
    return { e164, national: `0${e164.slice(3)}`, region: 'ID' };
  };

  const step = fc.record({
    number: fc.nat({ max: 2 }),
    spelling: fc.nat(),
    ip: fc.nat({ max: IPS.length - 1 }),
    parallel: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 6 }) }),
    advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40_000 }), fc.integer({ min: 40_000, max: 11 * MIN }), fc.constant(2 * 3_600_000)),
  });

  it('never more messages than the limits allow, for any sequence of sends', async (tc) => {
    // fc.check + our own report (not fc.assert): the inner assertion's message and the seed to replay it
    // with (`{ seed, path }`) must reach the CI log, not only the shrunk counterexample.
    const details = await fc.check(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 25 }), fc.nat(), async (steps, seed) => {
        const r = run++;
        t.clock.advance(2 * DAY);
        const from = log.length;
        const numbers = [0, 1, 2].map((i) => numberOf(r, i));
        const spellings = numbers.map((n) => fc.sample(spellingOf(n), { numRuns: 8, seed: seed + r }));
        for (const s of steps) {
          t.clock.advance(s.advanceMs);
          const base = numbers[s.number]!;
          const requests = Array.from({ length: s.parallel }, (_, k) => {
            const sp = spellings[s.number]![(s.spelling + k) % 8]!;
            const body = { to: sp.text, ...(sp.defaultRegion ? { defaultRegion: sp.defaultRegion } : {}), client: { ip: IPS[(s.ip + k) % IPS.length], userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5000 } };
            return t.request('POST', '/v1/verifications', body);
          });
          for (const res of await Promise.all(requests)) {
            assert.ok([201, 403, 429].includes(res.status), `${res.status} ${res.text}`);
            if (res.status === 201) assert.equal(res.body.to, base.e164);
          }
        }
        const mine = log.slice(from);
        delivered += mine.length;
        for (const n of numbers) {
          const d = mine.filter((x) => x.to === n.e164);
          for (const [i, x] of d.entries()) {
            const in10 = d.filter((y) => y.at >= x.at && y.at < x.at + 10 * MIN).length;
            const in24 = d.filter((y) => y.at >= x.at && y.at < x.at + DAY).length;
            assert.ok(in10 <= 3, `${in10} messages to ${n.e164} within 10 minutes`);
            assert.ok(in24 <= 10, `${in24} messages to ${n.e164} within 24 hours`);
            const next = d[i + 1];
            if (!next) continue;
            assert.ok(next.at - x.at >= FIRST_COOLDOWN, `two messages ${next.at - x.at} ms apart`);
            if (next.id === x.id) {
              const sendsSoFar = d.slice(0, i + 1).filter((y) => y.id === x.id).length;
              assert.ok(next.at - x.at >= minGap(sendsSoFar), `resend ${sendsSoFar + 1} only ${next.at - x.at} ms after the previous one`);
            }
          }
        }
      }),
      { numRuns: 25, ...replayFromEnv() },
    );
    if (details.failed) {
      const inner = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      assert.fail(`${inner}\nreplay: OTPSHIELD_FUZZ_REPLAY='${JSON.stringify({ seed: details.seed, path: details.counterexamplePath })}'\n${fc.defaultReportMessage(details)}`);
    }
    // Not vacuous: the sequences did get messages through, and the limits (not a blanket block) shaped them.
    tc.diagnostic(`${delivered} messages delivered over ${run} runs`);
    assert.ok(delivered >= 25, `${delivered} messages delivered over all runs`);
  });
});
