import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_FINISHED, OutputFeed } from "./output-feed.js";

const GRACE_MS = 30_000;

describe("OutputFeed.release", () => {
  let feed: OutputFeed;
  beforeEach(() => {
    vi.useFakeTimers();
    feed = new OutputFeed(50);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("should keep a finished run's output readable for the grace period, then drop it with no further release", () => {
    feed.append("t1", 1, 32, [{ text: "hello" }]);
    feed.release("t1", 1, GRACE_MS);
    vi.advanceTimersByTime(GRACE_MS - 1);
    expect(feed.read("t1", 1, 1, 2)?.parts).toEqual([{ text: "llo" }]);
    vi.advanceTimersByTime(1);
    expect(feed.read("t1", 1, 1, 0)).toBeUndefined();
  });

  it("should drop each finished run's output at its own expiry, oldest first", () => {
    feed.append("a", 1, 32, [{ text: "a" }]);
    feed.release("a", 1, GRACE_MS);
    vi.advanceTimersByTime(10_000);
    feed.append("b", 1, 32, [{ text: "b" }]);
    feed.release("b", 1, GRACE_MS);
    vi.advanceTimersByTime(GRACE_MS - 10_000);
    expect(feed.read("a", 1, 1, 0)).toBeUndefined();
    expect(feed.read("b", 1, 1, 0)?.parts).toEqual([{ text: "b" }]);
    vi.advanceTimersByTime(10_000);
    expect(feed.read("b", 1, 1, 0)).toBeUndefined();
  });

  it(`should keep at most ${MAX_FINISHED} finished runs' output, dropping the oldest first`, () => {
    for (let i = 0; i <= MAX_FINISHED; i++) {
      feed.append(`t${i}`, 1, 32, [{ text: `run ${i}` }]);
      feed.release(`t${i}`, 1, GRACE_MS);
    }
    expect(feed.read("t0", 1, 1, 0)).toBeUndefined();
    expect(feed.read("t1", 1, 1, 0)?.parts).toEqual([{ text: "run 1" }]);
    expect(feed.read(`t${MAX_FINISHED}`, 1, 1, 0)?.parts).toEqual([{ text: `run ${MAX_FINISHED}` }]);
  });

  it("should not drop the output of a newer run of the same task when the older run's time is up", () => {
    feed.append("t", 1, 32, [{ text: "first run" }]);
    feed.release("t", 1, GRACE_MS);
    feed.append("t", 2, 64, [{ text: "second run" }]);
    vi.advanceTimersByTime(GRACE_MS);
    expect(feed.read("t", 2, 64, 0)?.parts).toEqual([{ text: "second run" }]);
  });

  it("should leave a later run's output alone when an earlier run of the task ends after it began (resumed while that run was ending)", () => {
    feed.append("t", 3, 32, [{ text: "run 1, cancelled" }]);
    feed.append("t", 3, 64, [{ text: "run 2" }]);
    feed.release("t", 1, GRACE_MS);
    vi.advanceTimersByTime(GRACE_MS);
    expect(feed.read("t", 3, 64, 0)?.parts).toEqual([{ text: "run 2" }]);
    feed.release("t", 2, GRACE_MS);
    vi.advanceTimersByTime(GRACE_MS);
    expect(feed.read("t", 3, 64, 0)).toBeUndefined();
  });

  it("should not drop the output of a newer run that took up the same iteration (a run taken over in this process) when the older run's time is up", () => {
    feed.append("t", 3, 32, [{ text: "run 1, cut short" }]);
    feed.release("t", 1, GRACE_MS);
    feed.append("t", 3, 64, [{ text: "run 2" }]);
    vi.advanceTimersByTime(GRACE_MS);
    feed.append("t", 3, 64, [{ text: " goes on" }]);
    // A new run's output starts at 0, as it does on another replica (a new run follows an event).
    expect(feed.read("t", 3, 64, 0)).toMatchObject({ offset: 0, parts: [{ text: "run 2" }, { text: " goes on" }] });
  });
});
