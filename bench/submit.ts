// Figure 1: Submit/s with 64 concurrent callers on each listener, beside the
// floor of the same stack (a constant unary reply from a bare grpc-js or
// connect-node server), with server CPU per call. The grpc-js rows use a
// @grpc/grpc-js client, the connect-node rows a connect-node client (binary
// Connect protocol over HTTP/2). Embedded store; the server runs no tasks
// (ROOKERY_CONCURRENCY=0) so only the RPC is measured.
// Run: npx tsx bench/submit.ts [seconds per measurement, default 5] [store: sqlite|mongodb|ferretdb-pg]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckRequestSchema, HealthCheckResponseSchema } from "../gen/health/v1/health_pb.js";
import { SubmitRequestSchema, SubmitResponseSchema, TaskService } from "../gen/rookery/v1/task_service_pb.js";
import { startChildServer } from "../test/support/child-server.js";
import { benchStore, stopBenchStores } from "./lib/bench-store.js";
import { grpcJsUnary } from "./lib/grpc-js-calls.js";
import { closedLoop, cpuMicros, median, sideBySide } from "./lib/measure.js";
import { startScript } from "./lib/processes.js";

const SECONDS = Number(process.argv[2] ?? 5);
const STORE = process.argv[3] ?? "sqlite";
const CALLERS = 64;
const ROUNDS = 3;

/** Calls/s and server CPU µs per call of `call` from 64 loops for SECONDS. */
async function measure(pid: number, call: () => Promise<unknown>): Promise<{ rate: number; cpuPerCall: number }> {
  await closedLoop(CALLERS, 500, call); // warm up
  const cpu0 = cpuMicros(pid);
  const t0 = performance.now();
  const calls = await closedLoop(CALLERS, SECONDS * 1000, call);
  const seconds = (performance.now() - t0) / 1000;
  return { rate: calls / seconds, cpuPerCall: (cpuMicros(pid) - cpu0) / calls };
}

const connectTransport = (port: number): Transport =>
  createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "2", useBinaryFormat: true });

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-"));
const floorServers = await startScript("bench/peers/noop-servers.ts");
const [grpcFloorPort, connectFloorPort] = floorServers.words.map(Number) as [number, number];
const floors = { pid: floorServers.child.pid!, grpcPort: grpcFloorPort, connectPort: connectFloorPort };
const store = await benchStore(STORE, dir, "submit");
const rookery = await startChildServer({ ...store.env, ROOKERY_CONCURRENCY: "0" });
const rookeryPid = rookery.process.pid!;
let n = 0;
const grpcSubmit = grpcJsUnary(
  `127.0.0.1:${rookery.grpcPort}`,
  "/rookery.v1.TaskService/Submit",
  SubmitRequestSchema,
  SubmitResponseSchema,
);
const grpcCheck = grpcJsUnary(
  `127.0.0.1:${floors.grpcPort}`,
  "/grpc.health.v1.Health/Check",
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
);
const connectSubmit = createClient(TaskService, connectTransport(rookery.httpPort));
const connectCheck = createClient(Health, connectTransport(floors.connectPort));

const cases = {
  "grpc-js floor (no-op unary)": () => measure(floors.pid, () => grpcCheck.call({})),
  "grpc-js listener: Submit": () => measure(rookeryPid, () => grpcSubmit.call({ prompt: `bench ${n++}` })),
  "connect-node floor (no-op unary)": () => measure(floors.pid, () => connectCheck.check({})),
  "connect-node listener: Submit": () => measure(rookeryPid, () => connectSubmit.submit({ prompt: `bench ${n++}` })),
};
type Case = keyof typeof cases;
const pairs: [Case, Case][] = [
  ["grpc-js floor (no-op unary)", "grpc-js listener: Submit"],
  ["connect-node floor (no-op unary)", "connect-node listener: Submit"],
];
const results: Record<string, { rate: number[]; cpu: number[] }> = {};
// Round 0 is not counted: it warms both servers up. Without it the first round measured
// Rookery's Submit on code not yet optimized (its ratio was the lowest of the three in each of
// this benchmark's runs on 2026-12-02). Each pair runs back to back, alternating which side goes
// first, as in bench/end-to-end.ts: the machine's speed drifts over minutes.
for (let round = 0; round <= ROUNDS; round++) {
  for (const pair of pairs) {
    for (const name of round % 2 === 1 ? pair : [...pair].reverse()) {
      const r = await cases[name]();
      if (round === 0) continue;
      (results[name] ??= { rate: [], cpu: [] }).rate.push(r.rate);
      results[name].cpu.push(r.cpuPerCall);
    }
  }
}
console.log(
  `Submit vs floor, ${STORE} store, ${CALLERS} callers, ${SECONDS}s x ${ROUNDS} rounds after a warm-up round, medians (${new Date().toISOString()})`,
);
for (const [name, r] of Object.entries(results)) {
  console.log(
    `${name.padEnd(36)} ${median(r.rate).toFixed(0).padStart(7)} calls/s  ${median(r.cpu).toFixed(0).padStart(5)} µs server CPU/call`,
  );
}
const ratio = (a: string, b: string) => sideBySide(results[a]!.rate, results[b]!.rate);
console.log(
  `grpc-js listener Submit / floor:      ${ratio("grpc-js listener: Submit", "grpc-js floor (no-op unary)")}; target >= 0.8x in every run`,
);
console.log(`connect-node listener Submit / floor: ${ratio("connect-node listener: Submit", "connect-node floor (no-op unary)")}`);
grpcSubmit.close();
grpcCheck.close();
await floorServers.stop();
rookery.process.kill("SIGTERM");
await rookery.exited;
await store.drop();
await stopBenchStores();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
