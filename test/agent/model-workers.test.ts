// Model calls on worker threads (ROOKERY_MODEL_WORKERS): the real SDK in a
// worker against the fake provider, with deltas, failures and aborts crossing
// back to the main thread as the in-process path gives them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Worker } from "node:worker_threads";
import { ModelWorkerPool } from "../../src/agent/model-worker-pool.js";
import { MalformedResponseError, ModelWorkerLostError, type ModelCallError } from "../../src/agent/model-errors.js";
import type { ChatCall } from "../../src/agent/chat-stream.js";
import type { ToWorker, WorkerCall } from "../../src/agent/model-worker-protocol.js";
import { createLogger } from "../../src/logger.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, startHarness } from "../support/harness.js";

const callOf = (prompt: string): ChatCall => ({
  provider: "openai",
  model: "fake-model",
  messages: [{ role: "user", content: prompt }],
  tools: [],
  headers: {},
});

/** `size` workers calling `fake`, with no retries of their own. */
const poolOn = (fake: FakeOpenAI, size: number) =>
  new ModelWorkerPool(
    size,
    {
      providers: { openai: { baseURL: fake.baseURL, apiKey: "k" } },
      sdk: { timeoutMs: 10_000, maxRetries: 0, maxReplyBytes: 1 << 20, maxReplyMs: 60_000 },
    },
    createLogger("silent"),
  );

describe("ModelWorkerPool", () => {
  let sawFirstDelta!: () => void;
  const firstDeltaArrived = new Promise<void>((resolve) => (sawFirstDelta = resolve));
  let fake: FakeOpenAI;
  let pool: ModelWorkerPool;
  beforeAll(async () => {
    fake = await FakeOpenAI.start();
    fake.respond((c) => {
      if (c.prompt === "stream") return { content: "one two three four", pieceSize: 4 };
      if (c.prompt === "hang") return { hang: true };
      if (c.prompt === "held") return { content: "first second", pieceSize: 6, pauseAt: 1, resume: firstDeltaArrived };
      if (c.prompt === "malformed") return { malformed: true };
      if (c.prompt === "refused") return { status: 400, error: "bad request" };
      // 2 MB in pieces of 64 KiB, and the last half never sent: past the 1 MiB limit, the provider waits.
      if (c.prompt === "too large")
        return { content: "x".repeat(2 << 20), pieceSize: 64 << 10, pauseAt: 24, resume: new Promise(() => {}) };
      return { content: "ok" };
    });
    pool = poolOn(fake, 2);
  });
  afterAll(async () => {
    await pool.close();
    await fake.close();
  });

  it("should stream a reply's deltas from the worker, in order, adding up to the reply", async () => {
    const deltas: string[] = [];
    const reply = await pool.call(callOf("stream"), new AbortController().signal, (d) => deltas.push(d.text));
    expect(reply.content).toBe("one two three four");
    // One delta per turn of the worker's event loop (delta-batch.ts), so as few as one here.
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.join("")).toBe(reply.content);
  });

  // The worker sends deltas in batches (one message per turn of its event loop, the last with
  // the reply): a batch must still leave while the reply streams, not wait for its end.
  it("should hand over a delta while the reply is still streaming (the provider waits for it)", async () => {
    const deltas: string[] = [];
    const reply = await pool.call(callOf("held"), new AbortController().signal, (d) => {
      deltas.push(d.text);
      sawFirstDelta();
    });
    expect(deltas[0]).toBe("first ");
    expect(deltas.join("")).toBe("first second");
    expect(reply.content).toBe("first second");
  });

  it("should give back failures as the same error classes (retried or not) as on the main thread", async () => {
    const malformed = pool.call(callOf("malformed"), new AbortController().signal, () => {});
    await expect(malformed).rejects.toBeInstanceOf(MalformedResponseError);
    await expect(malformed).rejects.toMatchObject({ retryable: true, code: "malformed_reply" });
    await expect(pool.call(callOf("refused"), new AbortController().signal, () => {})).rejects.toMatchObject({
      name: "ModelCallError",
      code: "provider_refused",
      retryable: false,
    });
  });

  it("should reject at once on abort and have the worker end the provider's request", async () => {
    const controller = new AbortController();
    const call = pool.call(callOf("hang"), controller.signal, () => {});
    await fake.waitForCall((c) => c.prompt === "hang");
    controller.abort(new Error("cancelled by the test"));
    await expect(call).rejects.toThrow("cancelled by the test");
    await fake.waitForAbort((c) => c.prompt === "hang");
  });

  it("should end the provider's request when it refuses a reply part way (past the size limit)", async () => {
    await expect(pool.call(callOf("too large"), new AbortController().signal, () => {})).rejects.toThrow(/passed 1048576 bytes/);
    await fake.waitForAbort((c) => c.prompt === "too large");
  });

  it("should fail only a dead worker's calls (retryably), replace it, and keep serving", async () => {
    const slots = (pool as unknown as { slots: { worker: Worker }[] }).slots;
    const doomed = slots[0]!.worker;
    // Both workers get one hanging call (the least busy one is picked).
    const calls = [0, 1].map(() => pool.call(callOf("hang"), new AbortController().signal, () => {}).catch((e: unknown) => e));
    await expect.poll(() => fake.callsFor("hang").length).toBeGreaterThanOrEqual(3);
    await doomed.terminate();
    const failed = (await Promise.race(calls)) as ModelCallError;
    expect(failed).toBeInstanceOf(ModelWorkerLostError);
    expect(failed.retryable).toBe(true);
    expect(failed.message).toMatch(/model worker .* stopped/);
    expect(slots[0]!.worker).not.toBe(doomed);
    for (let i = 0; i < 4; i++) expect((await pool.call(callOf("again"), new AbortController().signal, () => {})).content).toBe("ok");
  });
});

// A worker that stops as soon as it starts (no file descriptors left, a broken install)
// must not be replaced in a tight loop, each failure logged, for as long as the cause lasts.
describe("ModelWorkerPool, workers that stop as they start", () => {
  let fake: FakeOpenAI;
  let pool: ModelWorkerPool;
  type Slots = { worker: Worker }[];
  const slots = () => (pool as unknown as { slots: Slots }).slots;
  beforeAll(async () => {
    fake = await FakeOpenAI.start();
    fake.respond(() => ({ content: "ok" }));
    pool = poolOn(fake, 1);
  });
  afterAll(async () => {
    await pool.close();
    await fake.close();
  });

  it("should wait longer before each replacement (100 ms, doubling), and fail calls retryably while no worker runs", async () => {
    const seenAt: number[] = [];
    let last: Worker | undefined;
    for (let i = 0; i < 5; i++) {
      await expect.poll(() => slots()[0]?.worker !== undefined && slots()[0]!.worker !== last, { timeout: 20_000, interval: 5 }).toBe(true);
      seenAt.push(Date.now());
      last = slots()[0]!.worker;
      await last.terminate(); // it stops at once after it started
      if (i === 0) {
        expect(slots()).toHaveLength(0);
        const failed = await pool.call(callOf("none left"), new AbortController().signal, () => {}).catch((e: unknown) => e);
        expect(failed).toBeInstanceOf(ModelWorkerLostError);
        expect((failed as ModelCallError).retryable).toBe(true);
      }
    }
    // Each replacement came no sooner than its delay after the one before was stopped.
    const gaps = seenAt.slice(1).map((at, i) => at - seenAt[i]!);
    [100, 200, 400, 800].forEach((delay, i) => expect(gaps[i]).toBeGreaterThanOrEqual(delay));
    // The fifth serves calls.
    await expect.poll(() => slots().length, { timeout: 20_000 }).toBe(1);
    expect((await pool.call(callOf("served"), new AbortController().signal, () => {})).content).toBe("ok");
  });

  it("should replace a worker that ran for a while at once, in its place, and start the delays over", async () => {
    const worker = slots()[0]!.worker;
    const startedAt = (slots()[0] as unknown as { startedAt: number }).startedAt;
    await expect.poll(() => Date.now() - startedAt, { timeout: 20_000, interval: 50 }).toBeGreaterThan(1_000);
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    await worker.terminate();
    await exited;
    expect(slots()).toHaveLength(1);
    expect(slots()[0]!.worker).not.toBe(worker);
    expect((pool as unknown as { respawnDelayMs: number }).respawnDelayMs).toBe(0);
  });
});

// A run's calls only append to its conversation: the worker keeps it and is handed the new
// messages only, while the provider still gets the whole conversation on every call.
describe("ModelWorkerPool, conversations kept by the worker", () => {
  let fake: FakeOpenAI;
  let pool: ModelWorkerPool;
  /** What each worker was sent, in order. */
  const handedOver: WorkerCall[] = [];
  /** Conversations the workers were told to drop without a call. */
  const forgotten: number[] = [];
  const slots = () => (pool as unknown as { slots: { worker: Worker }[] }).slots;
  const watchSlots = () => {
    for (const { worker } of slots()) {
      if ((worker as unknown as { watched?: true }).watched) continue;
      const post = worker.postMessage.bind(worker);
      worker.postMessage = (message: ToWorker) => {
        if (message.type === "call") handedOver.push(message.call);
        if (message.type === "forget") forgotten.push(...message.forget);
        post(message);
      };
      (worker as unknown as { watched?: true }).watched = true;
    }
  };
  const message = (role: "user" | "assistant", content: string) => ({ role, content }) as ChatCall["messages"][number];
  const call = (messages: ChatCall["messages"]): ChatCall => ({ ...callOf(""), messages });
  const bodies = (prompt: string) => fake.callsFor(prompt).map((c) => c.body.messages.map((m) => m.content));

  beforeAll(async () => {
    fake = await FakeOpenAI.start();
    fake.respond((c) => (c.body.messages.at(-1)?.content === "refuse this" ? { status: 400, error: "no" } : { content: "ok" }));
    pool = poolOn(fake, 2);
    watchSlots();
  });
  afterAll(async () => {
    await pool.close();
    await fake.close();
  });

  /** Makes a call in conversation `key` and gives back what its worker was handed for it. */
  const callIn = async (key: string, messages: ChatCall["messages"]): Promise<WorkerCall> => {
    const before = handedOver.length;
    await pool.call(call([...messages]), new AbortController().signal, () => {}, key);
    return handedOver[before]!;
  };
  const shape = (c: WorkerCall) => ({ kept: c.kept, added: c.added.length });

  it("should hand a run's later calls only their new messages, and still send the provider the whole conversation", async () => {
    const messages = [message("user", "grows")];
    const first = await callIn("run-1", messages);
    messages.push(message("assistant", "a1"), message("user", "u2"));
    const second = await callIn("run-1", messages);
    messages.push(message("assistant", "a2"), message("user", "u3"));
    const third = await callIn("run-1", messages);

    expect([first, second, third].map(shape)).toEqual([
      { kept: 0, added: 1 },
      { kept: 1, added: 2 },
      { kept: 3, added: 2 },
    ]);
    expect(new Set([first, second, third].map((c) => c.conversation)).size).toBe(1);
    expect(bodies("grows")).toEqual([["grows"], ["grows", "a1", "u2"], ["grows", "a1", "u2", "a2", "u3"]]);
  });

  it("should hand over the whole conversation when its messages are not the ones the worker keeps", async () => {
    const first = [message("user", "rewritten"), message("assistant", "old")];
    await callIn("run-2", first);
    // The same key, but the second message is another object (with other content): nothing is reused.
    expect(shape(await callIn("run-2", [first[0]!, message("assistant", "new"), message("user", "next")]))).toEqual({ kept: 0, added: 3 });
    expect(bodies("rewritten").at(-1)).toEqual(["rewritten", "new", "next"]);
  });

  it("should tell the worker to drop an ended run's conversation, and hand it over whole if it calls again", async () => {
    const messages = [message("user", "ends")];
    const { conversation } = await callIn("run-3", messages);
    pool.endConversation("run-3");
    const next = await callIn("run-3", [...messages, message("assistant", "more")]);
    expect(next.forget).toContain(conversation);
    expect(shape(next)).toEqual({ kept: 0, added: 2 });
    expect(next.conversation).not.toBe(conversation);
  });

  it("should tell an idle worker to drop an ended run's conversation without waiting for a call", async () => {
    const { conversation } = await callIn("run-6", [message("user", "idle after")]);
    pool.endConversation("run-6");
    await expect.poll(() => forgotten, { timeout: 10_000 }).toContain(conversation);
  });

  it("should keep at most 1,024 conversations, dropping the least recently used", async () => {
    const oldest = [message("user", "least recent")];
    const { conversation } = await callIn("lru-0", oldest);
    for (let i = 1; i <= 1024; i++) await callIn(`lru-${i}`, [message("user", `lru ${i}`)]);
    expect(shape(await callIn("lru-0", [...oldest, message("assistant", "again")]))).toEqual({ kept: 0, added: 2 });
    expect([...handedOver.flatMap((c) => c.forget), ...forgotten]).toContain(conversation);
    for (let i = 0; i <= 1024; i++) pool.endConversation(`lru-${i}`);
  }, 60_000);

  it("should hand over the whole conversation after a failed call", async () => {
    const messages = [message("user", "fails"), message("assistant", "refuse this")];
    await expect(callIn("run-4", messages)).rejects.toMatchObject({ code: "provider_refused" });
    messages.push(message("user", "u2"));
    expect(shape(await callIn("run-4", messages))).toEqual({ kept: 0, added: 3 });
    expect(bodies("fails").at(-1)).toEqual(["fails", "refuse this", "u2"]);
  });

  it("should hand over the whole conversation to the worker that replaced a dead one", async () => {
    const messages = [message("user", "survives")];
    await callIn("run-5", messages);
    for (const { worker } of slots()) await worker.terminate();
    await expect.poll(() => slots().every(({ worker }) => !(worker as unknown as { watched?: true }).watched)).toBe(true);
    watchSlots();
    messages.push(message("assistant", "a1"));
    expect(shape(await callIn("run-5", messages))).toEqual({ kept: 0, added: 2 });
    expect(bodies("survives").at(-1)).toEqual(["survives", "a1"]);
  });
});

describe("a task with and without model workers", () => {
  it("should give the same result and the same events with ROOKERY_MODEL_WORKERS=0 and =2", async () => {
    const fake = await FakeOpenAI.start();
    fake.respond((c) =>
      c.turn === 0
        ? { content: "Let me compute.", toolCalls: [{ name: "calculator", arguments: '{"expression":"6*7"}' }], pieceSize: 3 }
        : { content: "It is 42.", pieceSize: 2 },
    );
    const runs = [];
    for (const workers of ["0", "2"]) {
      const h = await startHarness({ ROOKERY_MODEL_WORKERS: workers }, fake);
      const { task } = await h.connect.submit({ prompt: "what is 6*7" });
      const events = await collectEvents(h.connect, task!.id);
      runs.push({
        result: (await h.connect.get({ id: task!.id })).task!.result,
        events: events.map((e) => [e.status, e.messages.map((m) => m.content)]),
      });
      await h.close();
    }
    await fake.close();
    expect(runs[0]!.result).toBe("It is 42.");
    expect(runs[0]!.events.at(-1)![0]).toBe(TaskStatus.COMPLETED);
    expect(runs[1]).toEqual(runs[0]);
  });
});
