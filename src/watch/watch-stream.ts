// One Watch stream with the model's output (WatchRequest.include_output): the
// events of watch-events.ts, and between them the output of the iteration in
// flight, read from this process's OutputFeed when it runs the task, else from
// the store's output chunks (polled every pollMs).
//
// The rules that keep output exactly-once and in place:
//   - output is read only for the iteration after the last event delivered
//     (state.iterations + 1), of that event's run (attempts of state.runs);
//   - before an event that closes that iteration, the rest of its output is
//     delivered, so the deltas of an iteration always add up to what it stored;
//   - `outputOffset` is a position in the iteration in flight at
//     `afterSequence`; if that iteration closed since, the rest of its output
//     still comes before its event (while it is kept: 30 s after the run).
import { attemptOf, partLength, partsFrom, type OutputChunk } from "../domain/output.js";
import type { TaskEvent, TaskStatus } from "../domain/task.js";
import type { OutputFeed } from "./output-feed.js";
import { endsWatch, watchEvents, type WatchOptions } from "./watch-events.js";

export type WatchItem = { event: TaskEvent; output?: undefined } | { output: OutputChunk; event?: undefined };

export interface WatchStreamOptions extends WatchOptions {
  outputs: OutputFeed;
  /** The end_offset of the last delta the caller saw of the iteration in flight after afterSequence. */
  outputOffset: number;
}

/** What the stream knows of the task as of the last event it delivered. */
interface State {
  iterations: number;
  status: TaskStatus;
  runs: number;
}

/** Events read ahead of a slow reader before the reading pauses. */
const READ_AHEAD = 64;

export async function* watchWithOutput(o: WatchStreamOptions): AsyncGenerator<WatchItem> {
  const { store, outputs, taskId, signal, pollMs } = o;
  const queue: TaskEvent[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let room: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const stop = new AbortController();
  const events = (async () => {
    try {
      for await (const event of watchEvents({ ...o, signal: AbortSignal.any([signal, stop.signal]) })) {
        queue.push(event);
        poke();
        while (queue.length >= READ_AHEAD && !stop.signal.aborted) await new Promise<void>((resolve) => (room = resolve));
      }
    } catch (error) {
      if (!stop.signal.aborted) failure = error;
    } finally {
      ended = true;
      poke();
    }
  })();
  const unsubscribe = outputs.subscribe(taskId, poke);

  const read = async (state: State, from: number): Promise<OutputChunk | undefined> => {
    const iteration = state.iterations + 1;
    const minAttempt = attemptOf(state.runs, 0);
    const local = outputs.log(taskId, iteration, minAttempt);
    if (local) return local.read(from);
    return store.sharesOutput ? joined(await store.readOutput(taskId, iteration, minAttempt, from), from) : undefined;
  };

  let state: State | undefined;
  let offset = 0;
  try {
    // Where the caller was: the event at afterSequence tells which iteration was in flight.
    const [seen] = o.afterSequence > 0 ? await store.events(taskId, o.afterSequence - 1, 1) : [];
    if (seen) {
      state = { iterations: seen.iterations, status: seen.status, runs: seen.task.runs ?? 0 };
      offset = o.outputOffset;
    }
    for (;;) {
      const event = queue.shift();
      if (event) {
        room?.();
        if (state && closes(state, event)) {
          const rest = await read(state, offset);
          if (rest) yield { output: rest };
        }
        yield { event };
        state = { iterations: event.iterations, status: event.status, runs: event.task.runs ?? 0 };
        offset = 0;
        if (endsWatch(event)) return;
        continue;
      }
      if (ended) {
        if (failure !== undefined) throw failure;
        return;
      }
      if (state?.status === "running") {
        const chunk = await read(state, offset);
        if (chunk) {
          yield { output: chunk };
          offset = chunk.endOffset;
          continue;
        }
      }
      // Woken by an event or by new output here; when the output is in the store, also
      // after pollMs to look there again.
      const polling = state?.status === "running" && store.sharesOutput && !outputs.log(taskId, state.iterations + 1, attemptOf(state.runs, 0));
      await wakeOrTimeout((resolve) => (wake = resolve), polling ? pollMs : undefined, signal);
      signal.throwIfAborted();
    }
  } finally {
    unsubscribe();
    stop.abort();
    room?.();
    await events;
  }
}

/** Resolves when `arm`'s callback is called, after `ms` (if given), or when `signal` aborts; leaves no timer or listener behind. */
function wakeOrTimeout(arm: (resolve: () => void) => void, ms: number | undefined, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = ms === undefined ? undefined : setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    arm(done);
  });
}

/** True when `event` closes the iteration `state` was streaming (same run, one more iteration). */
function closes(state: State, event: TaskEvent): boolean {
  return state.status === "running" && event.iterations > state.iterations && (event.task.runs ?? 0) === state.runs;
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
      const p = { offset, part };
      offset += partLength(part);
      return p;
    });
  });
  return { ...first, offset: at, endOffset: mine.at(-1)!.endOffset, parts: partsFrom(placed, at).map((p) => p.part) };
}
