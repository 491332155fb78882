// Issue 12: Watch event latency while tasks stream output. 16 tasks run at
// once, each with 100 watchers on the grpc-js listener; every iteration is a
// model reply PACE.gapMs after its call. Side by side in each round: the
// replies carry no output and the watchers ask for none (today's stream), and
// each reply streams OUTPUT_PIECES pieces of text 1 ms apart to watchers with
// include_output. Latency is commit to arrival of the events (their time
// stamp), p50/p99 over every event every watcher received; median of 5 rounds,
// the two modes in alternating order. Also printed: the CPU each process spent
// per event delivered to a watcher, in each mode (where the output's cost goes).
// Run: npx tsx bench/watch-output-latency.ts [coalesce ms, default the server's 50]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskStatus } from "../gen/rookery/v1/task_pb.js";
import { startChildServer, type ChildServer } from "../test/support/child-server.js";
import { cpuMedians, cpuSince, cpuSnapshot, median, percentile, sideBySide, waitFor } from "./lib/measure.js";
import { startScript, type Ready } from "./lib/processes.js";
import { ageMs, openWatchers, rookeryWatchStreams } from "./lib/watchers.js";

const TASKS = 16;
const WATCHERS = 100;
const PACE = { events: 30, gapMs: 100 };
const OUTPUT_PIECES = 20;
// Five rounds, the two modes in alternating order (the first run of a round also warms the
// server up): rounds in a fixed order measured the order as much as the output.
const ROUNDS = 5;

interface Mode {
  latencies: number[];
  /** CPU µs per event received by a watcher, by process, from the first reply to the last event. */
  cpu: Record<string, number>;
}

async function measure(server: ChildServer, provider: Ready, withOutput: boolean, round: number): Promise<Mode> {
  const pieces = withOutput ? OUTPUT_PIECES : 0;
  const prompts = Array.from({ length: TASKS }, (_, i) => `paced ${PACE.events} ${PACE.gapMs} ${pieces} task ${i} round ${round}`);
  const ids = await Promise.all(
    prompts.map(async (prompt) => (await server.client.submit({ prompt, maxIterations: PACE.events + 1 })).task!.id),
  );
  const running = await Promise.all(
    ids.map(async (id) => {
      let task = (await server.client.get({ id })).task!;
      await waitFor(async () => (task = (await server.client.get({ id })).task!).status === TaskStatus.RUNNING, "tasks to run");
      return task;
    }),
  );
  const seen: number[] = [];
  const watchers = running.map((task) =>
    openWatchers(
      "grpc-js",
      server.grpcPort,
      WATCHERS,
      2,
      { id: task.id, afterSequence: task.lastEventSequence, includeOutput: withOutput },
      (e) => seen.push(ageMs(e)),
    ),
  );
  await waitFor(async () => (await rookeryWatchStreams(server.httpPort)) === TASKS * WATCHERS, "every watcher");
  const pids = { server: server.process.pid!, provider: provider.child.pid!, watchers: process.pid };
  const before = cpuSnapshot(pids);
  for (const prompt of prompts) provider.send(`open ${prompt}`);
  await Promise.all(watchers.map((w) => w.ended));
  return { latencies: seen, cpu: cpuSince(before, pids, seen.length) };
}

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-watch-output-"));
const provider = await startScript("bench/peers/fake-provider.ts");
const server = await startChildServer({
  ROOKERY_SQLITE_PATH: join(dir, "watch-output.db"),
  OPENAI_BASE_URL: provider.words[0]!,
  OPENAI_API_KEY: "bench",
  ROOKERY_CONCURRENCY: String(TASKS),
  ROOKERY_MAX_WATCHES_PER_KEY: "20000",
  ...(process.argv[2] ? { ROOKERY_OUTPUT_COALESCE_MS: process.argv[2] } : {}),
});

interface Row {
  p50: number[];
  p99: number[];
  cpu: Record<string, number>[];
}
const rows: Record<"without" | "with", Row> = { without: { p50: [], p99: [], cpu: [] }, with: { p50: [], p99: [], cpu: [] } };
const record = (row: Row, mode: Mode) => {
  row.p50.push(percentile(mode.latencies, 50));
  row.p99.push(percentile(mode.latencies, 99));
  row.cpu.push(mode.cpu);
};
for (let round = 1; round <= ROUNDS; round++) {
  const withFirst = round % 2 === 0;
  const first = await measure(server, provider, withFirst, round);
  const second = await measure(server, provider, !withFirst, round);
  const [withMode, withoutMode] = withFirst ? [first, second] : [second, first];
  record(rows.with, withMode);
  record(rows.without, withoutMode);
}
console.log(
  `Watch event latency, ${TASKS} tasks x ${WATCHERS} watchers (grpc-js), ${PACE.events} events ${PACE.gapMs} ms apart per task, ` +
    `output coalesced ${process.argv[2] ?? 50} ms, median of ${ROUNDS} rounds (${new Date().toISOString()})`,
);
console.log(
  `events only (no output)              p50 ${median(rows.without.p50).toFixed(1).padStart(6)} ms   p99 ${median(rows.without.p99).toFixed(1).padStart(6)} ms`,
);
console.log(
  `with output (${OUTPUT_PIECES} pieces per reply)      p50 ${median(rows.with.p50).toFixed(1).padStart(6)} ms   p99 ${median(rows.with.p99).toFixed(1).padStart(6)} ms`,
);
console.log(`CPU µs per event received, events only: ${cpuMedians(rows.without.cpu)}`);
console.log(`CPU µs per event received, with output: ${cpuMedians(rows.with.cpu)}`);
console.log(`p99 with output / without: ${sideBySide(rows.with.p99, rows.without.p99)}; target <= 1.2x`);
server.process.kill("SIGTERM");
await server.exited;
await provider.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
