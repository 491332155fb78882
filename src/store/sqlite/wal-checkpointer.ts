// Checkpoints the embedded store's write-ahead log from a worker thread. SQLite
// would otherwise checkpoint inside a commit, every 1,000 pages of log: the
// commit that crosses it waits while pages are copied into the database file
// and both files are fsynced (4-7 ms of p99 Watch latency, measured in
// bench/RESULTS.md). On its own thread and connection, a PASSIVE checkpoint runs
// beside the writer instead of inside it. The store keeps SQLite's own
// checkpoint as a backstop at a higher mark (FALLBACK_PAGES), for a log this
// thread does not keep up with. Under steady writes the log is seldom found
// fully copied when the next write begins (which is when SQLite starts it over
// from its beginning), so the backstop is also what bounds the -wal file: ~16 MB
// (test/recovery/retention.test.ts checks the files stay flat).
import { Worker } from "node:worker_threads";
import { once } from "node:events";

const ENTRY = new URL("./wal-checkpointer-worker.js", import.meta.url);

/** Pages of log after which the writer checkpoints itself (SQLite's default is 1,000). */
export const FALLBACK_PAGES = 4_000;

export class WalCheckpointer {
  private readonly worker: Worker;

  constructor(path: string, intervalMs = 100) {
    this.worker = new Worker(ENTRY, { workerData: { path, intervalMs } });
    // A checkpoint not made is made by the backstop or when the store closes: never
    // a reason to keep the process alive or to take it down.
    this.worker.on("error", () => undefined);
    this.worker.unref();
  }

  /** Stops the thread and closes its connection (before the store closes its own). */
  async close(): Promise<void> {
    if (this.worker.threadId === -1) return; // exited already
    const exited = once(this.worker, "exit");
    this.worker.postMessage("close");
    await exited;
  }
}
