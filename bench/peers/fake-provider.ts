// The zero-latency OpenAI-compatible provider of the benchmarks, in its own
// process so that neither the system under test nor the benchmark's clients
// share a CPU budget with it. Prints "ready <baseURL>".
//
// Any prompt is answered at once with a streamed "done", except prompts of the
// form "paced <events> <gap ms> ...": their first call waits for the command
// "open <prompt>" on stdin, then each reply comes <gap ms> after its call, a
// call of the tool current_time until <events> iterations are done.
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeOpenAI } from "../../test/support/fake-openai.js";

const gates = new Map<string, () => void>();
const gate = (prompt: string) => new Promise<void>((resolve) => gates.set(prompt, resolve));

const fake = await FakeOpenAI.start();
fake.respond(async ({ prompt, turn }) => {
  const [kind, events, gapMs] = prompt.split(" ");
  if (kind !== "paced") return { content: "done" };
  if (turn === 0) await gate(prompt);
  else await sleep(Number(gapMs));
  return turn < Number(events) ? { toolCalls: [{ name: "current_time", arguments: "{}" }] } : { content: "done" };
});
setInterval(() => fake.calls.splice(0), 1000).unref(); // it records calls; a benchmark makes many
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.startsWith("open ")) gates.get(line.slice("open ".length))?.();
});
console.log(`ready ${fake.baseURL}`);
