// Figure 3: Watch latency, from a status transition's commit (the event's
// time) to its arrival at the watcher, p50/p99, with 1, 100 and 1,000
// watchers on each listener, beside the bare fan-out floor of each stack
// (bench/peers/fanout-servers.ts pushing one stamped message to N open
// streams). Rookery's events come from a running task, one per iteration,
// each model reply held back a gap long enough for one fan-out to end before
// the next (PACE: events and gap per watcher count); the provider runs in a
// process of its own (bench/peers/fake-provider.ts).
// Event times have 1 ms resolution, the same for Rookery and the floor.
// Run: npx tsx bench/watch-latency.ts [watcher counts, default 1,100,1000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskStatus } from "../gen/rookery/v1/task_pb.js";
import { startChildServer, type ChildServer } from "../test/support/child-server.js";
import { setTimeout as sleep } from "node:timers/promises";
import { median, percentile, sideBySide, waitFor } from "./lib/measure.js";
import { startScript, type Ready } from "./lib/processes.js";
import { ageMs, openWatchers, rookeryWatchStreams, type Listener } from "./lib/watchers.js";

const WATCHERS = (process.argv[2] ?? "1,100,1000").split(",").map(Number);
const LISTENERS: Listener[] = ["grpc-js", "connect-node"];
const PACE: Record<number, { events: number; gapMs: number }> = {
  // At least 1,000 events, so that p99 is not the second-slowest of a hundred.
  1: { events: 1000, gapMs: 20 },
  100: { events: 100, gapMs: 40 },
  1000: { events: 50, gapMs: 150 },
};
const CONNECTIONS = 1;
const ROUNDS = 3;

async function floorLatencies(floor: Ready, listener: Listener, n: number): Promise<number[]> {
  const [grpcPort, connectPort] = floor.words.map(Number) as [number, number];
  const latencies: number[] = [];
  const watchers = openWatchers(
    listener,
    listener === "grpc-js" ? grpcPort : connectPort,
    n,
    CONNECTIONS,
    { id: "floor", afterSequence: 0n },
    (e) => latencies.push(ageMs(e)),
  );
  const column = listener === "grpc-js" ? 1 : 2;
  const { events, gapMs } = PACE[n]!;
  await waitFor(async () => {
    floor.send("count");
    return Number((await floor.nextLine("count")).split(" ")[column]) === n;
  }, `${n} floor streams`);
  for (let k = 1; k <= events; k++) {
    floor.send(`push ${k}`);
    await waitFor(async () => latencies.length >= k * n, `push ${k} to arrive`);
    await sleep(gapMs);
  }
  watchers.close();
  await watchers.ended;
  return latencies;
}

async function rookeryLatencies(server: ChildServer, provider: Ready, listener: Listener, n: number, round: number): Promise<number[]> {
  const { events, gapMs } = PACE[n]!;
  const prompt = `paced ${events} ${gapMs} watch ${listener} ${n} ${round}`;
  const { task } = await server.client.submit({ prompt, maxIterations: events + 1 });
  let running = task!;
  await waitFor(async () => (running = (await server.client.get({ id: task!.id })).task!).status === TaskStatus.RUNNING, "task to run");
  const latencies: number[] = [];
  const port = listener === "grpc-js" ? server.grpcPort : server.httpPort;
  const watchers = openWatchers(listener, port, n, CONNECTIONS, { id: task!.id, afterSequence: running.lastEventSequence }, (e) =>
    latencies.push(ageMs(e)),
  );
  await waitFor(async () => (await rookeryWatchStreams(server.httpPort)) === n, `${n} Rookery watchers`);
  provider.send(`open ${prompt}`);
  await watchers.ended; // the task completes, and every stream ends after its last event
  return latencies;
}

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-watch-"));
const provider = await startScript("bench/peers/fake-provider.ts");
const floor = await startScript("bench/peers/fanout-servers.ts");
const server = await startChildServer({
  ROOKERY_SQLITE_PATH: join(dir, "watch.db"),
  OPENAI_BASE_URL: provider.words[0]!,
  OPENAI_API_KEY: "bench",
  ROOKERY_CONCURRENCY: "1",
  ROOKERY_MAX_WATCHES_PER_KEY: "20000",
});

type Row = { p50: number[]; p99: number[] };
const rows = new Map<string, Row>();
const record = (name: string, latencies: number[]) => {
  const row = rows.get(name) ?? { p50: [], p99: [] };
  row.p50.push(percentile(latencies, 50));
  row.p99.push(percentile(latencies, 99));
  rows.set(name, row);
};
// Round 0 warms both sides up and is not counted: without it the floor's p99 fell by half
// over its first rounds (3.9, 2.3, 1.8, 1.4, 1.4 ms at one watcher) and so the ratio rose
// from round to round (bench/RESULTS.md, issue 16, 3f).
for (let round = 0; round <= ROUNDS; round++) {
  const keep = (name: string, latencies: number[]) => {
    if (round > 0) record(name, latencies);
  };
  for (const listener of LISTENERS) {
    for (const n of WATCHERS) {
      keep(`${listener} floor, ${n} watchers`, await floorLatencies(floor, listener, n));
      keep(`${listener} Rookery, ${n} watchers`, await rookeryLatencies(server, provider, listener, n, round));
    }
  }
}

const pace = WATCHERS.map((n) => `${n}: ${PACE[n]!.events} events ${PACE[n]!.gapMs} ms apart`).join(", ");
console.log(`Watch latency, commit to arrival (${pace}), median of ${ROUNDS} rounds after a warm-up round (${new Date().toISOString()})`);
for (const [name, row] of rows) {
  console.log(`${name.padEnd(36)} p50 ${median(row.p50).toFixed(1).padStart(6)} ms   p99 ${median(row.p99).toFixed(1).padStart(6)} ms`);
}
for (const listener of LISTENERS) {
  for (const [n, target] of [
    [1, 1.5],
    [1000, 1.2],
  ] as const) {
    if (!WATCHERS.includes(n)) continue;
    const rookery = rows.get(`${listener} Rookery, ${n} watchers`)!.p99;
    const floorP99 = rows.get(`${listener} floor, ${n} watchers`)!.p99;
    console.log(`${listener}: Rookery p99 / floor p99 at ${n} watchers: ${sideBySide(rookery, floorP99)}; target <= ${target}x`);
  }
}
server.process.kill("SIGTERM");
await server.exited;
await floor.stop();
await provider.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
