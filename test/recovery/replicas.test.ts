// Several server processes on one MongoDB database: claims are exclusive,
// Watch works through any replica, and a dead replica's tasks are taken over
// from their checkpoints once its leases expire.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { MongoClient } from "mongodb";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { startChildServer, type ChildServer } from "../support/child-server.js";
import { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, expectDense, waitForStatus } from "../support/harness.js";
import { expectContiguous, joinedText, storedText, watchOutput } from "../support/watch-output.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";

describeWithMongo("replicas sharing one MongoDB", () => {
  let fake: FakeOpenAI;
  let children: ChildServer[] = [];
  let database: string;
  const replica = async (apiKey: string, env: Record<string, string> = {}) => {
    const child = await startChildServer({
      ROOKERY_STORE: "mongodb",
      MONGODB_URI: mongodbUri(),
      ROOKERY_MONGODB_DB: database,
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_API_KEY: apiKey,
      ROOKERY_POLL_MS: "100",
      ROOKERY_WATCH_POLL_MS: "250",
      // FerretDB serializes writes (~4 ms each here): a lease must outlast a burst of them.
      ROOKERY_LEASE_MS: "3000",
      ...env,
    });
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    fake = await FakeOpenAI.start();
  });
  afterEach(async () => {
    for (const c of children) c.process.kill("SIGKILL");
    children = [];
    const raw = await new MongoClient(mongodbUri()).connect();
    await raw.db(database).dropDatabase();
    await raw.close();
  });
  afterAll(async () => {
    await fake.close();
  });

  it("should abort the in-flight model call on the replica running a task soon after another replica records its Cancel, and write nothing after", async () => {
    database = uniqueDatabase("rookery_cancel");
    fake.respond((c) => (c.prompt === "cancel me elsewhere" ? { hang: true } : { content: "?" }));
    // A long lease: the holder's renewals (every 10 s) cannot be what notices the cancel.
    const runner = await replica("key-a", { ROOKERY_LEASE_MS: "30000" });
    const api = await replica("key-b", { ROOKERY_LEASE_MS: "30000", ROOKERY_CONCURRENCY: "0" });
    const { task } = await api.client.submit({ prompt: "cancel me elsewhere" });
    const call = await fake.waitForCall((c) => c.prompt === "cancel me elsewhere");
    expect(call.apiKey).toBe("key-a");

    const cancelledAt = Date.now();
    const { task: cancelled } = await api.client.cancel({ id: task!.id, reason: "changed my mind" });
    await fake.waitForAbort((c) => c === call);
    // Within the Watch poll interval (250 ms) plus a loaded FerretDB's reads; far below the 10 s renewal.
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);

    const events = await collectEvents(runner.client, task!.id);
    expectDense(events);
    expect(events.at(-1)).toMatchObject({ status: TaskStatus.CANCELLED, sequence: cancelled!.lastEventSequence });
    // Nothing is written for the run after the CANCELLED event.
    await sleep(1_000);
    expect((await api.client.get({ id: task!.id })).task).toMatchObject({
      status: TaskStatus.CANCELLED,
      lastEventSequence: cancelled!.lastEventSequence,
    });
    expect(runner.logs.join("\n")).toMatch(/cancelled by caller \(seen in the store\)/);
  });

  it("should stream the output to a watcher on the replica that does not run the task, through the store, exactly once", async () => {
    database = uniqueDatabase("rookery_output");
    const answer = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");
    fake.respond((c) =>
      c.prompt !== "stream elsewhere"
        ? { content: "?" }
        : c.turn === 0
          ? { content: "Computing.", toolCalls: [{ name: "calculator", arguments: '{"expression":"6*7"}' }] }
          : { content: answer, pieceSize: 8, paceMs: 20 },
    );
    await replica("key-a", { ROOKERY_LEASE_MS: "30000" }); // runs the task
    const api = await replica("key-b", { ROOKERY_LEASE_MS: "30000", ROOKERY_CONCURRENCY: "0" });
    const { task } = await api.client.submit({ prompt: "stream elsewhere" });
    const w = await watchOutput(api.client, task!.id);
    expectDense(w.events);
    expect(w.events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
    expect(fake.callsFor("stream elsewhere").every((c) => c.apiKey === "key-a")).toBe(true);
    // Iteration 2 streamed over ~1.5 s: the watcher saw it in several pieces, polled from the store.
    const second = w.outputs.filter((o) => o.iteration === 2);
    expect(second.length).toBeGreaterThan(1);
    expect(joinedText(w.outputs, 2)).toBe(answer);
    expect(storedText(w.events.at(-1))).toBe(answer);
    expectContiguous(second);
    expect(joinedText(w.outputs, 1)).toBe("Computing.");
  });

  it("should keep streaming a resumed run's output to a watcher on another replica when the previous run's output grace runs out mid-iteration", async () => {
    database = uniqueDatabase("rookery_grace");
    const answer = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    fake.respond((c) =>
      c.prompt !== "resumed at once"
        ? { content: "?" }
        : c.turn === 0
          ? { content: "Asking.", toolCalls: [{ id: "call_w", name: "get_weather", arguments: '{"city":"Oslo"}' }] }
          : { content: answer, pieceSize: 8, paceMs: 20, pauseAt: 10, resume: released },
    );
    const GRACE_MS = 8_000;
    await replica("key-a", { ROOKERY_LEASE_MS: "30000", ROOKERY_OUTPUT_GRACE_MS: String(GRACE_MS) }); // runs the task
    const api = await replica("key-b", { ROOKERY_LEASE_MS: "30000", ROOKERY_CONCURRENCY: "0" });
    const weather = { name: "get_weather", description: "weather in a city", parameters: { type: "object", properties: {} } };
    const { task } = await api.client.submit({ prompt: "resumed at once", tools: [weather] });
    const watched = watchOutput(api.client, task!.id);
    watched.catch(() => undefined); // awaited below; the replicas go if the test fails first
    await waitForStatus(api.client, task!.id, TaskStatus.INPUT_REQUIRED);
    // The first run has ended; its output goes GRACE_MS later. The caller answers at once.
    await api.client.resume({ id: task!.id, toolResults: [{ toolCallId: "call_w", content: "sunny" }] });

    const raw = await new MongoClient(mongodbUri()).connect();
    try {
      const chunks = raw.db(database).collection<{ task_id: string; iteration: number }>("output_chunks");
      const stored = (iteration: number) => chunks.countDocuments({ task_id: task!.id, iteration });
      // The second run streams iteration 2 (paused part-way) through the store to the watcher...
      await expect.poll(() => stored(2), { timeout: 20_000 }).toBeGreaterThan(0);
      expect(await stored(1)).toBeGreaterThan(0); // ...before the first run's grace is up,
      await expect.poll(() => stored(1), { timeout: GRACE_MS + 20_000 }).toBe(0); // which then removes the first run's output
      expect(await stored(2)).toBeGreaterThan(0); // and only that.
    } finally {
      release();
      await raw.close();
    }

    const w = await watched;
    expect(w.events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
    const second = w.outputs.filter((o) => o.iteration === 2);
    expectContiguous(second);
    expect(joinedText(w.outputs, 2)).toBe(answer);
    expect(storedText(w.events.at(-1))).toBe(answer);
  });

  it(
    "should complete each of 200 tasks exactly once across two replicas, with every transition visible through the other",
    { timeout: 240_000 },
    async () => {
      database = uniqueDatabase("rookery_race");
      fake.respond((c) =>
        c.turn === 0 ? { toolCalls: [{ name: "calculator", arguments: '{"expression":"1+1"}' }] } : { content: `done: ${c.prompt}` },
      );
      // The default lease (30 s), far longer than any stall of a loaded FerretDB: a lapsed
      // lease re-runs an iteration (at-least-once), which this test must not see. With 10 s,
      // one CI run in seven saw a task's second iteration run on both replicas.
      const [a, b] = [await replica("key-a", { ROOKERY_LEASE_MS: "30000" }), await replica("key-b", { ROOKERY_LEASE_MS: "30000" })];
      const prompts = Array.from({ length: 200 }, (_, i) => `race ${i}`);
      const other = (i: number) => (i % 2 === 0 ? b : a);
      const submitted = await Promise.all(
        prompts.map(async (prompt, i) => ({ prompt, i, id: (await (i % 2 === 0 ? a : b).client.submit({ prompt })).task!.id })),
      );
      // Live: every 10th task watched from submission through the replica that did not take the Submit.
      const live = await Promise.all(submitted.filter(({ i }) => i % 10 === 0).map(({ id, i }) => collectEvents(other(i).client, id)));
      for (const events of live) {
        expectDense(events);
        expect(events[0]?.status).toBe(TaskStatus.PENDING);
        expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
      }
      // Then every task's whole history, replayed through the other replica.
      for (const { prompt, id, i } of submitted) {
        const events = await collectEvents(other(i).client, id);
        expectDense(events);
        expect(
          events.filter((e) => e.status === TaskStatus.COMPLETED),
          id,
        ).toHaveLength(1);
        expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
        // Each iteration reached the model once: no task ran twice.
        expect(
          fake.callsFor(prompt).map((c) => c.turn),
          prompt,
        ).toEqual([0, 1]);
      }
      const byReplica = new Set(fake.calls.filter((c) => c.prompt.startsWith("race ")).map((c) => c.apiKey));
      expect(byReplica).toEqual(new Set(["key-a", "key-b"]));
    },
  );

  it("should finish a SIGKILLed replica's tasks on the other replica, from their checkpoints", { timeout: 120_000 }, async () => {
    database = uniqueDatabase("rookery_takeover");
    // Replica A's second model call never answers: A is killed while its tasks wait on it.
    fake.respond((c) => {
      if (!c.prompt.startsWith("takeover")) return { content: "?" };
      if (c.turn === 1 && c.apiKey === "key-a") return { hang: true };
      return c.turn === 0 ? { toolCalls: [{ name: "current_time", arguments: "{}" }] } : { content: "finished" };
    });
    const a = await replica("key-a");
    // B's lease must never lapse here (it would re-run an iteration); only A's has to expire.
    const b = await replica("key-b", { ROOKERY_CONCURRENCY: "2", ROOKERY_LEASE_MS: "10000" });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await a.client.submit({ prompt: `takeover ${i}` })).task!.id);

    // Wait until every task is either done (on B) or stuck in A's second model call.
    await expect
      .poll(
        async () => {
          const stuck = fake.calls.filter((c) => c.apiKey === "key-a" && c.turn === 1 && c.prompt.startsWith("takeover")).length;
          const done = (await b.client.list({ statuses: [TaskStatus.COMPLETED], pageSize: 100 })).tasks.length;
          return stuck + done;
        },
        { timeout: 30_000 },
      )
      .toBe(12);
    const stuckOnA = fake.calls.filter((c) => c.apiKey === "key-a" && c.turn === 1 && c.prompt.startsWith("takeover")).map((c) => c.prompt);
    expect(stuckOnA.length).toBeGreaterThan(0);
    a.process.kill("SIGKILL");
    await a.exited;

    for (const id of ids) {
      const events = await collectEvents(b.client, id);
      expectDense(events);
      expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
    }
    for (const prompt of stuckOnA) {
      const turns = fake.callsFor(prompt).map((c) => `${c.apiKey}:${c.turn}`);
      // Iteration 1 (turn 0) ran once on A; B continued from that checkpoint with turn 1.
      expect(turns).toEqual(["key-a:0", "key-a:1", "key-b:1"]);
    }
  });

  it(
    "should leave no conversation part behind that no state names when a replica dies between writing one and committing its event",
    { timeout: 120_000 },
    async () => {
      database = uniqueDatabase("rookery_leftover");
      fake.respond((c) =>
        c.turn === 0 ? { toolCalls: [{ name: "current_time", arguments: "{}" }] } : { content: "finished after the takeover" },
      );
      const a = await replica("key-a", { ROOKERY_TEST_CRASH_AT: "store.after_conversation_part" });
      const { task } = await a.client.submit({ prompt: "die mid-commit" });
      expect(await a.exited).toBe("SIGKILL"); // at the first checkpoint, its part written, its event not
      const b = await replica("key-b");

      const events = await collectEvents(b.client, task!.id);
      expectDense(events);
      expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
      const raw = await new MongoClient(mongodbUri()).connect();
      try {
        const db = raw.db(database);
        const view = await db.collection<{ _id: string; checkpoint_parts?: { id: string }[] }>("tasks").findOne({ _id: task!.id });
        const named = (view?.checkpoint_parts ?? []).map((p) => p.id).sort();
        expect(named.length).toBeGreaterThan(0);
        const stored = await db.collection<{ _id: string }>("checkpoint_messages").find({ task_id: task!.id }).toArray();
        expect(stored.map((p) => p._id).sort()).toEqual(named);
      } finally {
        await raw.close();
      }
      expect((await b.client.get({ id: task!.id })).task?.result).toBe("finished after the takeover");
    },
  );
});
