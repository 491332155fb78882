import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { OutputFeed } from "./output-feed.js";

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

  it("should drop a run's output at once when no watcher asked for it here", () => {
    feed.append("t1", 1, 1, [{ text: "hello" }]);
    expect(feed.read("t1", 1, 1, 0)?.parts).toEqual([{ text: "hello" }]);
    feed.release("t1", GRACE_MS);
    expect(feed.read("t1", 1, 1, 0)).toBeUndefined();
  });

  it("should keep a watched run's output for the grace period after the watcher left, then drop it", () => {
    const unsubscribe = feed.subscribe("t2", () => {});
    feed.append("t2", 1, 1, [{ text: "hello" }]);
    unsubscribe();
    feed.release("t2", GRACE_MS);
    vi.advanceTimersByTime(GRACE_MS - 1);
    expect(feed.read("t2", 1, 1, 2)?.parts).toEqual([{ text: "llo" }]);
    vi.advanceTimersByTime(1);
    expect(feed.read("t2", 1, 1, 0)).toBeUndefined();
  });

  it("should keep the output of a run watched in an earlier iteration, or subscribed to after it began", () => {
    const early = feed.subscribe("t3", () => {});
    feed.append("t3", 1, 1, [{ text: "one" }]);
    early();
    feed.append("t3", 2, 1, [{ text: "two" }]);
    feed.release("t3", GRACE_MS);
    expect(feed.read("t3", 2, 1, 0)?.parts).toEqual([{ text: "two" }]);

    feed.append("t4", 1, 1, [{ text: "four" }]);
    feed.subscribe("t4", () => {})();
    feed.release("t4", GRACE_MS);
    expect(feed.read("t4", 1, 1, 0)?.parts).toEqual([{ text: "four" }]);
  });
});
