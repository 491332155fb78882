// Figure 5: List latency at 1,000,000 stored tasks: the first page and a page
// deep in the keyset (the 500,000th newest task), with and without a status
// filter (FAILED: every tenth task), default page size, through the gRPC
// listener from another process. The tasks are written straight into the
// store before the server starts (80% completed, 10% failed, 5% cancelled,
// 5% pending, one millisecond apart). Each case: median of CALLS calls per
// round, median of ROUNDS rounds.
// Run: npx tsx bench/list.ts [tasks, default 1000000] [store: sqlite|mongodb]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { ListRequestSchema, ListResponseSchema } from "../gen/rookery/v1/task_service_pb.js";
import { TaskStatus as PbStatus } from "../gen/rookery/v1/task_pb.js";
import { encodePageToken, filterFingerprint } from "../src/api/page-token.js";
import type { TaskStatus } from "../src/domain/task.js";
import { createTask } from "../src/domain/transitions.js";
import { toMongoTask } from "../src/store/mongo/mongo-document.js";
import { MongoTaskStore } from "../src/store/mongo/mongo-task-store.js";
import { SqliteTaskStore } from "../src/store/sqlite/sqlite-task-store.js";
import { toTaskDocument } from "../src/store/task-document.js";
import { startChildServer } from "../test/support/child-server.js";
import { benchStore, stopBenchStores } from "./lib/bench-store.js";
import { grpcJsUnary } from "./lib/grpc-js-calls.js";
import { median, percentile } from "./lib/measure.js";

const TASKS = Number(process.argv[2] ?? 1_000_000);
const STORE = process.argv[3] ?? "sqlite";
const CALLS = STORE === "sqlite" ? 20 : 5; // a List on FerretDB reads the whole collection
const ROUNDS = 3;
const DEEP = Math.floor(TASKS / 2);
const BASE = Date.UTC(2026, 0, 1);

const statusOf = (i: number): TaskStatus =>
  (["completed", "failed", "completed", "completed", "cancelled", "completed", "completed", "completed", "completed", "pending"] as const)[
    i % 10
  ]!;
const draftOf = (i: number) => {
  const draft = createTask(
    {
      prompt: `list bench task ${i}`,
      systemPrompt: "",
      maxIterations: 10,
      labels: {},
      tools: [],
      owner: "",
      provider: "openai",
      model: "gpt-4o-mini",
    },
    new Date(BASE + i),
  );
  draft.task.status = statusOf(i);
  return draft;
};

/** Writes TASKS tasks; returns, per filter, the task just before the deep page (newest first). */
async function populate(env: Record<string, string>): Promise<{ all: ReturnType<typeof draftOf>; failed: ReturnType<typeof draftOf> }> {
  // Newest first, the task at position DEEP has index TASKS-1-DEEP; with the status filter, the
  // DEEP/10-th newest failed task.
  const deepAll = TASKS - 1 - DEEP;
  const failedIndexes = Array.from({ length: TASKS }, (_, i) => i)
    .filter((i) => statusOf(i) === "failed")
    .reverse();
  const deepFailed = failedIndexes[Math.floor(DEEP / 10)]!;
  const batch = 5000;
  if (STORE === "sqlite") {
    const store = new SqliteTaskStore({ path: env.ROOKERY_SQLITE_PATH! });
    for (let start = 0; start < TASKS; start += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, TASKS - start) }, (_, k) => store.create(draftOf(start + k))));
    }
    await store.close();
  } else {
    await (await MongoTaskStore.open({ uri: env.MONGODB_URI!, database: env.ROOKERY_MONGODB_DB!, serverSelectionTimeoutMS: 5000 })).close();
    const client = await MongoClient.connect(env.MONGODB_URI!);
    const tasks = client.db(env.ROOKERY_MONGODB_DB).collection("tasks");
    for (let start = 0; start < TASKS; start += batch) {
      const docs = Array.from({ length: Math.min(batch, TASKS - start) }, (_, k) => toMongoTask(toTaskDocument(draftOf(start + k).task)));
      await tasks.insertMany(docs as never[], { ordered: false });
    }
    await client.close();
  }
  return { all: draftOf(deepAll), failed: draftOf(deepFailed) };
}

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-list-"));
const store = await benchStore(STORE, dir, "list");
const t0 = performance.now();
const deep = await populate(store.env);
console.log(`populated ${TASKS} tasks in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
const server = await startChildServer({ ...store.env, ROOKERY_CONCURRENCY: "0" });
const list = grpcJsUnary(`127.0.0.1:${server.grpcPort}`, "/rookery.v1.TaskService/List", ListRequestSchema, ListResponseSchema);
// The page token the server would have handed out after the task just before the deep page.
const token = (draft: ReturnType<typeof draftOf>, statuses: TaskStatus[]) =>
  encodePageToken(draft.task, filterFingerprint({ s: statuses, l: [] }));

const cases = {
  "first page, no filter": { statuses: [] },
  "first page, status FAILED": { statuses: [PbStatus.FAILED] },
  [`page at task ${DEEP}, no filter`]: { statuses: [], pageToken: token(deep.all, []) },
  [`page at task ${DEEP}, status FAILED`]: { statuses: [PbStatus.FAILED], pageToken: token(deep.failed, ["failed"]) },
};
const results: Record<string, { p50: number[]; p99: number[] }> = {};
for (let round = 1; round <= ROUNDS; round++) {
  for (const [name, request] of Object.entries(cases)) {
    const times: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const start = performance.now();
      const page = (await list.call(request)) as { tasks: unknown[] };
      times.push(performance.now() - start);
      if (page.tasks.length === 0) throw new Error(`${name}: empty page`);
    }
    (results[name] ??= { p50: [], p99: [] }).p50.push(median(times));
    results[name].p99.push(percentile(times, 99));
  }
}
console.log(`List at ${TASKS} tasks, ${STORE} store, ${CALLS} calls x ${ROUNDS} rounds, medians (${new Date().toISOString()})`);
for (const [name, r] of Object.entries(results)) {
  console.log(
    `${name.padEnd(36)} median ${median(r.p50).toFixed(1).padStart(8)} ms   slowest-of-${CALLS} ${median(r.p99).toFixed(1).padStart(8)} ms`,
  );
}
console.log("target: <= 20 ms");
list.close();
server.process.kill("SIGTERM");
await server.exited;
await store.drop();
await stopBenchStores();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
