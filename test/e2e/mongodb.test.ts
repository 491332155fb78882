// Rookery on MongoDB (FerretDB here, or MONGODB_URI): the stored documents,
// and a database that goes away and comes back.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { HealthCheckResponse_ServingStatus as Serving, Health } from "../../gen/health/v1/health_pb.js";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { startFerretDB, type FerretDB } from "../support/ferretdb.js";
import { collectEvents, expectDense, startHarness, type Harness } from "../support/harness.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";

describeWithMongo("Rookery on MongoDB", () => {
  let h: Harness;
  let raw: MongoClient;
  const database = uniqueDatabase();
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_STORE: "mongodb", MONGODB_URI: mongodbUri(), ROOKERY_MONGODB_DB: database });
    raw = await new MongoClient(mongodbUri()).connect();
  });
  afterAll(async () => {
    await h.close();
    await raw.db(database).dropDatabase();
    await raw.close();
  });

  it("should complete a task and store it as a BackgroundTask-shaped document in `tasks`", async () => {
    h.fake.respond((c) => (c.turn === 0 ? { toolCalls: [{ name: "calculator", arguments: '{"expression":"2+2"}' }] } : { content: "4" }));
    const { task } = await h.grpc.submit({
      prompt: "add",
      systemPrompt: "math",
      labels: { "app.example.com/team": "core" },
      requestId: "r-1",
    });
    const events = await collectEvents(h.grpc, task!.id);
    expectDense(events);
    expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);

    const doc = await raw
      .db(database)
      .collection("tasks")
      .findOne({ _id: task!.id as never });
    expect(doc).toMatchObject({
      _id: task!.id,
      prompt: "add",
      system_prompt: "math",
      status: "completed",
      result: "4",
      iterations: 2,
      provider: "openai",
      model: "fake-model",
      request_id: "r-1",
      labels: [{ key: "app.example.com/team", value: "core" }],
      usage: { prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 },
    });
    expect(doc!.error).toBeUndefined();
    expect(doc!.created_at).toBeInstanceOf(Date);
    expect(doc!.updated_at).toBeInstanceOf(Date);
    expect(doc!.checkpoint).toMatchObject({
      iteration: 2,
      initial_prompt: "add",
      system_prompt: "math",
      provider: "openai",
      model: "fake-model",
    });
    expect(doc!.checkpoint.session_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(doc!.checkpoint.last_checkpoint_at).toBeInstanceOf(Date);
    // The conversation is kept apart, in the parts the document lists in order.
    expect(doc!.checkpoint.messages).toEqual([]);
    const parts = await Promise.all(
      (doc!.checkpoint_parts as { id: string }[]).map((p) =>
        raw
          .db(database)
          .collection("checkpoint_messages")
          .findOne({ _id: p.id as never }),
      ),
    );
    expect(parts.flatMap((p) => p!.messages).map((m: { role: string }) => m.role)).toEqual([
      "system",
      "user",
      "assistant",
      "tool",
      "assistant",
    ]);

    const stored = await raw.db(database).collection("task_events").find({ task_id: task!.id }).sort({ sequence: 1 }).toArray();
    expect(stored.map((e) => e.sequence)).toEqual(events.map((e) => Number(e.sequence)));
    const indexes = await raw.db(database).collection("task_events").indexes();
    expect(indexes.find((i) => i.name === "task_sequence_unique")).toMatchObject({ key: { task_id: 1, sequence: 1 }, unique: true });
  });

  it("should filter List by a label whose key has dots, and page through it", async () => {
    const { tasks } = await h.grpc.list({ labels: { "app.example.com/team": "core" } });
    expect(tasks.map((t) => t.prompt)).toEqual(["add"]);
    // Five more with a label of the same key, paged two at a time: every one once, newest first.
    const labels = { "app.example.com/team": "paged" };
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await h.grpc.submit({ prompt: `paged ${i}`, labels })).task!.id);
    const seen: string[] = [];
    let pages = 0;
    for (let pageToken = "", first = true; first || pageToken; first = false, pages++) {
      const page = await h.grpc.list({ labels, pageSize: 2, pageToken });
      seen.push(...page.tasks.map((t) => t.id));
      pageToken = page.nextPageToken;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...made].reverse());
  });
});

describeWithMongo("Rookery when MongoDB goes away", () => {
  let db: FerretDB;
  let h: Harness;
  beforeAll(async () => {
    const bin = inject("ferretdbBin");
    if (!bin) throw new Error("this suite starts its own FerretDB and needs the Go toolchain to build it");
    db = await startFerretDB(bin);
    h = await startHarness({
      ROOKERY_STORE: "mongodb",
      MONGODB_URI: db.uri,
      ROOKERY_MONGODB_DB: "outage",
      ROOKERY_MONGODB_TIMEOUT_MS: "500",
    });
    h.fake.respond(() => ({ content: "ok" }));
  });
  afterAll(async () => {
    await h?.close();
    await db?.destroy();
  });

  it(
    "should answer UNAVAILABLE and report NOT_SERVING while the database is down, and recover by itself",
    { timeout: 120_000 },
    async () => {
      const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${h.rookery.grpcPort}` }));
      const status = () => health.check({ service: "rookery.v1.TaskService" }).then((r) => r.status);
      const { task } = await h.grpc.submit({ prompt: "before the outage" });
      await collectEvents(h.grpc, task!.id);
      expect(await status()).toBe(Serving.SERVING);

      await db.stop();
      await expect.poll(status, { timeout: 10_000 }).toBe(Serving.NOT_SERVING);
      for (const call of [() => h.grpc.get({ id: task!.id }), () => h.grpc.submit({ prompt: "during" }), () => h.connect.list({})]) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.Unavailable);
        expect((error as ConnectError).rawMessage).toBe("the task store is unavailable; retry later");
      }

      // Generous: the driver finds the restarted server through its own monitor, and once, on
      // a loaded CI machine, health was still NOT_SERVING 15 s after the restart.
      await db.start();
      await expect.poll(status, { timeout: 40_000 }).toBe(Serving.SERVING);
      await expect
        .poll(
          () =>
            h.grpc.get({ id: task!.id }).then(
              (r) => r.task?.status,
              () => undefined,
            ),
          { timeout: 15_000 },
        )
        .toBe(TaskStatus.COMPLETED);
      const { task: after } = await h.grpc.submit({ prompt: "after the outage" });
      const events = await collectEvents(h.grpc, after!.id);
      expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
    },
  );
});
