/**
 * Run `run` every `ms` milliseconds, one run at a time (a run still going when the next is due skips that turn),
 * failures handed to `onError` and retried at the next turn. The timer is unref'd: it never keeps a process
 * alive. Returns the timer (clearInterval stops it).
 */
export function every(ms: number, run: () => Promise<unknown>, onError: (err: unknown) => void): NodeJS.Timeout {
  let running = false;
  const t = setInterval(() => {
    if (running) return;
    running = true;
    run()
      .catch(onError)
      .finally(() => (running = false));
  }, ms);
  t.unref();
  return t;
}
