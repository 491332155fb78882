// The zero-latency OpenAI-compatible provider of the benchmarks, in its own
// process so that neither the system under test nor the benchmark's clients
// share a CPU budget with it. Prints "ready <baseURL>".
//
// Any prompt is answered at once with a streamed "done", except:
//   - "paced <events> <gap ms> <output pieces> ...": the first call waits for the
//     command "open <prompt>" on stdin, then each reply comes <gap ms> after its
//     call, a call of the tool current_time until <events> iterations are done;
//     with <output pieces> > 0 each reply first streams that many 4-character
//     pieces of text, 1 ms apart;
//   - "burst <tokens> ...": <tokens> 4-character pieces of text, sent as fast as
//     the socket takes them; with "gated" in the prompt, after "open <prompt>".
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeOpenAI } from "../../test/support/fake-openai.js";

// A prompt's gate may be opened before its first call arrives (the call can lag the task's
// RUNNING status, while a model worker thread starts): an "open" is remembered.
const gates = new Map<string, () => void>();
const opened = new Set<string>();
const gate = (prompt: string) => (opened.has(prompt) ? Promise.resolve() : new Promise<void>((resolve) => gates.set(prompt, resolve)));

const fake = await FakeOpenAI.start();
/** `n` pieces of 4 characters, each one token. */
export const tokens = (n: number) => Array.from({ length: n }, (_, i) => `t${String(i % 100).padStart(2, "0")} `).join("");

fake.respond(async ({ prompt, turn }) => {
  const [kind, count, gapMs, pieces] = prompt.split(" ");
  if (kind === "burst") {
    if (prompt.includes("gated")) await gate(prompt);
    return { content: tokens(Number(count)), pieceSize: 4 };
  }
  if (kind !== "paced") return { content: "done" };
  if (turn === 0) await gate(prompt);
  else await sleep(Number(gapMs));
  const output = Number(pieces ?? 0) > 0 ? { content: tokens(Number(pieces)), pieceSize: 4, paceMs: 1 } : {};
  return turn < Number(count) ? { toolCalls: [{ name: "current_time", arguments: "{}" }], ...output } : { content: "done" };
});
setInterval(() => fake.calls.splice(0), 1000).unref(); // it records calls; a benchmark makes many
createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.startsWith("open ")) return;
  const prompt = line.slice("open ".length);
  opened.add(prompt);
  gates.get(prompt)?.();
});
console.log(`ready ${fake.baseURL}`);
