// Bounds on a task's spend and life, on both stores: a token budget, deadlines
// (also when they pass while no server is up), typed failure codes, and Delete.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import Database from "better-sqlite3";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskErrorCode, TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, startHarness, waitForStatus, type Harness } from "../support/harness.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";

const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });
const codeOf = (e: unknown) => ConnectError.from(e).code;

interface StoreUnderTest {
  env: () => Record<string, string>;
  /** Rows or documents of the task left anywhere in the store. */
  leftovers: (id: string) => Promise<number>;
  cleanup: () => Promise<void>;
}

function sqlite(): StoreUnderTest {
  const dir = mkdtempSync(join(tmpdir(), "rookery-bounds-"));
  const path = join(dir, "rookery.db");
  return {
    env: () => ({ ROOKERY_SQLITE_PATH: path }),
    leftovers: async (id) => {
      const db = new Database(path, { readonly: true });
      const count = (sql: string) => (db.prepare(sql).get(id) as { n: number }).n;
      const n =
        count("SELECT COUNT(*) AS n FROM tasks WHERE id = ?") +
        count("SELECT COUNT(*) AS n FROM task_events WHERE json_extract(doc, '$.task_id') = ?") +
        count("SELECT COUNT(*) AS n FROM output_chunks WHERE task_id = ?");
      db.close();
      return n;
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function mongo(): StoreUnderTest {
  const database = uniqueDatabase("rookery_bounds");
  return {
    env: () => ({ ROOKERY_STORE: "mongodb", MONGODB_URI: mongodbUri(), ROOKERY_MONGODB_DB: database }),
    leftovers: async (id) => {
      const raw = await new MongoClient(mongodbUri()).connect();
      const db = raw.db(database);
      let n = 0;
      for (const [collection, filter] of [
        ["tasks", { _id: id }],
        ["task_events", { task_id: id }],
        ["task_queue", { _id: id }],
        ["request_ids", { task_id: id }],
        ["output_chunks", { task_id: id }],
      ] as const) {
        n += await db.collection(collection).countDocuments(filter as never);
      }
      await raw.close();
      return n;
    },
    cleanup: async () => {
      const raw = await new MongoClient(mongodbUri()).connect();
      await raw.db(database).dropDatabase();
      await raw.close();
    },
  };
}

function describeBounds(name: string, make: () => StoreUnderTest, describeIt: (name: string, body: () => void) => void): void {
  describeIt(`bounds on ${name}`, () => {
    let store: StoreUnderTest;
    let fake: FakeOpenAI;
    let h: Harness;
    const start = (env: Record<string, string> = {}) =>
      startHarness({ ...store.env(), ROOKERY_SWEEP_MS: "100", ROOKERY_LEASE_MS: "60000", ...env }, fake);
    let resumed = false;

    beforeAll(async () => {
      store = make();
      fake = await FakeOpenAI.start();
      fake.respond((c) => {
        if (c.prompt === "spend") return resumed ? { content: "done at last" } : { toolCalls: [{ name: "current_time", arguments: "{}" }] };
        if (c.prompt.startsWith("hang")) return { hang: true };
        return { content: "?" };
      });
      h = await start();
    }, 60_000);
    afterAll(async () => {
      await h.close();
      await fake.close();
      await store.cleanup();
    });

    it("should stop a task that would use 10x its token budget after the iteration that crosses it, and Resume it with more tokens", async () => {
      // Each call uses 15 tokens; the model would go on calling tools for ever.
      const { task } = await h.grpc.submit({ prompt: "spend", maxTotalTokens: 30n, maxIterations: 100 });
      await collectEvents(h.grpc, task!.id);
      const failed = (await h.grpc.get({ id: task!.id })).task!;
      expect(failed).toMatchObject({ status: TaskStatus.FAILED, errorCode: TaskErrorCode.TOKEN_BUDGET, iterations: 2 });
      expect(failed.usage?.totalTokens).toBe(30n);
      expect(failed.error).toMatch(/used 30 of its 30 tokens.*additional_tokens/);
      expect(fake.callsFor("spend")).toHaveLength(2);

      await expect(h.grpc.resume({ id: task!.id })).rejects.toThrow(/additional_tokens/);
      resumed = true;
      const { task: again } = await h.grpc.resume({ id: task!.id, additionalTokens: 100n });
      await collectEvents(h.grpc, task!.id, again!.lastEventSequence);
      expect((await h.grpc.get({ id: task!.id })).task).toMatchObject({
        status: TaskStatus.COMPLETED,
        result: "done at last",
        maxTotalTokens: 130n,
      });
    });

    it("should abort a model call that hangs past the task's timeout at the deadline and FAIL it with TIMEOUT", async () => {
      const { task } = await h.grpc.submit({ prompt: "hang past the deadline", timeout: seconds(2) });
      const call = await fake.waitForCall((c) => c.prompt === "hang past the deadline");
      await fake.waitForAbort((c) => c === call);
      const events = await collectEvents(h.grpc, task!.id);
      const failed = events.at(-1)!;
      expect(failed.task).toMatchObject({ status: TaskStatus.FAILED, errorCode: TaskErrorCode.TIMEOUT });
      const late = timestampMs(failed.time!) - timestampMs(task!.deadline!);
      expect(Math.abs(late)).toBeLessThanOrEqual(1_000);
    });

    it("should FAIL a task left PENDING past its queue timeout with QUEUE_TIMEOUT, also when the deadline passes while no server is up", async () => {
      // A store of its own, where no worker runs: the other tests' server would claim the task.
      const alone = make();
      const env = { ...alone.env(), ROOKERY_CONCURRENCY: "0" };
      const api = await start(env);
      const { task: live } = await api.grpc.submit({ prompt: "queued", queueTimeout: seconds(1) });
      const events = await collectEvents(api.grpc, live!.id);
      expect(events.at(-1)?.task).toMatchObject({ status: TaskStatus.FAILED, errorCode: TaskErrorCode.QUEUE_TIMEOUT });

      const { task: offline } = await api.grpc.submit({ prompt: "queued while down", queueTimeout: seconds(1) });
      await api.close();
      await sleep(1_500); // the deadline passes with no server up
      // Now with workers: whichever comes first, a claim or the sweep, the task FAILS, never runs.
      const again = await start(alone.env());
      try {
        const after = await collectEvents(again.grpc, offline!.id);
        expect(after.at(-1)?.task).toMatchObject({ status: TaskStatus.FAILED, errorCode: TaskErrorCode.QUEUE_TIMEOUT });
        expect(fake.callsFor("queued while down")).toHaveLength(0);
      } finally {
        await again.close();
        await alone.cleanup();
      }
    });

    it("should Delete a running task: its model call is aborted, its Watch ends NOT_FOUND, no event follows, nothing of it is left", async () => {
      const { task } = await h.grpc.submit({ prompt: "hang until deleted", requestId: "delete-me" });
      const id = task!.id;
      await waitForStatus(h.grpc, id, TaskStatus.RUNNING);
      const call = await fake.waitForCall((c) => c.prompt === "hang until deleted");
      const watching = collectEvents(h.connect, id).then(
        () => "ended OK",
        (e: unknown) => Code[codeOf(e)],
      );
      await expect.poll(() => h.rookery.watchers()).toBe(1);

      await h.grpc.delete({ id });
      await fake.waitForAbort((c) => c === call);
      expect(await watching).toBe("NotFound");
      await sleep(300); // a run that kept going would write now
      expect(await store.leftovers(id)).toBe(0);
      for (const call of [
        () => h.grpc.get({ id }),
        () => h.grpc.cancel({ id }),
        () => h.grpc.resume({ id, message: "m" }),
        () => h.grpc.delete({ id }),
        () => collectEvents(h.grpc, id),
      ]) {
        await expect(
          call().then(
            () => "OK",
            (e: unknown) => Code[codeOf(e)],
          ),
        ).resolves.toBe("NotFound");
      }
      expect((await h.grpc.list({ pageSize: 1000 })).tasks.map((t) => t.id)).not.toContain(id);
      // The request_id is free again: a new Submit with it makes a new task.
      expect((await h.grpc.submit({ prompt: "after delete", requestId: "delete-me" })).task?.id).not.toBe(id);
    });
  });
}

describeBounds("SQLite", sqlite, describe);
describeBounds("MongoDB", mongo, describeWithMongo);
