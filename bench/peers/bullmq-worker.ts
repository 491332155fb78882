// The BullMQ side of the end-to-end figure: a worker process whose job makes
// the same streamed `openai` SDK call Rookery's agent loop makes (same tools
// offered), or nothing at all (mode "noop", the queue's own floor).
// Usage: bullmq-worker.ts <redis port> <queue> <sdk|noop> <concurrency> [provider baseURL]
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { ToolRegistry } from "../../src/agent/tools/registry.js";

const [port, queue, mode, concurrency, baseURL] = process.argv.slice(2);
const openai = new OpenAI({ baseURL, apiKey: "bench" });
const tools = new ToolRegistry().definitions().map((t) => ({
  type: "function" as const,
  function: { name: t.name, description: t.description, parameters: t.parameters },
}));

async function callModel(prompt: string): Promise<string> {
  const stream = openai.chat.completions.stream({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: prompt }],
    tools,
    stream_options: { include_usage: true },
  });
  const completion = await stream.finalChatCompletion();
  return completion.choices[0]?.message.content ?? "";
}

const connection = new Redis({ port: Number(port), host: "127.0.0.1", maxRetriesPerRequest: null });
const worker = new Worker<{ prompt: string }, string>(queue!, async (job) => (mode === "sdk" ? callModel(job.data.prompt) : ""), {
  connection,
  concurrency: Number(concurrency),
});
await worker.waitUntilReady();
console.log("ready");
process.on("SIGTERM", () => void worker.close().then(() => process.exit(0)));
