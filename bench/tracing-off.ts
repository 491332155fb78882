// Issue 17, "with no OTEL settings, tracing costs nothing measurable": what the
// span helpers cost per task when no SDK is registered (the server's state
// without OTEL_* variables). Each helper is timed against calling its work
// directly; the per-task figure counts the helper calls one 1-iteration task
// makes (listed below, from the call sites), against the ~1,700 µs of server
// CPU such a task costs end to end (bench/RESULTS.md, issue 16 figure 1).
// Run: npx tsx bench/tracing-off.ts
import { trace } from "@opentelemetry/api";
import { contextFrom, currentTraceparent, inSpan, inSpanIfTraced, logTraceFields, pastSpan, traceHeaders } from "../src/telemetry/spans.js";
import { median } from "./lib/measure.js";

const CALLS = 200_000;
const ROUNDS = 3;
const work = async () => 1;

/** ns per call of `f` (async ones awaited one after the other), median of ROUNDS. */
async function nsPerCall(f: () => unknown): Promise<number> {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) await f();
    rounds.push(Number(process.hrtime.bigint() - t0) / CALLS);
  }
  return median(rounds);
}

if (trace.getTracerProvider().getTracer("check").startSpan("x").isRecording()) throw new Error("a tracer provider is registered");
const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const direct = await nsPerCall(work);
const start = new Date(Date.now() - 1);
const end = new Date();
// [helper, calls per task, timed call, ns of the same work without the helper]
const helpers: [string, number, () => unknown, number][] = [
  ["inSpan (Submit RPC, invoke_agent, chat)", 3, () => inSpan("x", { attributes: { a: 1 } }, work), direct],
  ["inSpanIfTraced (store create, claim, commits)", 4, () => inSpanIfTraced("x", { a: 1 }, work), direct],
  ["contextFrom (Submit, run)", 2, () => contextFrom(parent), 0],
  ["pastSpan (claim)", 1, () => pastSpan("x", start, end, { a: 1 }), 0],
  ["currentTraceparent (Submit)", 1, () => currentTraceparent(), 0],
  ["traceHeaders (model call)", 1, () => traceHeaders(), 0],
  ["logTraceFields (each log line)", 4, () => logTraceFields(), 0],
];
let perTask = 0;
console.log(`Span helpers with no tracer provider (${new Date().toISOString()}), ${CALLS} calls x ${ROUNDS} rounds, medians`);
for (const [name, count, call, without] of helpers) {
  const added = Math.max(0, (await nsPerCall(call)) - without);
  perTask += added * count;
  console.log(`${name.padEnd(48)} ${added.toFixed(0).padStart(6)} ns a call x ${count} a task`);
}
console.log(`added per 1-iteration task: ${(perTask / 1000).toFixed(2)} µs, ${((perTask / 1000 / 1700) * 100).toFixed(2)}% of ~1,700 µs`);
