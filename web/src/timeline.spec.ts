// The task page's stream state: where it resumes, and that what it is given
// twice or out of place does not change what it shows.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { OutputDeltaSchema, TaskEventKind, TaskEventSchema, TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { WatchResponseSchema } from "../../gen/rookery/v1/task_service_pb.js";
import { iterationStats, Timeline } from "./timeline.js";

const event = (sequence: number, status: TaskStatus, iterations: number, seconds = sequence, totalTokens = 0) =>
  create(WatchResponseSchema, {
    event: create(TaskEventSchema, {
      taskId: "t",
      sequence: BigInt(sequence),
      status,
      iterations,
      kind: TaskEventKind.STATUS_CHANGED,
      time: { seconds: BigInt(seconds), nanos: 0 },
      task: { usage: { totalTokens: BigInt(totalTokens) } },
    }),
  });
const delta = (iteration: number, attempt: number, offset: number, text: string) =>
  create(WatchResponseSchema, {
    output: create(OutputDeltaSchema, { iteration, attempt, offset: BigInt(offset), endOffset: BigInt(offset + text.length), text }),
  });

class MemoryStorage implements Storage {
  private items = new Map<string, string>();
  get length() {
    return this.items.size;
  }
  clear = () => this.items.clear();
  getItem = (key: string) => this.items.get(key) ?? null;
  key = (index: number) => [...this.items.keys()][index] ?? null;
  removeItem = (key: string) => void this.items.delete(key);
  setItem = (key: string, value: string) => void this.items.set(key, value);
}

describe("Timeline", () => {
  it("should resume after the last sequence and output offset seen", () => {
    const t = new Timeline("t");
    expect(t.resumeRequest()).toMatchObject({ afterSequence: 0n, outputOffset: 0n, includeOutput: true });
    t.apply(event(1, TaskStatus.PENDING, 0));
    t.apply(event(2, TaskStatus.RUNNING, 0));
    t.apply(delta(1, 1, 0, "Hel"));
    t.apply(delta(1, 1, 3, "lo"));
    expect(t.resumeRequest()).toMatchObject({ afterSequence: 2n, outputOffset: 5n });
    expect(t.output?.text).toBe("Hello");
  });

  it("should ignore an event it has already and a delta that does not continue the output", () => {
    const t = new Timeline("t");
    t.apply(event(1, TaskStatus.PENDING, 0));
    expect(t.apply(event(1, TaskStatus.PENDING, 0))).toBe("ignored");
    t.apply(delta(1, 1, 0, "abc"));
    expect(t.apply(delta(1, 1, 1, "bc"))).toBe("ignored");
    expect(t.events).toHaveLength(1);
    expect(t.output?.text).toBe("abc");
  });

  it("should start the output over when the attempt changes and drop it when the iteration's event arrives", () => {
    const t = new Timeline("t");
    t.apply(event(1, TaskStatus.RUNNING, 0));
    t.apply(delta(1, 1, 0, "first try"));
    expect(t.apply(delta(1, 2, 0, "again"))).toBe("restart");
    expect(t.output).toMatchObject({ text: "again", attempt: 2, restarts: 1 });
    t.apply(event(2, TaskStatus.RUNNING, 1));
    expect(t.output).toBeUndefined();
  });

  it("should come back from storage as it was saved", () => {
    const storage = new MemoryStorage();
    const t = new Timeline("t");
    t.apply(event(1, TaskStatus.PENDING, 0));
    t.apply(event(2, TaskStatus.RUNNING, 0));
    t.apply(delta(1, 3, 0, "partial"));
    t.save(storage);
    const back = Timeline.restore("t", storage);
    expect(back.events.map((e) => e.sequence)).toEqual([1n, 2n]);
    expect(back.resumeRequest()).toEqual(t.resumeRequest());
    expect(back.output).toEqual(t.output);
    expect(Timeline.restore("other", storage).events).toEqual([]);
  });

  it("should give each iteration's tokens and seconds from the events that close them", () => {
    const events = [
      event(1, TaskStatus.PENDING, 0, 100, 0),
      event(2, TaskStatus.RUNNING, 0, 101, 0),
      event(3, TaskStatus.RUNNING, 1, 104, 30),
      event(4, TaskStatus.COMPLETED, 2, 110, 75),
    ].map((r) => r.event!);
    expect(iterationStats(events)).toEqual([
      { iteration: 1, tokens: 30, seconds: 3 },
      { iteration: 2, tokens: 45, seconds: 6 },
    ]);
  });
});
