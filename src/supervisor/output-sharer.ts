// Writes a run's output to the store, coalesced, for Watch streams on other
// replicas (a store that sharesOutput), while one of them wants it (it notes so
// in the store; the runner reads the note at each flush until there is one). Then at most one chunk
// per `flushMs` per running task, plus one when an iteration closes; each holds
// what the model streamed since the previous one. Without such a watcher,
// nothing is written.
import type { TaskStore } from "../store/task-store.js";
import type { OutputFeed } from "../watch/output-feed.js";
import { OneAtATime } from "./one-at-a-time.js";

export interface OutputSharerOptions {
  store: TaskStore;
  feed: OutputFeed;
  taskId: string;
  flushMs: number;
  onError: (error: unknown) => void;
}

export class OutputSharer {
  private iteration = 0;
  private written = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly writes = new OneAtATime();
  /** Whether anything was written: only then is there anything to delete. */
  wrote = false;
  private wanted = { at: 0, value: false };

  constructor(private readonly options: OutputSharerOptions) {}

  /** The iteration has new output in the feed: write it within flushMs. */
  changed(iteration: number): void {
    if (iteration !== this.iteration) {
      this.iteration = iteration;
      this.written = 0;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(this.options.onError);
    }, this.options.flushMs);
  }

  /** Writes what is not written yet; resolves once it is stored. */
  flush(): Promise<void> {
    return this.writes.run(async () => {
      if (!(await this.someoneWatches())) return;
      const chunk = this.options.feed.read(this.options.taskId, this.iteration, 0, this.written);
      if (!chunk) return;
      await this.options.store.appendOutput(chunk);
      this.written = chunk.endOffset;
      this.wrote = true;
    });
  }

  /** Asked at every flush until a watcher is there, then once a second: one point read per flush at most. */
  private async someoneWatches(): Promise<boolean> {
    const now = Date.now();
    if (!this.wanted.value || now - this.wanted.at >= 1_000) {
      this.wanted = { at: now, value: await this.options.store.hasOutputWatcher(this.options.taskId, new Date(now)) };
    }
    return this.wanted.value;
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
