// Issue 12, output throughput: tokens per second a watcher receives through
// Watch with include_output, beside the same stream read straight from the
// provider with the openai SDK, and the server's CPU per token. The provider
// (its own process) sends TOKENS 4-character pieces as fast as it can; both
// sides count pieces (one piece, one token) from the moment the model call may
// start to the last one received. Median of 5 rounds, the two sides taking
// turns at going first, after a round that warms both up and is not counted (a
// fresh process reads its first streams on cold code: the SDK in this process
// read its first one ~40% slower than the next).
// Run: npx tsx bench/output-throughput.ts [tokens]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { TaskStatus } from "../gen/rookery/v1/task_pb.js";
import { startChildServer } from "../test/support/child-server.js";
import { cpuMicros, median, sideBySide, waitFor } from "./lib/measure.js";
import { startScript } from "./lib/processes.js";
import { nowMs, rookeryWatchStreams } from "./lib/watchers.js";

const TOKENS = Number(process.argv[2] ?? 20_000);
const ROUNDS = 5;

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-output-"));
const provider = await startScript("bench/peers/fake-provider.ts");
const server = await startChildServer({
  ROOKERY_SQLITE_PATH: join(dir, "output.db"),
  OPENAI_BASE_URL: provider.words[0]!,
  OPENAI_API_KEY: "bench",
  ROOKERY_CONCURRENCY: "1",
  ROOKERY_MAX_REPLY_BYTES: String(64 * 1024 * 1024),
  ROOKERY_MAX_CONVERSATION_BYTES: String(64 * 1024 * 1024),
});
const sdk = new OpenAI({ apiKey: "bench", baseURL: provider.words[0]!, maxRetries: 0 });

/** Tokens per second read straight from the provider with the SDK. */
async function direct(round: number): Promise<number> {
  const start = nowMs();
  let pieces = 0;
  const stream = await sdk.chat.completions.create({
    model: "m",
    messages: [{ role: "user", content: `burst ${TOKENS} direct ${round}` }],
    stream: true,
  });
  for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) pieces += 1;
  if (pieces !== TOKENS) throw new Error(`direct read ${pieces} of ${TOKENS} pieces`);
  return TOKENS / ((nowMs() - start) / 1000);
}

/** Tokens per second received through Rookery's Watch, and server CPU per token. */
async function throughWatch(round: number): Promise<{ rate: number; cpuPerToken: number }> {
  const prompt = `burst ${TOKENS} gated ${round}`;
  const { task } = await server.client.submit({ prompt, maxIterations: 1 });
  await waitFor(async () => (await server.client.get({ id: task!.id })).task!.status === TaskStatus.RUNNING, "task to run");
  let text = "";
  let last = 0;
  const watched = (async () => {
    for await (const r of server.client.watch({ id: task!.id, includeOutput: true, afterSequence: 2n })) {
      if (r.output) {
        text += r.output.text;
        last = nowMs();
      }
    }
  })();
  await waitFor(async () => (await rookeryWatchStreams(server.httpPort)) === 1, "the watcher");
  const cpu = cpuMicros(server.process.pid!);
  const start = nowMs();
  provider.send(`open ${prompt}`);
  await watched;
  if (text.length !== TOKENS * 4) throw new Error(`the watcher got ${text.length / 4} of ${TOKENS} tokens`);
  return { rate: TOKENS / ((last - start) / 1000), cpuPerToken: (cpuMicros(server.process.pid!) - cpu) / TOKENS };
}

const rows = { direct: [] as number[], watch: [] as number[], cpu: [] as number[] };
for (let round = 0; round <= ROUNDS; round++) {
  let d: number;
  let w: { rate: number; cpuPerToken: number };
  if (round % 2 === 0) {
    d = await direct(round);
    w = await throughWatch(round);
  } else {
    w = await throughWatch(round);
    d = await direct(round);
  }
  if (round === 0) continue; // the warm-up
  rows.direct.push(d);
  rows.watch.push(w.rate);
  rows.cpu.push(w.cpuPerToken);
}
console.log(`Output throughput, ${TOKENS} tokens of 4 characters, median of ${ROUNDS} rounds (${new Date().toISOString()})`);
console.log(`SDK reading the provider directly   ${Math.round(median(rows.direct)).toLocaleString("en").padStart(9)} tokens/s`);
console.log(`watcher through Rookery's Watch     ${Math.round(median(rows.watch)).toLocaleString("en").padStart(9)} tokens/s`);
console.log(`ratio (side by side in each round)  ${sideBySide(rows.watch, rows.direct)}; target >= 0.9x`);
console.log(`server CPU per token                ${median(rows.cpu).toFixed(1)} µs`);
server.process.kill("SIGTERM");
await server.exited;
await provider.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
