import { MemoryStore } from '../src/store/memory.ts';
import { applyLimits } from '../src/store/codec.ts';
const proto = MemoryStore.prototype as any;
proto.consumeLimits = async function (specs: any[], now: number) {
  const { outcome, writes } = applyLimits(specs, now, this.loadStates(specs, now, false));
  for (const w of writes) this.counters.set(w.key, { state: w.state, expiresAt: w.expiresAt });
  return outcome;
};
await import('./replay.ts');
