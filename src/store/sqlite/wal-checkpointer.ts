// Checkpoints the embedded store's write-ahead log from a worker thread. SQLite
// would otherwise checkpoint inside a commit, every 1,000 pages of log: the
// commit that crosses it waits while pages are copied into the database file
// and both files are fsynced (4-7 ms of p99 Watch latency, measured in
// bench/RESULTS.md). On its own thread and connection, a PASSIVE checkpoint runs
// beside the writer instead of inside it, at the same mark: when the log holds
// `pages` pages not yet copied, or, with fewer, `quietMs` after the last copy.
//
// Not on a clock alone: a copy of the whole log lets the next commit start the
// log over, and that commit fsyncs the new log header on the writer's thread
// (SQLite does so even at synchronous = NORMAL). Copying every 100 ms made a
// lightly loaded store pay that fsync every few commits (bench/RESULTS.md,
// issue 16, 3e). The store keeps SQLite's own checkpoint as a backstop at a
// higher mark (FALLBACK_PAGES), for a log this thread does not keep up with;
// it also bounds the -wal file, ~16 MB (test/recovery/retention.test.ts checks
// the files stay flat).
import { Worker } from "node:worker_threads";
import { once } from "node:events";

const ENTRY = new URL("./wal-checkpointer-worker.js", import.meta.url);

/** Pages of log after which the writer checkpoints itself (SQLite's default is 1,000). */
export const FALLBACK_PAGES = 4_000;

export interface CheckpointPolicy {
  /** Pages of log not yet copied that start a copy (SQLite's own auto-checkpoint mark). */
  pages: number;
  /** With fewer pages waiting, a copy is made this long after the last one. */
  quietMs: number;
  /** How often the thread looks at the log. */
  tickMs: number;
}

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = { pages: 1_000, quietMs: 5_000, tickMs: 100 };

export class WalCheckpointer {
  private readonly worker: Worker;

  constructor(path: string, policy: CheckpointPolicy) {
    this.worker = new Worker(ENTRY, { workerData: { path, ...policy } });
    // A checkpoint not made is made by the backstop or when the store closes: never
    // a reason to keep the process alive or to take it down.
    this.worker.on("error", () => undefined);
    this.worker.unref();
  }

  /** Stops the thread and closes its connection (before the store closes its own). */
  async close(): Promise<void> {
    if (this.worker.threadId === -1) return; // exited already
    const exited = once(this.worker, "exit");
    // Held while it closes: unref'd, a process with nothing else to do would end before
    // the thread does, leaving this close (and the store's) unsettled.
    this.worker.ref();
    this.worker.postMessage("close");
    await exited;
  }
}
