// Races and retries a real client makes: many Submits at the quota at once,
// many Cancels of one task at once, and a retried Submit after the task moved on.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Code, ConnectError } from "@connectrpc/connect";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createApiKey } from "../../src/auth/api-keys.js";
import type { Hooks, PausePoint } from "../../src/hooks.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { collectEvents, startHarness, waitForStatus, type Harness, type TaskClient } from "../support/harness.js";

const keys = { quota: createApiKey("quota"), other: createApiKey("other") };

describe("concurrent and repeated calls", () => {
  let h: Harness;
  const as = (key: { key: string }): TaskClient =>
    createClient(
      TaskService,
      createGrpcTransport({
        baseUrl: `http://127.0.0.1:${h.rookery.grpcPort}`,
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${key.key}`), next(req))],
      }),
    );

  beforeAll(async () => {
    h = await startHarness({
      ROOKERY_API_KEYS: [keys.quota.entry, keys.other.entry].join(","),
      ROOKERY_MAX_ACTIVE_TASKS_PER_KEY: "10",
      ROOKERY_LEASE_MS: "600000",
    });
    h.fake.respond((c) => (c.prompt.startsWith("hang") ? { hang: true } : { content: "done" }));
  });
  afterAll(async () => {
    await h.close();
  });

  it("should accept exactly the per-key limit of 60 concurrent Submits and refuse the rest with RESOURCE_EXHAUSTED", async () => {
    const client = as(keys.quota);
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) => client.submit({ prompt: `hang ${i}`, requestId: `q-${i}` })),
    );
    const accepted = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.task!] : []));
    expect(accepted).toHaveLength(10);
    for (const r of results) if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.ResourceExhausted);

    // A retry of an accepted Submit at the quota returns its task (idempotency before the quota).
    const first = accepted[0]!;
    const retried = await client.submit({ prompt: first.prompt, requestId: first.requestId });
    expect(retried.task?.id).toBe(first.id);
    // Another key is not limited by this one's tasks.
    expect((await as(keys.other).submit({ prompt: "hang other" })).task?.status).toBe(TaskStatus.PENDING);
    for (const t of accepted) await client.cancel({ id: t.id });
  });

  it("should answer OK with the CANCELLED task to each of 20 concurrent Cancels of a RUNNING task", async () => {
    const client = as(keys.other);
    const { task } = await client.submit({ prompt: "hang to cancel" });
    await waitForStatus(client, task!.id, TaskStatus.RUNNING);
    const answers = await Promise.allSettled(Array.from({ length: 20 }, () => client.cancel({ id: task!.id, reason: "stop" })));
    const failed = answers.filter((a) => a.status === "rejected");
    expect(failed.map((f) => String(f.reason))).toEqual([]);
    for (const a of answers)
      expect((a as PromiseFulfilledResult<{ task?: { status: TaskStatus } }>).value.task?.status).toBe(TaskStatus.CANCELLED);
    const events = await collectEvents(client, task!.id);
    expect(events.filter((e) => e.status === TaskStatus.CANCELLED)).toHaveLength(1);
  });
});

describe("a retried Submit after the task moved on", () => {
  it("should return the same task after a Resume of the never-run task, whose follow-up then reaches the model after the prompt", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rookery-races-"));
    const path = join(dir, "rookery.db");
    // An API-only replica: the task is never claimed while it is cancelled and resumed.
    const api = await startHarness({ ROOKERY_SQLITE_PATH: path, ROOKERY_CONCURRENCY: "0" });
    const submit = { prompt: "never ran", requestId: "resume-then-retry" };
    const { task } = await api.grpc.submit(submit);
    await api.grpc.cancel({ id: task!.id });
    const resumed = await api.grpc.resume({ id: task!.id, message: "and one more thing" });
    expect(resumed.task?.prompt).toBe("never ran");
    expect((await api.grpc.submit(submit)).task?.id).toBe(task!.id);
    await api.close();

    const worker = await startHarness({ ROOKERY_SQLITE_PATH: path });
    try {
      // From the Resume on: a Watch from the start ends at the CANCELLED event it replays.
      const events = await collectEvents(worker.grpc, task!.id, resumed.task!.lastEventSequence);
      expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
      const call = worker.fake.callsFor("never ran").at(-1)!;
      expect(call.body.messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual(["never ran", "and one more thing"]);
      expect((await worker.grpc.submit(submit)).task?.id).toBe(task!.id);
    } finally {
      await worker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Hooks that hold the code the first time it reaches `point`, until `release()`. */
function holdOnce(point: PausePoint): { hooks: Hooks; reached: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let arrive!: () => void;
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  let times = 0;
  const hooks: Hooks = {
    reached: () => undefined,
    pause(at) {
      if (at !== point || times++ > 0) return Promise.resolve();
      arrive();
      return held;
    },
  };
  return { hooks, reached, release };
}

/** The task as a server started afresh on the SQLite file at `path` finds it. */
async function taskAfterRestart(path: string, id: string) {
  const after = await startHarness({ ROOKERY_SQLITE_PATH: path, ROOKERY_CONCURRENCY: "0" });
  try {
    return (await after.grpc.get({ id })).task;
  } finally {
    await after.close();
  }
}

describe("runs that begin while another run of the task, or the server, is ending", () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "rookery-races-"));
    path = join(dir, "rookery.db");
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("should keep track of a task resumed while its cancelled run was still ending, and hand it back at shutdown", async () => {
    // The first run to end is held at its very end until the task runs again.
    const end = holdOnce("supervisor.run_ended");
    const h = await startHarness({ ROOKERY_SQLITE_PATH: path, ROOKERY_LEASE_MS: "600000" }, undefined, end.hooks);
    let closed = false;
    try {
      h.fake.respond(() => ({ hang: true }));
      const { task } = await h.grpc.submit({ prompt: "resumed while ending" });
      await h.fake.waitForCall((c) => c.prompt === "resumed while ending");
      await h.grpc.cancel({ id: task!.id });
      await end.reached;
      await h.grpc.resume({ id: task!.id, message: "go on" });
      await expect.poll(() => h.fake.callsFor("resumed while ending").length).toBe(2);

      end.release();
      await new Promise((resolve) => setImmediate(resolve)); // the first run's end has run
      expect(h.rookery.supervisor.running).toBe(1);
      await h.close(); // hands the second run back
      closed = true;
      expect(await taskAfterRestart(path, task!.id)).toMatchObject({ status: TaskStatus.PENDING, runs: 2 });
    } finally {
      end.release();
      if (!closed) await h.close();
    }
  });

  it("should hand back a task whose claim was answered after the shutdown began, not leave it RUNNING", async () => {
    // The first claim that gets a task is held before its run starts, until the shutdown has begun.
    const claim = holdOnce("supervisor.claimed");
    const h = await startHarness({ ROOKERY_SQLITE_PATH: path, ROOKERY_LEASE_MS: "600000" }, undefined, claim.hooks);
    try {
      h.fake.respond(() => ({ hang: true }));
      const { task } = await h.grpc.submit({ prompt: "claimed as the server stops" });
      await claim.reached;
      const closing = h.close();
      await new Promise((resolve) => setImmediate(resolve)); // the shutdown has begun
      claim.release();
      await closing;
      expect(await taskAfterRestart(path, task!.id)).toMatchObject({ status: TaskStatus.PENDING, runs: 1 });
    } finally {
      claim.release();
    }
  });
});
