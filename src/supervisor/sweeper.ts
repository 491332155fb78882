// The bounds no run enforces: every `everyMs` it fails the PENDING and
// INPUT_REQUIRED tasks whose deadline has passed (a run enforces its own), and
// deletes a batch of terminal tasks past their retention. Small batches, one
// task per write: Submit and Watch never wait behind a long purge. It also
// runs at start, so a deadline that passed while no server was up is enforced.
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

  constructor(private readonly options: SweeperOptions) {}

  start(): void {
    this.timer = setInterval(() => this.sweep(), this.options.everyMs);
    this.sweep();
  }

  /** Stops after the round in progress. Idempotent. */
  async stop(): Promise<void> {
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

  private async once(): Promise<void> {
    const batch = this.options.batch ?? 100;
    const now = new Date();
    for (const id of await this.options.store.expired(now, batch)) {
      try {
        const { task } = await this.options.store.commit(id, expire());
        this.options.logger.info({ taskId: id, code: task.errorCode }, "task expired");
      } catch (error) {
        // Claimed, resumed or deleted since it was listed: nothing to do.
        if (!(error instanceof FailedPreconditionError) && !(error instanceof TaskNotFoundError)) throw error;
      }
    }
    // Each only if still due: a task resumed since it was listed stays.
    const purged = await Promise.all((await this.options.store.purgeable(now, batch)).map((id) => this.options.store.delete(id, now)));
    if (purged.length > 0) this.options.logger.info({ tasks: purged.filter(Boolean).length }, "retention purged tasks");
  }
}
