import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { claim, checkpoint, complete, createTask, type Decide } from "../domain/transitions.js";
import type { TaskEvent } from "../domain/task.js";
import { PublishingStore } from "./publishing-store.js";
import { SqliteTaskStore } from "../store/sqlite/sqlite-task-store.js";
import { EventFeed } from "./event-feed.js";
import { watchStream, type WatchOptions } from "./watch-events.js";

/** Without an output cursor the stream holds events only (Watch without include_output). */
const watchEvents = (options: WatchOptions) => watchStream(options) as AsyncGenerator<TaskEvent>;

async function setup() {
  const feed = new EventFeed();
  const inner = new SqliteTaskStore({ path: ":memory:" });
  const store = new PublishingStore(inner, feed);
  const { task } = await store.create(
    createTask({ prompt: "p", systemPrompt: "", maxIterations: 50, labels: {}, tools: [], owner: "" }, new Date()),
  );
  const { task: running } = (await store.claimNext(claim("w", 60_000)))!;
  const token = running.lease!.token;
  const step = (i: number): Decide =>
    checkpoint(token, {
      iterations: i,
      usage: running.usage,
      checkpoint: {
        sessionId: "s",
        iteration: i,
        maxIterations: 50,
        messages: [],
        initialPrompt: "p",
        systemPrompt: "",
        provider: "o",
        model: "m",
        toolsEnabled: [],
        lastCheckpointAt: new Date(),
      },
      added: [],
    });
  const finish = complete(token, "done", { iterations: 9, usage: running.usage, checkpoint: undefined as never, added: [] });
  return { feed, inner, store, task: task, step, finish };
}

const sequences = async (it: AsyncIterable<{ sequence: number }>) => {
  const out: number[] = [];
  for await (const e of it) out.push(e.sequence);
  return out;
};

describe("watchStream() without an output cursor", () => {
  it("should see every event once when transitions are committed while the replay is being read", async () => {
    const { feed, inner, store, task, step, finish } = await setup();
    let reads = 0;
    // Commits land between the watcher's store reads: the classic replay/live gap.
    const racing = Object.assign(Object.create(inner) as SqliteTaskStore, {
      events: async (id: string, after: number, limit: number) => {
        const page = await inner.events(id, after, limit);
        reads += 1;
        if (reads <= 3) await store.commit(task.id, step(reads));
        if (reads === 4) await store.commit(task.id, finish);
        return page;
      },
    });
    const seen = await sequences(
      watchEvents({
        store: racing,
        feed,
        taskId: task.id,
        afterSequence: 0,
        signal: new AbortController().signal,
        pollMs: 10_000,
        batch: 2,
      }),
    );
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("should fall back to the store when its bounded inbox overflows, still without gaps", async () => {
    const { feed, store, task, step, finish } = await setup();
    const stream = watchEvents({
      store,
      feed,
      taskId: task.id,
      afterSequence: 0,
      signal: new AbortController().signal,
      pollMs: 10_000,
      inboxLimit: 3,
    });
    const first: IteratorResult<TaskEvent> = await stream.next(); // subscribed now; the reader then stalls
    for (let i = 1; i <= 20; i++) await store.commit(task.id, step(i));
    await store.commit(task.id, finish);
    expect(feed.watcherCount()).toBe(1);
    const rest = await sequences(stream);
    if (first.done) throw new Error("the stream ended before its first event");
    expect([first.value.sequence, ...rest]).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    expect(feed.watcherCount()).toBe(0);
  });

  it("should not read the store for live events that arrive next in line", async () => {
    const { feed, inner, store, task, step, finish } = await setup();
    let reads = 0;
    const counting = Object.assign(Object.create(inner) as SqliteTaskStore, {
      events: async (id: string, after: number, limit: number) => {
        reads += 1;
        return inner.events(id, after, limit);
      },
    });
    const stream = watchEvents({
      store: counting,
      feed,
      taskId: task.id,
      afterSequence: 2,
      signal: new AbortController().signal,
      pollMs: 10_000,
    });
    const seen = sequences(stream);
    await sleep(10); // the watcher has read the replay and waits
    for (let i = 1; i <= 10; i++) await store.commit(task.id, step(i));
    await store.commit(task.id, finish);
    expect(await seen).toEqual(Array.from({ length: 11 }, (_, i) => i + 3));
    expect(reads).toBe(1); // the replay only
  });

  it("should find events written past the feed (another replica) at its poll interval", async () => {
    const { feed, inner, task, step, finish } = await setup();
    const stream = watchEvents({ store: inner, feed, taskId: task.id, afterSequence: 2, signal: new AbortController().signal, pollMs: 20 });
    const seen = sequences(stream);
    await sleep(10);
    await inner.commit(task.id, step(1)); // straight to the store: no live event
    await inner.commit(task.id, finish);
    expect(await seen).toEqual([3, 4]);
  });

  it("should stop at its signal and unsubscribe", async () => {
    const { feed, store, task } = await setup();
    const controller = new AbortController();
    const stream = watchEvents({ store, feed, taskId: task.id, afterSequence: 2, signal: controller.signal, pollMs: 10_000 });
    const pending = stream.next();
    setTimeout(() => controller.abort(new Error("client left")), 20);
    await expect(pending).rejects.toThrow("client left");
    expect(feed.watcherCount()).toBe(0);
  });
});
