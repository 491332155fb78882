// The agent loop: one iteration is one model call plus the tool calls it asks
// for. It starts from the task's checkpoint when there is one, reports every
// finished iteration through `checkpoint` (which the caller stores, fenced by
// its lease), and returns how the run ended. Aborting `signal` stops it at the
// next await, the in-flight model call included.
import { randomUUID } from "node:crypto";
import { addUsage, type ChatMessage, type ErrorCode, type Checkpoint, type Task, type ToolCall } from "../domain/task.js";
import type { Progress } from "../domain/transitions.js";
import type { ModelClient, ReplyDelta } from "./model-client.js";
import { ModelCallError } from "./model-errors.js";
import type { Hooks } from "../hooks.js";
import { inSpan } from "../telemetry/spans.js";
import type { ToolRegistry } from "./tools/registry.js";

export type RunOutcome =
  | { kind: "completed"; result: string; progress: Progress }
  | { kind: "input_required"; calls: ToolCall[]; progress: Progress }
  | { kind: "failed"; error: string; code: ErrorCode; progress?: Progress };

export interface AgentDeps {
  models: ModelClient;
  tools: ToolRegistry;
  defaultProvider: string;
  defaultModel: string;
  /** Largest conversation (all message text, UTF-8 bytes) a task may build; it FAILS past it. */
  maxConversationBytes: number;
  hooks?: Hooks;
}

export interface RunContext {
  signal: AbortSignal;
  /** Receives the model's output of `iteration` as it streams (`retry` counts restarts of the call). */
  onOutput?: (iteration: number, retry: number, delta: ReplyDelta) => void;
  /** Stores a finished iteration; throws (LeaseLostError) when the run must stop. */
  checkpoint(progress: Progress): Promise<void>;
}

export async function runAgent(task: Task, deps: AgentDeps, ctx: RunContext): Promise<RunOutcome> {
  // The run's model calls only append to its conversation: a model worker keeps it between them.
  const conversation = randomUUID();
  try {
    return await iterate(task, deps, ctx, conversation);
  } finally {
    deps.models.endConversation(conversation);
  }
}

async function iterate(task: Task, deps: AgentDeps, ctx: RunContext, conversation: string): Promise<RunOutcome> {
  const provider = task.provider ?? deps.defaultProvider;
  const model = task.model ?? deps.defaultModel;
  const clientTools = new Set(task.tools.map((t) => t.name));
  const tools = [...deps.tools.definitions(), ...task.tools];
  const state =
    task.checkpoint ??
    initialCheckpoint(
      task,
      provider,
      model,
      tools.map((t) => t.name),
    );
  const messages = [...state.messages];
  let iteration = state.iteration;
  let usage = task.usage;
  let conversationBytes = messages.reduce((n, m) => n + messageBytes(m), 0);
  // Messages before this index are stored already; the rest go into the next event.
  let recorded = messages.length;
  const append = (message: ChatMessage) => {
    messages.push(message);
    conversationBytes += messageBytes(message);
  };

  const progress = (): Progress => ({
    iterations: iteration,
    usage,
    checkpoint: {
      ...state,
      iteration,
      maxIterations: task.maxIterations,
      messages: [...messages],
      lastCheckpointAt: new Date(),
    },
    added: messages.slice(recorded),
  });

  // Checked after every message the run adds, so that Get stays readable by every client.
  const tooLong = (): RunOutcome => ({
    kind: "failed",
    code: "output_limit",
    error:
      `the conversation passed ${deps.maxConversationBytes} bytes (ROOKERY_MAX_CONVERSATION_BYTES) in iteration ${iteration}; ` +
      "the task stops so that it stays readable by every client",
    progress: progress(),
  });

  for (;;) {
    if (iteration >= task.maxIterations) {
      return {
        kind: "failed",
        code: "max_iterations",
        error: `reached max_iterations (${task.maxIterations}) without a final answer; Resume with additional_iterations to continue`,
        progress: progress(),
      };
    }
    // No model call once the budget is spent: the iteration that crossed it was the last.
    if (task.maxTotalTokens !== undefined && usage.totalTokens >= task.maxTotalTokens) {
      return {
        kind: "failed",
        code: "token_budget",
        error: `used ${usage.totalTokens} of its ${task.maxTotalTokens} tokens (max_total_tokens); Resume with additional_tokens to continue`,
        progress: progress(),
      };
    }
    ctx.signal.throwIfAborted();
    let reply;
    try {
      const streaming = iteration + 1;
      reply = await deps.models.complete({
        provider,
        model,
        messages,
        tools,
        signal: ctx.signal,
        conversation,
        ...(ctx.onOutput ? { onDelta: (delta: ReplyDelta, retry: number) => ctx.onOutput!(streaming, retry, delta) } : {}),
      });
    } catch (error) {
      if (error instanceof ModelCallError) return { kind: "failed", error: error.message, code: error.code, progress: progress() };
      throw error;
    }
    deps.hooks?.reached("agent_loop.after_model_answer");
    iteration += 1;
    usage = addUsage(usage, reply.usage);
    append({
      role: "assistant",
      content: reply.content,
      ...(reply.toolCalls.length > 0 ? { toolCalls: reply.toolCalls } : {}),
    });
    if (conversationBytes > deps.maxConversationBytes) return tooLong();
    if (reply.toolCalls.length === 0) {
      return { kind: "completed", result: reply.content, progress: progress() };
    }

    const forClient = reply.toolCalls.filter((c) => clientTools.has(c.name));
    for (const call of reply.toolCalls.filter((c) => !clientTools.has(c.name))) {
      const attributes = { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call.name, "gen_ai.tool.call.id": call.id };
      const content = await inSpan(`execute_tool ${call.name}`, { attributes }, () =>
        deps.tools.run(call.name, call.arguments, ctx.signal),
      );
      append({ role: "tool", toolCallId: call.id, content });
    }
    if (conversationBytes > deps.maxConversationBytes) return tooLong();
    if (forClient.length > 0) {
      return { kind: "input_required", calls: forClient, progress: progress() };
    }
    await ctx.checkpoint(progress());
    recorded = messages.length;
  }
}

function messageBytes(m: ChatMessage): number {
  let n = Buffer.byteLength(m.content, "utf8");
  for (const c of m.toolCalls ?? []) n += Buffer.byteLength(c.arguments, "utf8") + c.name.length + c.id.length;
  return n;
}

function initialCheckpoint(task: Task, provider: string, model: string, toolsEnabled: string[]): Checkpoint {
  const messages: ChatMessage[] = [];
  if (task.systemPrompt) messages.push({ role: "system", content: task.systemPrompt });
  messages.push({ role: "user", content: task.prompt });
  for (const followUp of task.followUps ?? []) messages.push({ role: "user", content: followUp });
  return {
    sessionId: randomUUID(),
    iteration: 0,
    maxIterations: task.maxIterations,
    messages,
    initialPrompt: task.prompt,
    systemPrompt: task.systemPrompt,
    provider,
    model,
    toolsEnabled,
    lastCheckpointAt: new Date(),
  };
}
