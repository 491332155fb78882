// Notices that a run must stop because of a write made by another process: a
// Cancel recorded by another replica, or a takeover. Cancels made in this
// process arrive at once through the event feed; this poll bounds the delay
// for the others to `pollMs` (the Watch poll interval), at the cost of one
// point read per running task per interval.
import type { Task } from "../domain/task.js";

export interface StopPollerOptions {
  /** The task as stored now (undefined when it is gone). */
  read: () => Promise<Task | undefined>;
  token: string;
  pollMs: number;
  /** Called once, with the task as read, when it is no longer RUNNING under `token`. */
  onStop: (task: Task | undefined) => void;
  onError?: (error: unknown) => void;
}

export class StopPoller {
  private readonly timer: NodeJS.Timeout;
  private polling = false;
  private stopped = false;

  constructor(private readonly o: StopPollerOptions) {
    this.timer = setInterval(() => void this.poll(), o.pollMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.stopped || this.polling) return;
    this.polling = true;
    try {
      const task = await this.o.read();
      if (this.stopped) return;
      if (task?.status !== "running" || task.lease?.token !== this.o.token) {
        this.stop();
        this.o.onStop(task);
      }
    } catch (error) {
      // The lease keeper decides what an unreachable store means for the run.
      this.o.onError?.(error);
    } finally {
      this.polling = false;
    }
  }
}
