// Figure 6: time per agent-loop iteration of a 20-iteration task run by Rookery
// (model call, a server tool, a checkpoint written and published per iteration)
// against a bare loop of the same openai SDK calls with the same growing
// conversation, both against the same zero-latency fake provider. Then the same
// with a 250 KB prompt, and with 8 KB replies (a conversation of ~160 KB at the
// end): what Rookery adds must not grow with the prompt or the conversation (each
// is stored once, not rewritten by every iteration's commit).
// Run: npx tsx bench/agent-overhead.ts [sqlite|mongodb|ferretdb-pg]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import OpenAI from "openai";
import { TaskStatus } from "../gen/rookery/v1/task_pb.js";
import { startChildServer } from "../test/support/child-server.js";
import { FakeOpenAI } from "../test/support/fake-openai.js";
import { collectEvents } from "../test/support/harness.js";
import { benchStore, stopBenchStores } from "./lib/bench-store.js";
import { median } from "./lib/measure.js";

const ITERATIONS = 20;
const TASKS = 5;
const ROUNDS = 3;
const LONG_PROMPT = "x".repeat(250_000);
const LONG_REPLY = 8_000;
const STORE = process.argv[2] ?? "sqlite";

/** Characters of text in each tool-calling reply: set per case, read by the fake provider. */
let replyChars = 0;
const fake = await FakeOpenAI.start();
fake.respond((c) =>
  c.turn < ITERATIONS - 1
    ? { ...(replyChars > 0 ? { content: "r".repeat(replyChars) } : {}), toolCalls: [{ name: "current_time", arguments: "{}" }] }
    : { content: "done" },
);
const dir = mkdtempSync(join(tmpdir(), "rookery-bench-"));
const store = await benchStore(STORE, dir, "overhead");
const server = await startChildServer({
  ...store.env,
  OPENAI_BASE_URL: fake.baseURL,
  OPENAI_API_KEY: "bench",
  ROOKERY_CONCURRENCY: "1",
  ROOKERY_LOG_LEVEL: "info",
});

/** ms per iteration of one task in Rookery: from the RUNNING event to the COMPLETED event. */
async function rookeryIteration(i: number, padding: string): Promise<number> {
  const { task } = await server.client.submit({ prompt: `overhead ${i} ${padding}`, maxIterations: ITERATIONS });
  const events = await collectEvents(server.client, task!.id);
  const start = events.find((e) => e.status === TaskStatus.RUNNING)!;
  const end = events.at(-1)!;
  if (end.status !== TaskStatus.COMPLETED) throw new Error(`task ended ${TaskStatus[end.status]}`);
  return (timestampDate(end.time!).getTime() - timestampDate(start.time!).getTime()) / ITERATIONS;
}

/** ms per iteration of the same calls made directly with the SDK. */
async function bareIteration(i: number, padding: string): Promise<number> {
  const client = new OpenAI({ apiKey: "bench", baseURL: fake.baseURL });
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: `bare ${i} ${padding}` }];
  const tools: OpenAI.ChatCompletionTool[] = [{ type: "function", function: { name: "current_time", parameters: { type: "object" } } }];
  const t0 = performance.now();
  for (let turn = 0; turn < ITERATIONS; turn++) {
    const stream = client.chat.completions.stream({ model: "m", messages, tools, stream_options: { include_usage: true } });
    const message = (await stream.finalChatCompletion()).choices[0]!.message;
    messages.push({ role: "assistant", content: message.content ?? "", ...(message.tool_calls ? { tool_calls: message.tool_calls } : {}) });
    for (const call of message.tool_calls ?? []) messages.push({ role: "tool", tool_call_id: call.id, content: new Date().toISOString() });
  }
  return (performance.now() - t0) / ITERATIONS;
}

/** Median ms per iteration of Rookery and of the bare loop, tasks of the two interleaved. */
async function measure(padding: string, reply: number): Promise<{ rookery: number; bare: number }> {
  replyChars = reply;
  const rookery: number[] = [];
  const bare: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let t = 0; t < TASKS; t++) {
      rookery.push(await rookeryIteration(round * TASKS + t, padding));
      bare.push(await bareIteration(round * TASKS + t, padding));
    }
  }
  return { rookery: median(rookery), bare: median(bare) };
}

const short = await measure("", 0);
const long = await measure(LONG_PROMPT, 0);
const growing = await measure("", LONG_REPLY);
console.log(
  `Agent overhead on ${STORE}, ${ITERATIONS}-iteration tasks, ${TASKS} tasks x ${ROUNDS} rounds, medians (${new Date().toISOString()})`,
);
console.log(`bare openai SDK loop:   ${short.bare.toFixed(2)} ms per iteration`);
console.log(`through Rookery:        ${short.rookery.toFixed(2)} ms per iteration`);
console.log(`added per iteration:    ${(short.rookery - short.bare).toFixed(2)} ms (target <= 1 ms)`);
console.log(
  `with a 250 KB prompt:   ${long.bare.toFixed(2)} ms bare, ${long.rookery.toFixed(2)} ms through Rookery, added ${(long.rookery - long.bare).toFixed(2)} ms`,
);
console.log(
  `with 8 KB replies:      ${growing.bare.toFixed(2)} ms bare, ${growing.rookery.toFixed(2)} ms through Rookery, added ${(growing.rookery - growing.bare).toFixed(2)} ms`,
);
server.process.kill("SIGTERM");
await server.exited;
await fake.close();
await store.drop();
await stopBenchStores();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
