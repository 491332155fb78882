// In-process fan-out of the model output of the tasks this process runs. The
// supervisor appends what each streamed chunk adds; Watch streams that asked
// for output read from any position and are woken at most once per coalescing
// window, so a fast model costs a message per window, not per token. Watchers
// on other replicas read the same output from the store instead (see
// supervisor/output-sharer.ts).
import { runOf, type OutputChunk, type OutputPart } from "../domain/output.js";
import { OutputLog } from "./output-log.js";

interface TaskOutput {
  /** The iteration streaming now, and the one before (read by watchers still flushing it). */
  current: OutputLog;
  previous?: OutputLog;
}

/**
 * Finished runs whose output is kept at most, however young: a busy server ends hundreds of
 * runs a second, and each kept output costs ~2 KB of heap (bench/RESULTS.md, issue 16, 1b).
 */
export const MAX_FINISHED = 10_000;

export class OutputFeed {
  private readonly tasks = new Map<string, TaskOutput>();
  /** Runs that ended here, oldest first, with when their output goes (the grace period is the same for all). */
  private readonly finished: { taskId: string; output: TaskOutput; expiresAt: number }[] = [];
  /** One timer, for the oldest finished run's expiry (not one per run). */
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Map<string, Set<() => void>>();
  /** A timer per task with output waiting: tasks' wake-ups spread over the window, not one burst. */
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** `coalesceMs`: the longest a piece of output waits before watchers are woken for it. */
  constructor(private readonly coalesceMs: number) {}

  append(taskId: string, iteration: number, attempt: number, parts: OutputPart[]): void {
    let output = this.tasks.get(taskId);
    if (!output || output.current.iteration !== iteration) {
      output = { current: new OutputLog(taskId, iteration, attempt), ...(output ? { previous: output.current } : {}) };
      this.tasks.set(taskId, output);
    } else if (runOf(output.current.attempt) !== runOf(attempt)) {
      // A new run of the same iteration (taken over here): its output starts at 0, as on any
      // other replica, and in a new object, which the older run's release() leaves alone.
      output = { current: new OutputLog(taskId, iteration, attempt), ...(output.previous ? { previous: output.previous } : {}) };
      this.tasks.set(taskId, output);
    } else if (output.current.attempt !== attempt) {
      output.current.restart(attempt);
    }
    for (const part of parts) output.current.append(part);
    this.changed(taskId);
  }

  /** The log of the task's iteration if this process holds it (of `minAttempt` or later). */
  log(taskId: string, iteration: number, minAttempt: number): OutputLog | undefined {
    const output = this.tasks.get(taskId);
    const log = output?.current.iteration === iteration ? output.current : output?.previous;
    return log && log.iteration === iteration && log.attempt >= minAttempt ? log : undefined;
  }

  read(taskId: string, iteration: number, minAttempt: number, from: number): OutputChunk | undefined {
    return this.log(taskId, iteration, minAttempt)?.read(from);
  }

  /**
   * Run `run` of the task ended here: its output stays readable for `afterMs` (a watcher that
   * replays the task, or reconnects with an output offset, gets the last iteration's output
   * before its event), then goes. Kept in one list rather than a timer per run, and at most
   * MAX_FINISHED runs: past that the oldest go sooner (their events still hold the text).
   * A later run's output (the task resumed or taken over here while this run was ending) is
   * not this run's to release.
   */
  release(taskId: string, run: number, afterMs: number): void {
    const output = this.tasks.get(taskId);
    if (output && runOf(output.current.attempt) === run) this.finished.push({ taskId, output, expiresAt: Date.now() + afterMs });
    this.sweep();
  }

  private sweep(): void {
    const now = Date.now();
    while (this.finished.length > 0 && (this.finished.length > MAX_FINISHED || this.finished[0]!.expiresAt <= now)) {
      const oldest = this.finished.shift()!;
      if (this.tasks.get(oldest.taskId) === oldest.output) this.tasks.delete(oldest.taskId);
    }
    const next = this.finished[0];
    if (next && !this.sweepTimer) {
      this.sweepTimer = setTimeout(() => {
        this.sweepTimer = undefined;
        this.sweep();
      }, next.expiresAt - now);
      this.sweepTimer.unref();
    }
  }

  /**
   * The iteration's reply is complete and its event is being committed: its watchers get
   * the rest just before that event, so the pending wake-up would only wake them for nothing.
   */
  settle(taskId: string): void {
    clearTimeout(this.timers.get(taskId));
    this.timers.delete(taskId);
  }

  /** Calls `listener` (coalesced) when the task has new output; returns the unsubscribe function. */
  subscribe(taskId: string, listener: () => void): () => void {
    let set = this.listeners.get(taskId);
    if (!set) {
      set = new Set();
      this.listeners.set(taskId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(taskId);
    };
  }

  private changed(taskId: string): void {
    if (!this.listeners.has(taskId) || this.timers.has(taskId)) return;
    const timer = setTimeout(() => {
      this.timers.delete(taskId);
      for (const listener of this.listeners.get(taskId) ?? []) listener();
    }, this.coalesceMs);
    this.timers.set(taskId, timer);
  }
}
