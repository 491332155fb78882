// Figure 4: 10,000 open Watch streams on one server, on each listener: the
// server's RSS per open stream, and the time to fan one event out to all of
// them (from the event's commit to its arrival at the last watcher), beside
// the bare fan-out floor of the same stack (bench/peers/fanout-servers.ts).
// Streams are spread over CONNECTIONS connections. Every measurement starts a
// fresh server process. The Rookery event is the CANCELLED transition of the
// watched task (its model call is held open until then).
// Run: npx tsx bench/watch-scale.ts [streams, default 10000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskStatus, type TaskEvent } from "../gen/rookery/v1/task_pb.js";
import { startChildServer } from "../test/support/child-server.js";
import { setTimeout as sleep } from "node:timers/promises";
import { median, rssBytes, waitFor } from "./lib/measure.js";
import { startScript, type Ready } from "./lib/processes.js";
import { ageMs, openWatchers, rookeryWatchStreams, type Listener } from "./lib/watchers.js";

const STREAMS = Number(process.argv[2] ?? 10_000);
const CONNECTIONS = 10;
const LISTENERS: Listener[] = ["grpc-js", "connect-node"];
const ROUNDS = 3;
const SETTLE_MS = 2000;

interface Measure {
  kbPerStream: number;
  fanOutMs: number;
}

/** Opens STREAMS watchers, waits until `open()` says they are all there, then measures. */
async function measure(
  pid: number,
  listener: Listener,
  port: number,
  request: { id: string; afterSequence: bigint },
  open: () => Promise<number>,
  fire: () => Promise<void>,
): Promise<Measure> {
  await sleep(SETTLE_MS);
  const before = rssBytes(pid);
  let arrived = 0;
  let slowest = 0;
  const onEvent = (event: TaskEvent) => {
    slowest = Math.max(slowest, ageMs(event));
    arrived += 1;
  };
  const watchers = openWatchers(listener, port, STREAMS, CONNECTIONS, request, onEvent);
  await waitFor(async () => (await open()) === STREAMS, `${STREAMS} open streams`, { timeoutMs: 120_000 });
  await sleep(SETTLE_MS);
  const after = rssBytes(pid);
  await fire();
  await waitFor(async () => arrived === STREAMS, "the event at every watcher", { timeoutMs: 120_000 });
  watchers.close();
  await watchers.ended;
  return { kbPerStream: (after - before) / STREAMS / 1024, fanOutMs: slowest };
}

async function floor(listener: Listener): Promise<Measure> {
  const server = await startScript("bench/peers/fanout-servers.ts");
  const [grpcPort, connectPort] = server.words.map(Number) as [number, number];
  const column = listener === "grpc-js" ? 1 : 2;
  const result = await measure(
    server.child.pid!,
    listener,
    listener === "grpc-js" ? grpcPort : connectPort,
    { id: "floor", afterSequence: 0n },
    async () => {
      server.send("count");
      return Number((await server.nextLine("count")).split(" ")[column]);
    },
    async () => server.send("push 1"),
  );
  await server.stop();
  return result;
}

async function rookery(listener: Listener, provider: Ready, dir: string, round: number): Promise<Measure> {
  const server = await startChildServer({
    ROOKERY_SQLITE_PATH: join(dir, `scale-${listener}-${round}.db`),
    OPENAI_BASE_URL: provider.words[0]!,
    OPENAI_API_KEY: "bench",
    ROOKERY_CONCURRENCY: "1",
    ROOKERY_MAX_WATCHES_PER_KEY: String(STREAMS * 2),
  });
  // A task whose model call is held open (its gate is never opened) until it is cancelled.
  const { task } = await server.client.submit({ prompt: `paced 1 0 scale ${listener} ${round}` });
  let running = task!;
  await waitFor(async () => (running = (await server.client.get({ id: task!.id })).task!).status === TaskStatus.RUNNING, "task to run");
  const result = await measure(
    server.process.pid!,
    listener,
    listener === "grpc-js" ? server.grpcPort : server.httpPort,
    { id: running.id, afterSequence: running.lastEventSequence },
    () => rookeryWatchStreams(server.httpPort),
    async () => void (await server.client.cancel({ id: running.id })),
  );
  server.process.kill("SIGTERM");
  await server.exited;
  return result;
}

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-scale-"));
const provider = await startScript("bench/peers/fake-provider.ts");
const results = new Map<string, Measure[]>();
const add = (name: string, m: Measure) => results.set(name, [...(results.get(name) ?? []), m]);
for (let round = 1; round <= ROUNDS; round++) {
  for (const listener of LISTENERS) {
    add(`${listener} floor`, await floor(listener));
    add(`${listener} Rookery`, await rookery(listener, provider, dir, round));
  }
}
console.log(
  `Watch scale: ${STREAMS} open streams over ${CONNECTIONS} connections, median of ${ROUNDS} rounds (${new Date().toISOString()})`,
);
for (const [name, ms] of results) {
  const kb = median(ms.map((m) => m.kbPerStream));
  const fan = median(ms.map((m) => m.fanOutMs));
  console.log(
    `${name.padEnd(22)} ${kb.toFixed(1).padStart(6)} KB RSS per stream   ${fan.toFixed(0).padStart(6)} ms to fan one event out to all`,
  );
}
console.log("target: <= 30 KB per stream on the grpc-js listener");
await provider.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
