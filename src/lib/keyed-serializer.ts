/**
 * Runs tasks one at a time per key, within this process: a task waits for every earlier task that shares
 * one of its keys, and tasks with no key in common run concurrently. Waits form no cycle (a task only waits
 * for tasks that arrived before it), so there is no deadlock. Keys are forgotten when their last task ends.
 *
 * Why: a check reads its failure budgets, compares the code, then counts a failure — three store steps
 * that cannot be one atomic call (the compare happens here, in constant time, after the attempt is
 * reserved). Checks sharing an address or a number run one after the other so that a burst of parallel
 * guesses cannot all read the budget before any of them counts (VerificationService.check).
 */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const earlier: Promise<void>[] = [];
    for (const k of keys) {
      const tail = this.tails.get(k);
      if (tail && !earlier.includes(tail)) earlier.push(tail);
    }
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    for (const k of keys) this.tails.set(k, done);
    try {
      if (earlier.length > 0) await Promise.all(earlier);
      return await fn();
    } finally {
      release();
      for (const k of keys) if (this.tails.get(k) === done) this.tails.delete(k);
    }
  }

  /** Keys with a task running or waiting (for tests: it must drop to 0). */
  get size(): number {
    return this.tails.size;
  }
}
