// Figure 7: SIGKILL a server with 100 running tasks, start a new one on the
// same data file, and time (from the kill) until every task is RUNNING again
// in the new process and until every task has COMPLETED. Each task has
// checkpointed one iteration and is in its second model call when the first
// process dies; the new process must wait out the lease, then continue.
// Run: npx tsx bench/recovery.ts [lease ms, default 5000] [store: sqlite|mongodb|ferretdb-pg] [tasks, default 100]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskStatus } from "../gen/rookery/v1/task_pb.js";
import { startChildServer, type ChildServer } from "../test/support/child-server.js";
import { FakeOpenAI } from "../test/support/fake-openai.js";
import { median } from "./lib/measure.js";
import { benchStore, stopBenchStores } from "./lib/bench-store.js";

const LEASE_MS = Number(process.argv[2] ?? 5000);
const STORE = process.argv[3] ?? "sqlite";
const TASKS = Number(process.argv[4] ?? 100);
const ROUNDS = 3;

const progress = (round: number, what: string) => console.error(`round ${round}: ${what}`);
const fake = await FakeOpenAI.start();
let phase: "before kill" | "after kill" = "before kill";
fake.respond((c) => {
  if (c.turn === 0) return { toolCalls: [{ name: "calculator", arguments: '{"expression":"1+1"}' }] };
  return phase === "before kill" ? { hang: true } : { content: "recovered" };
});

interface Round {
  restartMs: number;
  allRunningMs: number;
  allCompletedMs: number;
}

async function round(n: number): Promise<Round> {
  phase = "before kill";
  const dir = mkdtempSync(join(tmpdir(), "rookery-bench-recovery-"));
  const store = await benchStore(STORE, dir, `recovery_${n}`);
  const env = {
    ...store.env,
    OPENAI_BASE_URL: fake.baseURL,
    OPENAI_API_KEY: "bench",
    ROOKERY_CONCURRENCY: String(TASKS),
    ROOKERY_LEASE_MS: String(LEASE_MS),
    ROOKERY_MAX_WATCHES_PER_KEY: String(TASKS * 2),
  };
  const first = await startChildServer(env);
  const ids: string[] = [];
  for (let i = 0; i < TASKS; i++) ids.push((await first.client.submit({ prompt: `recover ${n}.${i}` })).task!.id);
  progress(n, `submitted ${TASKS} tasks`);
  await Promise.all(ids.map((_, i) => fake.waitForCall((c) => c.prompt === `recover ${n}.${i}` && c.turn === 1)));
  progress(n, "every task is in its second model call");
  const before = await Promise.all(ids.map(async (id) => (await first.client.get({ id })).task!));
  if (!before.every((t) => t.status === TaskStatus.RUNNING && t.iterations === 1)) throw new Error("tasks not all running at iteration 1");

  const killedAt = performance.now();
  first.process.kill("SIGKILL");
  await first.exited;
  phase = "after kill";
  const second: ChildServer = await startChildServer(env);
  const restartMs = performance.now() - killedAt;
  progress(n, "killed and restarted");
  const runningAt: number[] = [];
  const completedAt: number[] = [];
  await Promise.all(
    before.map(async (task) => {
      let resumed = false;
      for await (const { event } of second.client.watch({ id: task.id, afterSequence: task.lastEventSequence })) {
        if (!event) continue;
        if (!resumed) {
          // The first event after the checkpoint is the new process taking the task over.
          resumed = true;
          if (event.status !== TaskStatus.RUNNING) throw new Error(`expected a takeover, got ${TaskStatus[event.status]}`);
          runningAt.push(performance.now() - killedAt);
        }
        if (event.status === TaskStatus.COMPLETED) {
          completedAt.push(performance.now() - killedAt);
          return;
        }
      }
    }),
  );
  second.process.kill("SIGTERM");
  await second.exited;
  await store.drop();
  rmSync(dir, { recursive: true, force: true });
  return { restartMs, allRunningMs: Math.max(...runningAt), allCompletedMs: Math.max(...completedAt) };
}

const rounds: Round[] = [];
for (let n = 1; n <= ROUNDS; n++) rounds.push(await round(n));
const m = (k: keyof Round) => median(rounds.map((r) => r[k])).toFixed(0);
console.log(
  `Recovery of ${TASKS} running tasks after SIGKILL, ${STORE} store, lease ${LEASE_MS} ms, median of ${ROUNDS} rounds (${new Date().toISOString()})`,
);
console.log(`new process ready:        ${m("restartMs").padStart(6)} ms after the kill`);
console.log(
  `all ${TASKS} RUNNING again:     ${m("allRunningMs").padStart(6)} ms after the kill (target <= lease + 1 s = ${LEASE_MS + 1000} ms)`,
);
console.log(`all ${TASKS} COMPLETED:         ${m("allCompletedMs").padStart(6)} ms after the kill`);
await fake.close();
await stopBenchStores();
process.exit(0);
