// The bounds no run enforces: every `everyMs` it fails the PENDING and
// INPUT_REQUIRED tasks whose deadline has passed (a run enforces its own), and
// deletes terminal tasks past their retention, in batches until none is left.
// Small batches, one task per write: Submit and Watch never wait behind a long
// purge. It also runs at start, so a deadline that passed while no server was up
// is enforced.
import { setTimeout as sleep } from "node:timers/promises";
import { FailedPreconditionError, TaskNotFoundError } from "../domain/errors.js";
import { expire } from "../domain/transitions.js";
import { errorMessage, type Logger } from "../logger.js";
import type { TaskStore } from "../store/task-store.js";

export interface SweeperOptions {
  store: TaskStore;
  logger: Logger;
  everyMs: number;
  /** Tasks expired, and tasks purged, per round at most. */
  batch?: number;
}

export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  private sweeping = false;
  private stopping = false;

  constructor(private readonly options: SweeperOptions) {}

  start(): void {
    this.timer = setInterval(() => this.sweep(), this.options.everyMs);
    this.sweep();
  }

  /** Stops after the batch in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.round;
  }

  private sweep(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    this.round = this.once()
      .catch((error: unknown) => this.options.logger.warn({ err: errorMessage(error) }, "sweep failed; will retry"))
      .finally(() => {
        this.sweeping = false;
      });
  }

  /**
   * Batches until one finds less than a full batch to do. A backlog (a burst of tasks
   * ending, retention just turned on) is worked off in this round, not one batch a period
   * (100 tasks per ROOKERY_SWEEP_MS would cap retention at 20 tasks/s by default, and a
   * server finishing more would grow for good). Between batches it pauses as long as the
   * batch took: a backlog gets at most half of the process's time, Submit and Watch the rest.
   */
  private async once(): Promise<void> {
    const batch = this.options.batch ?? 100;
    let purged = 0;
    try {
      for (;;) {
        const started = performance.now();
        const expired = await this.expireBatch(new Date(), batch);
        const deleted = await this.purgeBatch(new Date(), batch);
        purged += deleted;
        // Counted by what was done, not listed: a listed task that another writer moved on is
        // listed no more, so a full batch always shrank what is due.
        if ((expired < batch && deleted < batch) || this.stopping) return;
        await sleep(performance.now() - started);
      }
    } finally {
      if (purged > 0) this.options.logger.info({ tasks: purged }, "retention purged tasks");
    }
  }

  /** Fails up to `batch` tasks past a deadline no run enforces; returns how many it failed. */
  private async expireBatch(now: Date, batch: number): Promise<number> {
    let done = 0;
    for (const id of await this.options.store.expired(now, batch)) {
      try {
        const { task } = await this.options.store.commit(id, expire());
        this.options.logger.info({ taskId: id, code: task.errorCode }, "task expired");
        done++;
      } catch (error) {
        // Claimed, resumed or deleted since it was listed: nothing to do.
        if (!(error instanceof FailedPreconditionError) && !(error instanceof TaskNotFoundError)) throw error;
      }
    }
    return done;
  }

  /** Deletes up to `batch` tasks past their retention, each only if still due (a task resumed since it was listed stays). */
  private async purgeBatch(now: Date, batch: number): Promise<number> {
    const ids = await this.options.store.purgeable(now, batch);
    const deleted = await Promise.all(ids.map((id) => this.options.store.delete(id, now)));
    return deleted.filter(Boolean).length;
  }
}
