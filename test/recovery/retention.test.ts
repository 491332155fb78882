// Retention: terminal tasks are purged after ROOKERY_RETENTION in small batches
// while new ones arrive; the store stays the same size, nothing younger is
// touched, no call fails; and a crash in the middle of a purge leaves no task
// half-deleted, on either store.
import { statSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { startChildServer, type ChildServer } from "../support/child-server.js";
import { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, startHarness } from "../support/harness.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";

const TASKS = 10_000;
const WAVE = 250;

describe("retention on SQLite under steady load", () => {
  const dir = mkdtempSync(join(tmpdir(), "rookery-retention-"));
  const path = join(dir, "rookery.db");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    `should keep row counts and the file size flat while ${TASKS} tasks finish under a 1 s retention, touching nothing younger`,
    { timeout: 300_000 },
    async () => {
      const h = await startHarness({ ROOKERY_SQLITE_PATH: path, ROOKERY_RETENTION: "1s", ROOKERY_SWEEP_MS: "100" });
      h.fake.respond(() => ({ content: "done" }));
      const db = new Database(path, { readonly: true });
      const rows = () =>
        (db.prepare("SELECT (SELECT COUNT(*) FROM tasks) + (SELECT COUNT(*) FROM task_events) AS n").get() as { n: number }).n;
      const bytes = () => statSync(path).size + statSync(`${path}-wal`, { throwIfNoEntry: false })!.size;
      const samples: { rows: number; bytes: number }[] = [];
      const failures: unknown[] = [];
      const keep: string[] = [];
      try {
        for (let submitted = 0; submitted < TASKS; submitted += WAVE) {
          const wave = await Promise.all(
            Array.from({ length: WAVE }, (_, i) =>
              h.grpc.submit({ prompt: `wave task ${submitted + i}` }).then(
                (r) => r.task!.id,
                (e: unknown) => void failures.push(e),
              ),
            ),
          );
          // One task a wave asks to be kept an hour: retention must not touch it.
          keep.push((await h.grpc.submit({ prompt: "keep me", retention: { seconds: 3600n, nanos: 0 } })).task!.id);
          // Reads of the wave while the sweeper purges older ones.
          await Promise.all(wave.slice(0, 20).flatMap((id) => (id ? [h.grpc.get({ id }).catch((e: unknown) => failures.push(e))] : [])));
          await sleep(400);
          samples.push({ rows: rows(), bytes: bytes() });
        }
        expect(failures).toEqual([]);
        // Steady state from the first quarter on: neither rows nor file grow with the tasks done.
        const quarter = Math.floor(samples.length / 4);
        const early = samples.slice(quarter, 2 * quarter);
        const late = samples.slice(3 * quarter);
        const max = (xs: number[]) => Math.max(...xs);
        expect(max(late.map((s) => s.rows))).toBeLessThanOrEqual(1.5 * max(early.map((s) => s.rows)));
        expect(max(late.map((s) => s.rows))).toBeLessThan(TASKS / 2);
        expect(max(late.map((s) => s.bytes))).toBeLessThanOrEqual(1.5 * max(early.map((s) => s.bytes)));
        for (const id of keep) expect((await h.grpc.get({ id })).task?.status).toBe(TaskStatus.COMPLETED);
      } finally {
        db.close();
        await h.close();
      }
    },
  );
});

describe("retention behind by more than one batch", () => {
  const dir = mkdtempSync(join(tmpdir(), "rookery-retention-backlog-"));
  const path = join(dir, "rookery.db");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const count = (sql: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return (db.prepare(sql).get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  // The sweeper purges 100 tasks a batch. A server that finishes more tasks per
  // ROOKERY_SWEEP_MS than that must still keep its store flat: a sweep works a backlog
  // off, batch after batch, rather than one batch a period.
  it("should purge all of a backlog of three batches in the one sweep a server makes at start", { timeout: 120_000 }, async () => {
    const fake = await FakeOpenAI.start();
    fake.respond(() => ({ content: "done" }));
    // No sweep but the one at start (the next is ten minutes later).
    const env = { ROOKERY_SQLITE_PATH: path, ROOKERY_RETENTION: "1s", ROOKERY_SWEEP_MS: "600000" };
    try {
      const first = await startHarness(env, fake);
      try {
        await Promise.all(Array.from({ length: 300 }, (_, i) => first.grpc.submit({ prompt: `backlog task ${i}` })));
        await expect.poll(() => count("SELECT COUNT(*) AS n FROM tasks WHERE purge_at IS NOT NULL"), { timeout: 60_000 }).toBe(300);
      } finally {
        await first.close();
      }
      const lastDue = count("SELECT MAX(purge_at) AS n FROM tasks");
      await expect.poll(() => Date.now(), { timeout: 10_000 }).toBeGreaterThan(lastDue);

      const second = await startHarness(env, fake);
      try {
        await expect.poll(() => count("SELECT COUNT(*) AS n FROM tasks"), { timeout: 30_000, interval: 200 }).toBe(0);
        expect(count("SELECT COUNT(*) AS n FROM task_events")).toBe(0);
      } finally {
        await second.close();
      }
    } finally {
      await fake.close();
    }
  });
});

/** One finished task, then a server that crashes in the middle of purging it; then one that finishes the purge. */
function describeCrashDuringPurge(
  name: string,
  storeEnv: () => Record<string, string>,
  check: {
    afterCrash: (id: string) => Promise<"all" | "none" | "tombstoned" | "partial">;
    leftovers: (id: string) => Promise<number>;
  },
  describeIt: (name: string, body: () => void) => void,
): void {
  describeIt(`a crash during a purge on ${name}`, () => {
    let fake: FakeOpenAI;
    const children: ChildServer[] = [];
    beforeAll(async () => {
      fake = await FakeOpenAI.start();
      fake.respond(() => ({ content: "done" }));
    });
    afterAll(async () => {
      for (const c of children) c.process.kill("SIGKILL");
      await fake.close();
    });
    const start = async (env: Record<string, string>) => {
      const child = await startChildServer({
        ...storeEnv(),
        OPENAI_BASE_URL: fake.baseURL,
        OPENAI_API_KEY: "k",
        ROOKERY_SWEEP_MS: "100",
        ROOKERY_POLL_MS: "50",
        ...env,
      });
      children.push(child);
      return child;
    };

    it("should leave no task half-deleted: restarted, the purge is finished", { timeout: 60_000 }, async () => {
      const first = await start({ ROOKERY_TEST_CRASH_AT: "store.during_delete" });
      const { task } = await first.client.submit({ prompt: "purge me", retention: { seconds: 1n, nanos: 0 } });
      await collectEvents(first.client, task!.id);
      expect(await first.exited).toBe("SIGKILL"); // the sweeper reached the purge a second later
      expect(["all", "tombstoned"]).toContain(await check.afterCrash(task!.id));

      const second = await start({});
      await expect.poll(() => check.leftovers(task!.id), { timeout: 20_000, interval: 200 }).toBe(0);
      await expect(second.client.get({ id: task!.id })).rejects.toThrow(/not found/);
    });
  });
}

const sqliteDir = mkdtempSync(join(tmpdir(), "rookery-purge-crash-"));
const sqlitePath = join(sqliteDir, "rookery.db");
const sqliteCount = (id: string) => {
  const db = new Database(sqlitePath, { readonly: true });
  const task = (db.prepare("SELECT COUNT(*) AS n FROM tasks WHERE id = ?").get(id) as { n: number }).n;
  const events = (db.prepare("SELECT COUNT(*) AS n FROM task_events WHERE json_extract(doc, '$.task_id') = ?").get(id) as { n: number }).n;
  db.close();
  return { task, events };
};
describeCrashDuringPurge(
  "SQLite",
  () => ({ ROOKERY_SQLITE_PATH: sqlitePath }),
  {
    // The purge's transaction died with the process: all of the task is there, or none.
    afterCrash: async (id) => {
      const { task, events } = sqliteCount(id);
      return task === 1 && events === 3 ? "all" : task === 0 && events === 0 ? "none" : "partial";
    },
    leftovers: async (id) => {
      const { task, events } = sqliteCount(id);
      return task + events;
    },
  },
  describe,
);

const mongoDb = uniqueDatabase("rookery_purge_crash");
const mongoCount = async (id: string, filter: object = {}) => {
  const raw = await new MongoClient(mongodbUri()).connect();
  const db = raw.db(mongoDb);
  const counts = {
    view: await db.collection("tasks").countDocuments({ _id: id as never }),
    events: await db.collection("task_events").countDocuments({ task_id: id, ...filter }),
    tombstones: await db.collection("task_events").countDocuments({ task_id: id, deleted: true }),
  };
  await raw.close();
  return counts;
};
describeCrashDuringPurge(
  "MongoDB",
  () => ({ ROOKERY_STORE: "mongodb", MONGODB_URI: mongodbUri(), ROOKERY_MONGODB_DB: mongoDb }),
  {
    // The tombstone went in first: every read treats the task as gone until the purge is finished.
    afterCrash: async (id) => {
      const c = await mongoCount(id);
      return c.tombstones === 1 ? "tombstoned" : c.view === 1 && c.events === 3 ? "all" : c.view + c.events === 0 ? "none" : "partial";
    },
    leftovers: async (id) => {
      const c = await mongoCount(id);
      return c.view + c.events;
    },
  },
  describeWithMongo,
);

afterAll(async () => {
  rmSync(sqliteDir, { recursive: true, force: true });
  if (!mongodbUri()) return;
  const raw = await new MongoClient(mongodbUri()).connect();
  await raw.db(mongoDb).dropDatabase();
  await raw.close();
});
