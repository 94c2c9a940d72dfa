/**
 * WAL checkpoints off the event loop: a worker thread with its own connection to the database file runs
 * `PRAGMA wal_checkpoint(PASSIVE)` a few times a second.
 *
 * Why: with SQLite's automatic checkpoints, the commit that crosses `wal_autocheckpoint` copies the whole WAL
 * into the database file and fsyncs it, inside that commit, on the event loop. At 10,000 pages that was a
 * stall of ~10–25 ms every few seconds under load, and it set the send path's p99 (a run with the threshold
 * raised to 200,000 pages measured a p99 of 240–250 ms, its one checkpoint landing in the measured phase).
 * A PASSIVE checkpoint from another connection copies the committed frames while the writer goes on (WAL
 * allows one checkpointer beside one writer and any readers) and never waits for a lock; once it has copied
 * everything, the writer's next transaction starts the WAL over from its beginning. So the WAL stays a few
 * MB, and the main connection's own autocheckpoint (kept as the fallback if this thread dies or falls
 * behind) is never reached. Durability does not depend on it: a checkpoint only copies committed frames.
 *
 * The worker's code is plain CommonJS evaluated from a string (`eval: true`), so it runs the same under tsx
 * and from the compiled build, and loads better-sqlite3 from the path the main thread resolved.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Milliseconds between checkpoint attempts. Default 200. */
  intervalMs?: number;
  busyTimeoutMs?: number;
  /** Called with each failure the worker reports (it keeps trying); default: ignored. */
  onError?: (message: string) => void;
}

export interface CheckpointStats {
  /** Checkpoint attempts that copied at least one frame. */
  checkpoints: number;
  /** Frames copied into the database file. */
  frames: number;
  /** Attempts that found another checkpoint running (SQLite's `busy`). */
  busy: number;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
// This connection never writes; its own autocheckpoint must not run either.
db.pragma('wal_autocheckpoint = 0');
let timer = null;
let stopped = false;
let previous = -1;
const tick = () => {
  timer = null;
  if (stopped) return;
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    // Only news: an idle, fully copied WAL answers the same every time.
    if (r.busy || r.checkpointed !== previous) parentPort.postMessage({ type: 'checkpoint', busy: r.busy, log: r.log, checkpointed: r.checkpointed });
    previous = r.checkpointed;
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: String((err && err.message) || err) });
  }
  timer = setTimeout(tick, workerData.intervalMs);
};
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  stopped = true;
  if (timer) clearTimeout(timer);
  try { db.close(); } catch {}
  parentPort.close();
});
tick();
`;

/** A running checkpoint thread for one database file (in WAL mode, already created). */
export class WalCheckpointer {
  readonly stats: CheckpointStats = { checkpoints: 0, frames: 0, busy: 0 };
  private readonly worker: Worker;
  /** `checkpointed` of the previous report: frames of the current WAL copied so far. */
  private lastCheckpointed = 0;
  private stopping: Promise<void> | null = null;
  /** Set once the thread has ended (stopped, or died: a dead one must not make stop() wait forever). */
  private exited = false;

  constructor(file: string, opts: CheckpointerOptions = {}) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Not the parent's --import tsx etc.: the worker runs plain CommonJS.
      execArgv: [],
      workerData: { file, driver, intervalMs: Math.max(10, opts.intervalMs ?? 200), busyTimeoutMs: Math.max(0, opts.busyTimeoutMs ?? 1000) },
    });
    this.worker.on('message', (m: { type: string; busy?: number; log?: number; checkpointed?: number; message?: string }) => {
      if (m.type === 'error') opts.onError?.(m.message ?? 'checkpoint failed');
      else if (m.type === 'checkpoint') {
        if (m.busy) this.stats.busy++;
        // `checkpointed` counts the frames copied since the WAL (re)started: new ones are the difference, or
        // all of them when it went down (the writer started the WAL over in between).
        const now = Math.max(0, m.checkpointed ?? 0);
        const copied = now >= this.lastCheckpointed ? now - this.lastCheckpointed : now;
        if (copied > 0) {
          this.stats.checkpoints++;
          this.stats.frames += copied;
        }
        this.lastCheckpointed = now;
      }
    });
    this.worker.on('error', (err) => opts.onError?.(err.message));
    this.worker.once('exit', () => (this.exited = true));
    // Never what keeps a process alive (close() stops it; a process that forgets to close still exits).
    // After the listeners: attaching a 'message' listener refs the worker's port again.
    this.worker.unref();
  }

  /** False once the thread has ended (after stop(), or if it died). */
  get running(): boolean {
    return !this.exited;
  }

  /** Stop the thread (its connection closes first). */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      this.worker.once('exit', () => resolve());
      // Referenced again while it stops, so a caller awaiting close() is not left with a process that exits.
      this.worker.ref();
      this.worker.postMessage('stop');
      // A worker stuck in a long checkpoint is terminated rather than waited for without bound.
      setTimeout(() => void this.worker.terminate(), 2000).unref();
    });
    return this.stopping;
  }
}
