// Issue 17: what tracing costs. 1-iteration tasks per second, Submit to
// COMPLETED (as bench/end-to-end.ts), with tracing off (no OTEL_* variables)
// and on (OTLP/HTTP to a local sink that answers 200 and discards; batch span
// processor; sampler always on), side by side in each round, alternating which
// goes first.
// With a baseline checkout (the release before tracing), its server with no OTEL_*
// variables runs in each round too: "off" against it shows what the code costs when
// tracing is off.
// Run: npx tsx bench/tracing.ts [tasks per round, default 2000] [baseline checkout dir]
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskStatus } from "../gen/rookery/v1/task_pb.js";
import { startChildServer } from "../test/support/child-server.js";
import { median, submitAll, waitFor } from "./lib/measure.js";
import { startScript } from "./lib/processes.js";

const TASKS = Number(process.argv[2] ?? 2000);
const BASELINE = process.argv[3];
const CALLERS = 64;
const ROUNDS = 3;

let exported = 0;
const sink = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    exported += 1;
    res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
  });
});
await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-tracing-"));
const provider = await startScript("bench/peers/fake-provider.ts");
const [baseURL] = provider.words as [string];

async function tasksPerSecond(round: number, traced: boolean, checkout?: string): Promise<number> {
  const server = await startChildServer(
    {
      ROOKERY_SQLITE_PATH: join(dir, `tracing-${round}-${traced}-${checkout ? "baseline" : "this"}.db`),
      OPENAI_BASE_URL: baseURL,
      OPENAI_API_KEY: "bench",
      ...(traced ? { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_TRACES_SAMPLER: "always_on", OTEL_SERVICE_NAME: "rookery-bench" } : {}),
    },
    checkout,
  );
  const { client } = server;
  const t0 = performance.now();
  await submitAll(CALLERS, TASKS, (i) => client.submit({ prompt: `traced ${round}.${i}` }));
  await waitFor(
    async () => (await client.list({ statuses: [TaskStatus.PENDING, TaskStatus.RUNNING], pageSize: 1 })).tasks.length === 0,
    "every task to end",
    { pollMs: 50, timeoutMs: Infinity },
  );
  const seconds = (performance.now() - t0) / 1000;
  server.process.kill("SIGTERM");
  await server.exited;
  return TASKS / seconds;
}

const rows = { off: [] as number[], on: [] as number[], ratio: [] as number[], baseline: [] as number[], offVsBaseline: [] as number[] };
for (let round = 1; round <= ROUNDS; round++) {
  const onFirst = round % 2 === 0;
  const a = await tasksPerSecond(round, onFirst);
  const b = await tasksPerSecond(round, !onFirst);
  const [on, off] = onFirst ? [a, b] : [b, a];
  rows.on.push(on);
  rows.off.push(off);
  rows.ratio.push(on / off);
  if (BASELINE) {
    const baseline = await tasksPerSecond(round, false, BASELINE);
    rows.baseline.push(baseline);
    rows.offVsBaseline.push(off / baseline);
  }
}
console.log(`Tracing, ${TASKS} one-iteration tasks a round, ${CALLERS} callers, median of ${ROUNDS} rounds (${new Date().toISOString()})`);
console.log(`tracing off (no OTEL_* variables)        ${median(rows.off).toFixed(0).padStart(6)} tasks/s`);
console.log(`tracing on (OTLP/HTTP, always sampled)   ${median(rows.on).toFixed(0).padStart(6)} tasks/s   (${exported} export requests)`);
console.log(`on / off: ${median(rows.ratio).toFixed(2)}x (target >= 0.90x); rounds: ${rows.ratio.map((r) => r.toFixed(2)).join(", ")}`);
if (BASELINE) {
  console.log(`baseline release, no OTEL_* variables  ${median(rows.baseline).toFixed(0).padStart(6)} tasks/s   (${BASELINE})`);
  console.log(
    `off / baseline: ${median(rows.offVsBaseline).toFixed(2)}x; rounds: ${rows.offVsBaseline.map((r) => r.toFixed(2)).join(", ")}`,
  );
}
sink.close();
await provider.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
