// Reading a Watch with include_output in tests: events and output deltas, in order.
import { expect } from "vitest";
import type { OutputDelta, TaskEvent } from "../../gen/rookery/v1/task_pb.js";
import type { TaskClient } from "./harness.js";

export interface Watched {
  events: TaskEvent[];
  outputs: OutputDelta[];
  /** Both, in the order received. */
  order: ("event" | "output")[];
}

/** Reads a Watch with include_output until it ends, or until `stopWhen` says so. */
export async function watchOutput(
  client: TaskClient,
  id: string,
  from: { afterSequence?: bigint; outputOffset?: bigint } = {},
  stopWhen?: (w: Watched) => boolean,
): Promise<Watched> {
  const w: Watched = { events: [], outputs: [], order: [] };
  const controller = new AbortController();
  try {
    for await (const r of client.watch(
      { id, includeOutput: true, afterSequence: from.afterSequence ?? 0n, outputOffset: from.outputOffset ?? 0n },
      { signal: controller.signal },
    )) {
      expect(Number(Boolean(r.event)) + Number(Boolean(r.output)), "exactly one of event and output").toBe(1);
      if (r.event) w.events.push(r.event);
      if (r.output) w.outputs.push(r.output);
      w.order.push(r.event ? "event" : "output");
      if (stopWhen?.(w)) break;
    }
  } finally {
    controller.abort();
  }
  return w;
}

/** The assistant text an event stored for its iteration. */
export const storedText = (event: TaskEvent | undefined) => event?.messages.find((m) => m.role === "assistant")?.content;
export const joinedText = (outputs: OutputDelta[], iteration: number) =>
  outputs
    .filter((o) => o.iteration === iteration)
    .map((o) => o.text)
    .join("");

/** Asserts the deltas (of one iteration and attempt) are contiguous: the first starts at 0, each next where the one before ended. */
export function expectContiguous(outputs: OutputDelta[]): void {
  outputs.forEach((o, i) => expect(o.offset).toBe(i === 0 ? 0n : outputs[i - 1]!.endOffset));
}
