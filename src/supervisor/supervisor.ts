// Claims tasks up to a concurrency limit, runs each under a lease, writes
// every outcome as a fenced transition, and on stop() hands running tasks back
// (RUNNING -> PENDING) so another process can take them at once.
import { randomUUID } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import { runAgent, type AgentDeps, type RunOutcome } from "../agent/agent-loop.js";
import { isLeaseLost, LeaseLostError, TaskNotFoundError } from "../domain/errors.js";
import type { Task, TaskEvent } from "../domain/task.js";
import { checkpoint, claim, complete, fail, passedDeadline, release, requireInput, type Decide } from "../domain/transitions.js";
import { errorMessage, type Logger } from "../logger.js";
import type { TaskStore } from "../store/task-store.js";
import type { EventFeed } from "../watch/event-feed.js";
import type { Hooks } from "../hooks.js";
import { contextFrom, failActiveSpan, inSpan, pastSpan } from "../telemetry/spans.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { OneAtATime } from "./one-at-a-time.js";
import { StopPoller } from "./stop-poller.js";
import { OutputSharer } from "./output-sharer.js";
import { outputParts } from "../agent/reply-assembler.js";
import { attemptOf } from "../domain/output.js";
import { MAX_TIMER_MS } from "../timer-limit.js";
import type { OutputFeed } from "../watch/output-feed.js";

export interface SupervisorOptions {
  store: TaskStore;
  hooks?: Hooks;
  feed: EventFeed;
  /** Where runs put the model's output as it streams (Watch with include_output reads it). */
  outputs: OutputFeed;
  /** With a store that shares output: how often a run writes its new output there. */
  outputFlushMs: number;
  /** How long a finished run's output stays readable, for watchers still catching up with it. */
  outputGraceMs: number;
  agent: AgentDeps;
  logger: Logger;
  concurrency: number;
  leaseMs: number;
  /** A task taken over from dead holders this many times in a row FAILS instead of running again. */
  maxTakeovers: number;
  /** How often a run checks the store for a Cancel (or takeover) recorded by another process. */
  stopPollMs: number;
  /** How often to look for claimable tasks (new elsewhere, or with an expired lease). */
  pollMs: number;
  workerId?: string;
}

/** Why a run was aborted: the reason given to its AbortController. */
export class RunStopped extends Error {
  override readonly name = "RunStopped";
  constructor(
    readonly why: "cancelled" | "shutdown" | "lease_lost" | "deleted" | "timeout",
    detail: string,
  ) {
    super(detail);
  }
}

interface ActiveRun {
  controller: AbortController;
  done: Promise<void>;
}

export class Supervisor {
  readonly workerId: string;
  private readonly active = new Map<string, ActiveRun>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private unsubscribeDeletions: (() => void) | undefined;
  /** The claims under way, and the launch of what they got. */
  private filling: Promise<void> | undefined;
  private fillAgain = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: SupervisorOptions) {
    this.workerId = options.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
  }

  start(): void {
    this.unsubscribe = this.options.feed.subscribeAll((e) => this.onEvent(e));
    this.unsubscribeDeletions = this.options.feed.subscribeDeletions((id) =>
      this.active.get(id)?.controller.abort(new RunStopped("deleted", "the task was deleted")),
    );
    this.timer = setInterval(() => void this.fill(), this.options.pollMs);
    void this.fill();
  }

  /** Number of tasks this process is running now. */
  get running(): number {
    return this.active.size;
  }

  /** Stops claiming, aborts every run and hands its task back. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.timer);
      this.unsubscribe?.();
      this.unsubscribeDeletions?.();
      // Claims already asked for may still get tasks: those runs start, and are handed back below.
      await this.filling;
      const runs = [...this.active.values()];
      for (const run of runs) run.controller.abort(new RunStopped("shutdown", "server is shutting down"));
      await Promise.all(runs.map((r) => r.done));
    })();
    return this.stopping;
  }

  private onEvent(event: TaskEvent): void {
    if (event.status === "pending") {
      this.options.hooks?.reached("supervisor.before_claim");
      void this.fill();
    }
    if (event.status === "cancelled") {
      this.active.get(event.taskId)?.controller.abort(new RunStopped("cancelled", "cancelled by caller"));
    }
  }

  private fill(): Promise<void> {
    if (this.filling) {
      this.fillAgain = true;
      return this.filling;
    }
    this.filling = this.claimWhileFree().finally(() => {
      this.filling = undefined;
    });
    return this.filling;
  }

  private async claimWhileFree(): Promise<void> {
    try {
      do {
        this.fillAgain = false;
        while (!this.stopping && this.active.size < this.options.concurrency) {
          // One claim per free slot, all asked at once so that the store can write them
          // together (the SQLite store commits what arrives in one tick in one transaction).
          const free = this.options.concurrency - this.active.size;
          const claimedFrom = new Date();
          const claims = await Promise.allSettled(
            Array.from({ length: free }, () => this.options.store.claimNext(claim(this.workerId, this.options.leaseMs))),
          );
          let launched = 0;
          for (const result of claims) {
            if (result.status === "rejected" || !result.value) continue;
            this.options.hooks?.reached("supervisor.after_claim");
            await this.options.hooks?.pause?.("supervisor.claimed");
            this.launch(result.value.task, { from: claimedFrom, to: new Date() });
            launched += 1;
          }
          const failed = claims.find((r) => r.status === "rejected");
          if (failed) throw failed.reason;
          if (launched < free) break;
        }
      } while (this.fillAgain && !this.stopping);
    } catch (error) {
      this.options.logger.warn({ err: errorMessage(error) }, "could not claim tasks; will retry");
    }
  }

  /** `claim`: when the claim that got the task was asked and answered (for its span). */
  private launch(task: Task, claim: { from: Date; to: Date }): void {
    const controller = new AbortController();
    const run: ActiveRun = { controller, done: Promise.resolve() };
    this.active.set(task.id, run);
    run.done = this.traced(task, claim, () => this.run(task, controller)).finally(async () => {
      await this.options.hooks?.pause?.("supervisor.run_ended");
      // The task may be running here again already (resumed or taken over while this run
      // was ending): that run keeps its place.
      if (this.active.get(task.id) === run) this.active.delete(task.id);
      void this.fill();
    });
  }

  /**
   * The run in an `invoke_agent` span, a child of the context the task was submitted in
   * (stored with it): every run of a task, a takeover on another replica after a crash and
   * the run after a Resume included, lands in the submitter's trace.
   */
  private traced(task: Task, claim: { from: Date; to: Date }, run: () => Promise<void>): Promise<void> {
    const attributes = {
      "gen_ai.operation.name": "invoke_agent",
      "gen_ai.agent.name": "rookery",
      "gen_ai.agent.id": task.id,
      "rookery.task.id": task.id,
      "rookery.task.run": task.runs ?? 1,
      ...(task.model ? { "gen_ai.request.model": task.model } : {}),
    };
    return inSpan("invoke_agent rookery", { attributes, parent: contextFrom(task.traceparent) }, () => {
      // The claim, recorded in the run's trace now that the task is known.
      pastSpan("rookery.store claim", claim.from, claim.to, { "rookery.store.operation": "claim", "rookery.worker": this.workerId });
      return run();
    });
  }

  private async run(task: Task, controller: AbortController): Promise<void> {
    const token = task.lease!.token;
    const log = this.options.logger.child({ taskId: task.id });
    log.info({ iterations: task.iterations, resumed: Boolean(task.checkpoint) }, "task claimed");
    // The run's own writes (checkpoints, its last transition, lease renewals) go one at a
    // time: a renewal interleaved with a commit could be lost (the MongoDB adapter renews
    // the event it read as newest, which a concurrent commit may have just superseded).
    const writes = new OneAtATime();
    // The sequence of the run's own last event: anything after it was written by someone else.
    let own = task.sequence;
    const commit = (decide: Decide) =>
      writes.run(async () => {
        const committed = await this.options.store.commit(task.id, decide);
        own = committed.task.sequence;
        return committed;
      });
    if ((task.takeovers ?? 0) >= this.options.maxTakeovers) {
      // Its holders keep dying mid-run (a reply that crashes the process would do that):
      // stop here rather than take every replica down in turn.
      log.error({ takeovers: task.takeovers }, "task taken over too many times in a row; failing it");
      await this.tryCommit(
        commit,
        fail(token, takeoverFailure(task.takeovers ?? 0, this.options.maxTakeovers), "takeovers"),
        log,
        "failed",
      );
      return;
    }
    // A deadline that passed before the run began (while queued, or while no server was up).
    const passed = passedDeadline(task, new Date());
    if (passed) {
      await this.tryCommit(commit, fail(token, passed.error, passed.code), log, "failed");
      return;
    }
    // At the deadline the in-flight model call is aborted and the task FAILS with TIMEOUT.
    // (A deadline further off than setTimeout can wait, ~24.8 days, is left to the run's end.)
    const untilDeadline = task.deadline ? task.deadline.getTime() - Date.now() : Infinity;
    const deadline =
      untilDeadline <= MAX_TIMER_MS
        ? setTimeout(() => controller.abort(new RunStopped("timeout", passedDeadline(task, task.deadline!)!.error)), untilDeadline)
        : undefined;
    deadline?.unref();
    const keeper = new LeaseKeeper({
      renew: (expiresAt) => writes.run(() => this.options.store.renewLease(task.id, token, expiresAt)),
      leaseMs: this.options.leaseMs,
      expiresAt: task.lease!.expiresAt,
      onLost: (why) => controller.abort(new RunStopped("lease_lost", why)),
      onError: (error) => log.warn({ err: errorMessage(error) }, "could not renew lease"),
    });
    const poller = new StopPoller({
      next: () => writes.run(async () => (await this.options.store.events(task.id, own, 1))[0]),
      pollMs: this.options.stopPollMs,
      onStop: (event) =>
        controller.abort(
          !event
            ? new RunStopped("deleted", "the task was deleted")
            : event.status === "cancelled"
              ? new RunStopped("cancelled", "cancelled by caller (seen in the store)")
              : new RunStopped("lease_lost", `another process wrote event ${event.sequence} (${event.status})`),
        ),
    });
    const runs = task.runs ?? 1;
    const sharer = this.options.store.sharesOutput
      ? new OutputSharer({
          store: this.options.store,
          feed: this.options.outputs,
          taskId: task.id,
          flushMs: this.options.outputFlushMs,
          onError: (error) => log.warn({ err: errorMessage(error) }, "could not share output"),
        })
      : undefined;
    try {
      const outcome = await runAgent(task, this.options.agent, {
        signal: controller.signal,
        onOutput: (iteration, retry, delta) => {
          this.options.outputs.append(task.id, iteration, attemptOf(runs, retry), outputParts(delta));
          sharer?.changed(iteration);
        },
        checkpoint: async (progress) => {
          // Output first: a watcher on another replica that sees the event finds all of it stored.
          await sharer?.flush();
          this.options.outputs.settle(task.id);
          await commit(checkpoint(token, progress));
          this.options.hooks?.reached("supervisor.after_checkpoint");
          // One turn of the event loop before the next model call, so the event's writes to
          // this process's watchers go out first rather than after that call's request is built.
          await nextTurn();
          if (sharer?.wrote) void this.options.store.deleteOutput(task.id, { iteration: progress.iterations }).catch(() => undefined);
        },
      });
      keeper.stop();
      poller.stop();
      await sharer?.flush();
      if (outcome.kind === "failed") failActiveSpan(outcome.error, { "error.type": outcome.code });
      await commit(finish(token, outcome));
      log.info({ outcome: outcome.kind }, "task run ended");
    } catch (error) {
      keeper.stop();
      poller.stop();
      await this.stopped(token, controller.signal.reason ?? error, commit, log);
    } finally {
      clearTimeout(deadline);
      sharer?.stop();
      this.options.outputs.release(task.id, runs, this.options.outputGraceMs);
      // Watchers elsewhere have had the closing event for a while by then. Only this run's output
      // and older runs' goes: the task may be running again already (resumed, or taken over), and
      // its new run's output is another replica's watchers' to read. A run after the first also
      // removes what an earlier run left behind (its process killed, or gone before its grace).
      if (sharer && (sharer.wrote || runs > 1)) {
        const before = { attempt: attemptOf(runs + 1, 0) };
        setTimeout(() => void this.options.store.deleteOutput(task.id, before).catch(() => undefined), this.options.outputGraceMs).unref();
      }
    }
  }

  /** A run ended by abort or error: decide what, if anything, to write. */
  private async stopped(token: string, reason: unknown, commit: (decide: Decide) => Promise<unknown>, log: Logger): Promise<void> {
    if (reason instanceof RunStopped && reason.why === "shutdown") {
      await this.tryCommit(commit, release(token), log, "handed back");
    } else if (reason instanceof RunStopped && reason.why === "timeout") {
      await this.tryCommit(commit, fail(token, reason.message, "timeout"), log, "failed");
    } else if (reason instanceof RunStopped || isLeaseLost(reason) || reason instanceof TaskNotFoundError) {
      // Cancelled (already recorded by the caller), taken over or deleted: the task is no longer ours.
      log.info({ why: errorMessage(reason) }, "task run stopped");
    } else {
      log.error({ err: errorMessage(reason) }, "task run failed unexpectedly");
      await this.tryCommit(commit, fail(token, `internal error: ${errorMessage(reason)}`, "internal"), log, "failed");
    }
  }

  private async tryCommit(commit: (decide: Decide) => Promise<unknown>, decide: Decide, log: Logger, what: string): Promise<void> {
    try {
      await commit(decide);
      log.info(`task ${what}`);
    } catch (error) {
      // The lease will expire and another worker (or this one) will take the task over; or it was deleted.
      if (!(error instanceof LeaseLostError) && !(error instanceof TaskNotFoundError))
        log.warn({ err: errorMessage(error) }, `task could not be ${what}`);
    }
  }
}

function takeoverFailure(takeovers: number, max: number): string {
  return (
    `the task's run was taken over ${takeovers} times in a row from a holder that stopped without finishing ` +
    `(crashed or lost its lease), the most allowed (ROOKERY_MAX_TAKEOVERS=${max}); Resume the task to try again`
  );
}

function finish(token: string, outcome: RunOutcome): Decide {
  switch (outcome.kind) {
    case "completed":
      return complete(token, outcome.result, outcome.progress);
    case "input_required":
      return requireInput(token, outcome.calls, outcome.progress);
    case "failed":
      return fail(token, outcome.error, outcome.code, outcome.progress);
  }
}
