// What a task page knows of a task's Watch stream: the events seen (dense, by
// sequence) and the output of the iteration in flight. It says where to resume
// (after_sequence, output_offset), so a lost connection or a reloaded page
// continues the stream with nothing missing or doubled. Kept in sessionStorage
// per task, so reopening the page resumes instead of replaying.
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { TaskEventSchema, TaskStatus, type OutputDelta, type TaskEvent } from "../../gen/rookery/v1/task_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchRequestSchema, WatchResponse } from "../../gen/rookery/v1/task_service_pb.js";

export interface LiveCall {
  id: string;
  name: string;
  arguments: string;
}

/** The output of the iteration being generated, as streamed so far. */
export interface LiveOutput {
  iteration: number;
  attempt: number;
  /** Where the next delta starts: the resume point. */
  endOffset: bigint;
  text: string;
  calls: LiveCall[];
  /** How many times this iteration's output started over (a retry or a takeover). */
  restarts: number;
}

export type Applied = "event" | "output" | "restart" | "ignored";

export class Timeline {
  readonly events: TaskEvent[] = [];
  output: LiveOutput | undefined;

  constructor(readonly taskId: string) {}

  get lastSequence(): bigint {
    return this.events.at(-1)?.sequence ?? 0n;
  }

  /** The Watch request that continues from what has been seen. */
  resumeRequest(): MessageInitShape<typeof WatchRequestSchema> {
    return {
      id: this.taskId,
      afterSequence: this.lastSequence,
      includeOutput: true,
      outputOffset: this.output?.endOffset ?? 0n,
    };
  }

  apply(response: WatchResponse): Applied {
    if (response.event) return this.applyEvent(response.event);
    if (response.output) return this.applyOutput(response.output);
    return "ignored";
  }

  private applyEvent(event: TaskEvent): Applied {
    // A stream resumed after `lastSequence` never repeats one; this guards a caller's own overlap.
    if (event.sequence <= this.lastSequence) return "ignored";
    this.events.push(event);
    if (this.output && (event.iterations >= this.output.iteration || event.status !== TaskStatus.RUNNING)) this.output = undefined;
    return "event";
  }

  private applyOutput(delta: OutputDelta): Applied {
    let restarted = false;
    if (!this.output || this.output.iteration !== delta.iteration || this.output.attempt !== delta.attempt) {
      restarted = this.output?.iteration === delta.iteration;
      this.output = {
        iteration: delta.iteration,
        attempt: delta.attempt,
        endOffset: 0n,
        text: "",
        calls: [],
        restarts: restarted ? (this.output?.restarts ?? 0) + 1 : 0,
      };
    }
    const output = this.output;
    if (delta.offset !== output.endOffset) return "ignored";
    output.text += delta.text;
    for (const piece of delta.toolCalls) {
      const call = (output.calls[piece.index] ??= { id: "", name: "", arguments: "" });
      if (piece.id) call.id = piece.id;
      if (piece.name) call.name = piece.name;
      call.arguments += piece.arguments;
    }
    output.endOffset = delta.endOffset;
    return restarted ? "restart" : "output";
  }

  // --- kept per task in sessionStorage ---

  save(storage: Storage): void {
    try {
      storage.setItem(
        storageKey(this.taskId),
        JSON.stringify({
          events: this.events.map((e) => toJson(TaskEventSchema, e)),
          output: this.output ? { ...this.output, endOffset: String(this.output.endOffset) } : null,
        }),
      );
    } catch {
      // Full or unavailable: the page replays from the start next time instead.
      storage.removeItem(storageKey(this.taskId));
    }
  }

  static restore(taskId: string, storage: Storage): Timeline {
    const timeline = new Timeline(taskId);
    const saved = storage.getItem(storageKey(taskId));
    if (!saved) return timeline;
    try {
      const parsed = JSON.parse(saved) as { events: JsonValue[]; output: (Omit<LiveOutput, "endOffset"> & { endOffset: string }) | null };
      for (const e of parsed.events) timeline.events.push(fromJson(TaskEventSchema, e));
      if (parsed.output) timeline.output = { ...parsed.output, endOffset: BigInt(parsed.output.endOffset) };
    } catch {
      return new Timeline(taskId);
    }
    return timeline;
  }
}

function storageKey(taskId: string): string {
  return `rookery.timeline.${taskId}`;
}

/** An event that closes an iteration: its iteration count grew. */
export function closesIteration(event: TaskEvent, previous: TaskEvent | undefined): boolean {
  return event.iterations > (previous?.iterations ?? 0);
}

/** Tokens and seconds of each iteration, from the events that close them. */
export function iterationStats(events: readonly TaskEvent[]): { iteration: number; tokens: number; seconds: number }[] {
  const stats: { iteration: number; tokens: number; seconds: number }[] = [];
  events.forEach((event, i) => {
    const previous = events[i - 1];
    if (!previous || !closesIteration(event, previous)) return;
    const tokens = Number(event.task?.usage?.totalTokens ?? 0n) - Number(previous.task?.usage?.totalTokens ?? 0n);
    const seconds = (millis(event) - millis(previous)) / 1000;
    stats.push({ iteration: event.iterations, tokens: Math.max(0, tokens), seconds: Math.max(0, seconds) });
  });
  return stats;
}

function millis(event: TaskEvent): number {
  return event.time ? Number(event.time.seconds) * 1000 + event.time.nanos / 1e6 : 0;
}
