// A conversation that grows by one calculator call an iteration, and the progress
// of each iteration: what the store tests write to watch a conversation grow.
import type { ChatMessage, Task } from "../../src/domain/task.js";
import type { Progress } from "../../src/domain/transitions.js";

/** The conversation after `n` iterations that each call the calculator. */
export const conversationAfter = (n: number): ChatMessage[] => [
  { role: "user", content: "grow" },
  ...Array.from({ length: n }, (_, i): ChatMessage[] => [
    { role: "assistant", content: `step ${i}`, toolCalls: [{ id: `call_${i}`, name: "calculator", arguments: `{"expression":"${i}+1"}` }] },
    { role: "tool", toolCallId: `call_${i}`, content: String(i + 1) },
  ]).flat(),
];

export const progressAt = (task: Task, n: number): Progress => ({
  iterations: n,
  usage: { promptTokens: n, completionTokens: n, totalTokens: 2 * n },
  checkpoint: {
    sessionId: "s",
    iteration: n,
    maxIterations: task.maxIterations,
    messages: conversationAfter(n),
    initialPrompt: "grow",
    systemPrompt: "",
    provider: "openai",
    model: "m",
    toolsEnabled: ["calculator"],
    lastCheckpointAt: new Date(),
  },
  added: conversationAfter(n).slice(-2),
});
