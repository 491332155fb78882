// Notices that a run must stop because of a write made by another process: a
// Cancel recorded by another replica, a takeover, a delete. Those made in this
// process arrive at once through the event feed; this poll bounds the delay for
// the others to `pollMs` (the Watch poll interval), at the cost of one point
// read per running task per interval: is there an event after the run's own last?
import { TaskNotFoundError } from "../domain/errors.js";
import type { TaskEvent } from "../domain/task.js";

export interface StopPollerOptions {
  /**
   * The first event after the run's own last one, if any: one written by someone else.
   * The caller runs it between the run's own writes, never during one.
   */
  next: () => Promise<TaskEvent | undefined>;
  pollMs: number;
  /** Called once: with the event another process wrote, or undefined when the task was deleted. */
  onStop: (event: TaskEvent | undefined) => void;
  onError?: (error: unknown) => void;
}

export class StopPoller {
  private readonly timer: NodeJS.Timeout;
  private polling = false;
  private stopped = false;

  constructor(private readonly options: StopPollerOptions) {
    this.timer = setInterval(() => void this.poll(), options.pollMs);
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
      const event = await this.options.next();
      if (this.stopped || !event) return;
      this.stop();
      this.options.onStop(event);
    } catch (error) {
      if (error instanceof TaskNotFoundError && !this.stopped) {
        this.stop();
        this.options.onStop(undefined);
        return;
      }
      // The lease keeper decides what an unreachable store means for the run.
      this.options.onError?.(error);
    } finally {
      this.polling = false;
    }
  }
}
