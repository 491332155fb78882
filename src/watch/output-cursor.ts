// Where one Watch stream with include_output is in the model's output, and
// where that output comes from: this process's OutputFeed when it runs the
// task, else the store's output chunks (written by the replica that runs it).
//
// The rules that keep output exactly-once and in place:
//   - output is read only for the iteration after the last event delivered
//     (state.iterations + 1), of that event's run (attempts of state.runs);
//   - before an event that closes that iteration, the rest of its output is
//     delivered, so the deltas of an iteration always add up to what it stored;
//   - `outputOffset` is a position in the iteration in flight at
//     `afterSequence`; if that iteration closed since, the rest of its output
//     still comes before its event (while it is kept: ROOKERY_OUTPUT_GRACE_MS after the run).
import { attemptOf, partLength, partsFrom, type OutputChunk } from "../domain/output.js";
import type { TaskEvent, TaskStatus } from "../domain/task.js";
import type { TaskStore } from "../store/task-store.js";
import type { OutputFeed } from "./output-feed.js";

/** What the stream knows of the task as of the last event it delivered. */
interface State {
  iterations: number;
  status: TaskStatus;
  runs: number;
}

export interface OutputCursorOptions {
  store: TaskStore;
  outputs: OutputFeed;
  taskId: string;
  afterSequence: number;
  /** The end_offset of the last delta the caller saw of the iteration in flight after afterSequence. */
  outputOffset: number;
}

export class OutputCursor {
  private state: State | undefined;
  private offset = 0;
  /** Until when this watcher last told the store it wants the output (see read()). */
  private notedUntil = 0;

  constructor(private readonly options: OutputCursorOptions) {}

  /** Reads the event at afterSequence: it tells which iteration was in flight. */
  async start(): Promise<void> {
    // On a shared store, say at once that output is wanted: the replica running the task
    // writes chunks only then (an iteration it flushed before this note is not sent).
    if (this.options.store.sharesOutput) await this.noteWatcher();
    if (this.options.afterSequence === 0) return;
    const [seen] = await this.options.store.events(this.options.taskId, this.options.afterSequence - 1, 1);
    if (!seen) return;
    this.state = stateAfter(seen);
    this.offset = this.options.outputOffset;
  }

  /** Calls `wake` (coalesced) when this process has new output of the task. */
  subscribe(wake: () => void): () => void {
    return this.options.outputs.subscribe(this.options.taskId, wake);
  }

  /** The rest of the iteration `event` closes, if it is the one in flight: to send before the event. */
  async before(event: TaskEvent): Promise<OutputChunk | undefined> {
    const { state } = this;
    const closes = state?.status === "running" && event.iterations > state.iterations && (event.task.runs ?? 0) === state.runs;
    return closes ? this.read(state) : undefined;
  }

  after(event: TaskEvent): void {
    this.state = stateAfter(event);
    this.offset = 0;
  }

  /** Output of the iteration in flight not sent yet, if any. */
  async next(): Promise<OutputChunk | undefined> {
    if (this.state?.status !== "running") return undefined;
    const chunk = await this.read(this.state);
    if (chunk) this.offset = chunk.endOffset;
    return chunk;
  }

  private async noteWatcher(): Promise<void> {
    this.notedUntil = Date.now() + WATCHER_NOTE_MS;
    await this.options.store.noteOutputWatcher(this.options.taskId, new Date(this.notedUntil));
  }

  private localLog(state: State) {
    return this.options.outputs.log(this.options.taskId, state.iterations + 1, attemptOf(state.runs, 0));
  }

  private async read(state: State): Promise<OutputChunk | undefined> {
    const local = this.localLog(state);
    if (local) return local.read(this.offset);
    if (!this.options.store.sharesOutput) return undefined;
    // The replica that runs the task writes chunks only while someone wants them.
    if (this.notedUntil - Date.now() < WATCHER_NOTE_MS / 2) await this.noteWatcher();
    const chunks = await this.options.store.readOutput(this.options.taskId, state.iterations + 1, attemptOf(state.runs, 0), this.offset);
    return joined(chunks, this.offset);
  }
}

/** How long a watcher's note that it wants output lasts; it is renewed at half of it. */
const WATCHER_NOTE_MS = 15_000;

function stateAfter(event: TaskEvent): State {
  return { iterations: event.iterations, status: event.status, runs: event.task.runs ?? 0 };
}

/**
 * The stored chunks as one, from `from`: those of the latest attempt only (an
 * earlier one was dropped when the call started over), cut at `from`.
 */
function joined(chunks: OutputChunk[], from: number): OutputChunk | undefined {
  const latest = chunks.at(-1)?.attempt;
  const mine = chunks.filter((c) => c.attempt === latest);
  const first = mine[0];
  if (!first) return undefined;
  const at = Math.max(from, first.offset);
  const placed = mine.flatMap((c) => {
    let offset = c.offset;
    return c.parts.map((part) => {
      const placedPart = { offset, part };
      offset += partLength(part);
      return placedPart;
    });
  });
  return { ...first, offset: at, endOffset: mine.at(-1)!.endOffset, parts: partsFrom(placed, at).map((p) => p.part) };
}
