// Issue 15: what webhooks cost and how fast they drain.
//   1. End to end with and without a webhook on every task: 1-iteration tasks
//      per second, Submit to COMPLETED (as bench/end-to-end.ts), side by side in
//      each round, alternating which goes first; each task's COMPLETED delivery
//      goes to a local receiver that answers 204 at once. The "with" clock stops
//      when the last delivery has arrived (all the work done), and is also
//      reported at the last task's completion. Each round first runs WARMUP
//      tasks (in the same mode) through its fresh server, untimed: the first
//      thousands after a start run on cold code (bench/end-to-end.ts does the same).
//      Also printed: the CPU a task cost each process in each mode (the server,
//      the provider, this process: callers and receiver), and the machine's idle
//      time per task, since the ratio follows the CPU the whole machine spends.
//   2. Deliveries per second draining a backlog: a server completes DRAIN tasks
//      while the receiver holds every request unanswered (one sender's slots
//      fill, the rest wait due), is SIGKILLed, and a fresh server on the same
//      file sends the backlog to a receiver that answers at once.
//   3. How soon a delivery arrives: LATENCY_TASKS tasks submitted one at a
//      time, each after the last one's delivery arrived; from the transition's
//      time (the payload's data.time, stamped at its commit) to the arrival.
// Run: npx tsx bench/webhooks.ts [tasks per round, default 2000]
import net, { type AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SubmitRequestSchema, SubmitResponseSchema } from "../gen/rookery/v1/task_service_pb.js";
import { TaskStatus } from "../gen/rookery/v1/task_pb.js";
import { startChildServer } from "../test/support/child-server.js";
import { grpcJsUnary } from "./lib/grpc-js-calls.js";
import { cpuMedians, cpuSince, cpuSnapshot, median, percentile, sideBySide, submitAll, waitFor } from "./lib/measure.js";
import { startScript } from "./lib/processes.js";

const TASKS = Number(process.argv[2] ?? 2000);
const WARMUP = 2000;
const DRAIN = 2000;
const LATENCY_TASKS = 300;
const CALLERS = 64;
const ROUNDS = 3;
const UNTIL_DONE = { pollMs: 50, timeoutMs: Infinity };
const WEBHOOKS = { ROOKERY_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ROOKERY_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" };

/**
 * A receiver that answers 204 at once (or, while `hold` is set, never), counting distinct
 * webhook-ids. It reads HTTP/1.1 straight off the socket, so that on this 2-core machine
 * its own CPU takes as little as it can from the server measured. While `latencies` is
 * set, it reads each body's data.time and notes how long ago that was.
 */
interface Receiver {
  url: string;
  ids: Set<string>;
  hold: boolean;
  lastAt: number;
  latencies: number[] | undefined;
  close(): void;
}

function startReceiver(): Promise<Receiver> {
  const state: Receiver = { url: "", ids: new Set<string>(), hold: false, lastAt: 0, latencies: undefined, close: () => {} };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buffer: Buffer = Buffer.alloc(0);
    socket.on("data", (data: Buffer) => {
      buffer = buffer.length === 0 ? data : Buffer.concat([buffer, data]);
      for (;;) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString("latin1");
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const body = buffer.subarray(end + 4, end + 4 + length);
        buffer = buffer.subarray(end + 4 + length);
        if (state.hold) continue;
        if (state.latencies) {
          const { data } = JSON.parse(body.toString()) as { data: { time: string } };
          state.latencies.push(Date.now() - Date.parse(data.time));
        }
        state.ids.add(/\r\nwebhook-id: *(\S+)/i.exec(head)?.[1] ?? "");
        state.lastAt = performance.now();
        socket.write("HTTP/1.1 204 No Content\r\n\r\n");
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      state.close = () => {
        for (const socket of sockets) socket.destroy();
        server.close();
      };
      resolve(state);
    }),
  );
}

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-webhooks-"));
const provider = await startScript("bench/peers/fake-provider.ts");
const [baseURL] = provider.words as [string];
const receiver = await startReceiver();

interface Round {
  completed: number;
  delivered: number;
  /** CPU µs per task of each process, and the machine's idle µs per task. */
  cpu: Record<string, number>;
}

async function tasksPerSecond(round: number, withWebhook: boolean): Promise<Round> {
  const server = await startChildServer({
    ROOKERY_SQLITE_PATH: join(dir, `e2e-${round}-${withWebhook}.db`),
    OPENAI_BASE_URL: baseURL,
    OPENAI_API_KEY: "bench",
    ...WEBHOOKS,
  });
  const { client } = server;
  // Submitted as bench/end-to-end.ts does, with a bare grpc-js client (the lightest caller, so
  // that on this 2-core machine the callers take as little as they can from the server).
  const submit = grpcJsUnary(`127.0.0.1:${server.grpcPort}`, "/rookery.v1.TaskService/Submit", SubmitRequestSchema, SubmitResponseSchema);
  /** Submits `count` tasks and waits until every one has ended (`seconds` from `t0`, its start) and (with webhooks) been delivered. */
  const runAll = async (count: number, prefix: string) => {
    const t0 = performance.now();
    const before = receiver.ids.size;
    await submitAll(CALLERS, count, (i) =>
      submit.call({ prompt: `${prefix} ${round}.${i}`, ...(withWebhook ? { webhook: { url: receiver.url } } : {}) }),
    );
    await waitFor(
      async () => (await client.list({ statuses: [TaskStatus.PENDING, TaskStatus.RUNNING], pageSize: 1 })).tasks.length === 0,
      "every task to end",
      UNTIL_DONE,
    );
    const seconds = (performance.now() - t0) / 1000;
    if (withWebhook) await waitFor(async () => receiver.ids.size - before === count, "every delivery", { pollMs: 5, timeoutMs: Infinity });
    return { t0, seconds };
  };
  await runAll(WARMUP, "warm-up");
  const pids = { server: server.process.pid!, provider: provider.child.pid!, "callers and receiver": process.pid };
  const cpu = cpuSnapshot(pids);
  const { t0, seconds } = await runAll(TASKS, "hook");
  const cpuPerTask = cpuSince(cpu, pids, TASKS);
  const delivered = withWebhook ? Math.max(seconds, (receiver.lastAt - t0) / 1000) : seconds;
  submit.close();
  server.process.kill("SIGTERM");
  await server.exited;
  return { completed: TASKS / seconds, delivered: TASKS / delivered, cpu: cpuPerTask };
}

async function drainPerSecond(): Promise<number> {
  const path = join(dir, "drain.db");
  const env = { ROOKERY_SQLITE_PATH: path, OPENAI_BASE_URL: baseURL, OPENAI_API_KEY: "bench", ...WEBHOOKS };
  receiver.hold = true;
  const first = await startChildServer(env);
  await submitAll(CALLERS, DRAIN, (i) => first.client.submit({ prompt: `drain ${i}`, webhook: { url: receiver.url } }));
  await waitFor(
    async () => (await first.client.list({ statuses: [TaskStatus.PENDING, TaskStatus.RUNNING], pageSize: 1 })).tasks.length === 0,
    "every task to end",
    UNTIL_DONE,
  );
  first.process.kill("SIGKILL");
  await first.exited;
  receiver.hold = false;
  const before = receiver.ids.size;
  const second = await startChildServer(env);
  const t0 = performance.now();
  // The 16 held by the killed sender come back after their hold: the rest are the backlog measured.
  const backlog = DRAIN - 16;
  await waitFor(async () => receiver.ids.size - before >= backlog, "the backlog to drain", UNTIL_DONE);
  const seconds = (receiver.lastAt - t0) / 1000;
  second.process.kill("SIGTERM");
  await second.exited;
  return backlog / seconds;
}

/** Milliseconds from each transition's commit to its delivery's arrival, one task at a time. */
async function deliveryLatencies(): Promise<number[]> {
  const server = await startChildServer({
    ROOKERY_SQLITE_PATH: join(dir, "latency.db"),
    OPENAI_BASE_URL: baseURL,
    OPENAI_API_KEY: "bench",
    ...WEBHOOKS,
  });
  const latencies: number[] = [];
  receiver.latencies = latencies;
  for (let i = 0; i < LATENCY_TASKS; i++) {
    await server.client.submit({ prompt: `latency ${i}`, webhook: { url: receiver.url } });
    await waitFor(async () => latencies.length > i, "the delivery", { pollMs: 1, timeoutMs: 30_000 });
  }
  receiver.latencies = undefined;
  server.process.kill("SIGTERM");
  await server.exited;
  return latencies;
}

const rows = { without: [] as number[], with: [] as number[], withCompleted: [] as number[] };
const cpu = { without: [] as Record<string, number>[], with: [] as Record<string, number>[] };
for (let round = 1; round <= ROUNDS; round++) {
  const withFirst = round % 2 === 0;
  const a = await tasksPerSecond(round, withFirst);
  const b = await tasksPerSecond(round, !withFirst);
  const [withHook, without] = withFirst ? [a, b] : [b, a];
  rows.with.push(withHook.delivered);
  rows.withCompleted.push(withHook.completed);
  rows.without.push(without.completed);
  cpu.with.push(withHook.cpu);
  cpu.without.push(without.cpu);
}
const drain = [await drainPerSecond()];
const latency = await deliveryLatencies();
console.log(
  `Webhooks, ${TASKS} one-iteration tasks a round after ${WARMUP} untimed, ${CALLERS} callers, median of ${ROUNDS} rounds (${new Date().toISOString()})`,
);
console.log(`end to end, no webhook                 ${median(rows.without).toFixed(0).padStart(6)} tasks/s`);
console.log(
  `end to end, a webhook on every task    ${median(rows.with).toFixed(0).padStart(6)} tasks/s to the last delivery (${median(rows.withCompleted).toFixed(0)} to the last completion)`,
);
console.log(`with / without: ${sideBySide(rows.with, rows.without)}; target >= 0.90x`);
console.log("CPU µs per task by process (idle: the machine's unused CPU per task), medians:");
console.log(`  no webhook:              ${cpuMedians(cpu.without)}`);
console.log(`  a webhook on every task: ${cpuMedians(cpu.with)}`);
console.log(`draining a backlog of ${DRAIN - 16} deliveries after a restart: ${median(drain).toFixed(0)} deliveries/s`);
console.log(
  `from a transition's commit to its delivery's arrival, ${LATENCY_TASKS} tasks one at a time: p50 ${percentile(latency, 50)} ms, p99 ${percentile(latency, 99)} ms`,
);
receiver.close();
await provider.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
