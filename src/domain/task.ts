// The task record as the service sees it: the BackgroundTask fields of the
// Rust runtime plus lease, labels, idempotency key, owner and usage.
import type { WebhookConfig } from "./webhooks.js";

export const TASK_STATUSES = ["pending", "running", "input_required", "completed", "failed", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** The statuses a task is active in (counted by the per-key quota): not yet ended. */
export const ACTIVE_STATUSES: readonly TaskStatus[] = ["pending", "running", "input_required"];

/** Why a task FAILED: a stable code beside the message (TaskErrorCode in the proto). */
export const ERROR_CODES = [
  "max_iterations",
  "token_budget",
  "timeout",
  "queue_timeout",
  "provider_error",
  "provider_refused",
  "malformed_reply",
  "output_limit",
  "takeovers",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const TERMINAL_STATUSES: readonly TaskStatus[] = ["completed", "failed", "cancelled"];

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export interface ToolCall {
  id: string;
  name: string;
  /** JSON object text, as the model wrote it. */
  arguments: string;
}

export interface ToolDefinition {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

export interface ToolResult {
  toolCallId: string;
  content: string;
  isError: boolean;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
}

/** The agent state a run resumes from instead of starting over. */
export interface Checkpoint {
  sessionId: string;
  iteration: number;
  maxIterations: number;
  messages: ChatMessage[];
  initialPrompt: string;
  systemPrompt: string;
  provider: string;
  model: string;
  toolsEnabled: string[];
  lastCheckpointAt: Date;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export const ZERO_USAGE: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0 };

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}

/** Held by the worker running the task; every write of the run is fenced by `token`. */
export interface Lease {
  token: string;
  owner: string;
  expiresAt: Date;
}

export interface Task {
  id: string;
  prompt: string;
  systemPrompt: string;
  status: TaskStatus;
  result?: string;
  error?: string;
  createdAt: Date;
  updatedAt: Date;
  iterations: number;
  maxIterations: number;
  provider?: string;
  model?: string;
  labels: Record<string, string>;
  checkpoint?: Checkpoint;
  pendingToolCalls: ToolCall[];
  usage: Usage;
  tools: ToolDefinition[];
  requestId?: string;
  /** The principal (API key id) that submitted the task; "" when auth is off. */
  owner: string;
  lease?: Lease;
  /** Sequence of the last event written for this task. */
  sequence: number;
  /** Runs taken over in a row from holders that died (lease expired) without progress. */
  takeovers?: number;
  /** Resume messages given before the task ever ran: they follow the prompt when it starts. */
  followUps?: string[];
  /** Set on a BASIC view whose prompt was cut short. */
  promptTruncated?: boolean;
  /** Runs started so far: every claim (a takeover too) starts one. Numbers output attempts. */
  runs?: number;
  /** Set when FAILED. */
  errorCode?: ErrorCode;
  /** Tokens the task may use in all; no limit when unset. */
  maxTotalTokens?: number;
  /** It FAILS with TIMEOUT unless it has ended by then. */
  deadline?: Date;
  /** While PENDING: it FAILS with QUEUE_TIMEOUT unless claimed by then. */
  queueDeadline?: Date;
  /** Longest stay in PENDING, to set queueDeadline when it enters PENDING again. */
  queueTimeoutMs?: number;
  /** Kept this long after it ends, then deleted; kept for ever when unset. */
  retentionMs?: number;
  /** Where its transitions are posted (see webhooks.ts). */
  webhook?: WebhookConfig;
  /** The W3C trace context it was submitted in: its runs are spans of that trace. */
  traceparent?: string;
  /** When a terminal task is deleted: the end plus retentionMs. */
  purgeAt?: Date;
}

export type TaskEventKind = "status_changed" | "iteration_checkpointed";

export interface TaskEvent {
  taskId: string;
  sequence: number;
  time: Date;
  kind: TaskEventKind;
  status: TaskStatus;
  previousStatus?: TaskStatus;
  iterations: number;
  /** The task right after the event, in the BASIC view. */
  task: Task;
  /** Messages the event added to the conversation (see TaskEvent.messages in the proto). */
  messages?: ChatMessage[];
}

/** A task without its checkpoint and lease: the FULL view of List. */
export function summarize(task: Task): Task {
  const { checkpoint: _checkpoint, lease: _lease, ...rest } = task;
  return rest;
}

/** Characters of the prompt a BASIC view keeps. */
export const BASIC_PROMPT_CHARS = 1_000;

/**
 * A task as a List row or an event snapshot carries it (the BASIC view), small
 * whatever the task holds: no checkpoint, lease, result, system prompt, tool
 * definitions or follow-ups, and the prompt cut to BASIC_PROMPT_CHARS.
 */
export function basicView(task: Task): Task {
  const { checkpoint: _c, lease: _l, result: _r, followUps: _f, ...rest } = task;
  const basic: Task = { ...rest, systemPrompt: "", tools: [] };
  const cut = promptHead(task.prompt);
  if (cut !== undefined) {
    basic.prompt = cut;
    basic.promptTruncated = true;
  }
  return basic;
}

/**
 * The prompt's first BASIC_PROMPT_CHARS characters (code points) if it has more, else
 * undefined. Every event carries a BASIC view, so this looks at the head of the prompt
 * only: spreading a 256 KiB prompt into characters took ~1.5 ms per event.
 */
export function promptHead(prompt: string): string | undefined {
  // A string of at most N UTF-16 units has at most N code points.
  if (prompt.length <= BASIC_PROMPT_CHARS) return undefined;
  // N code points take at most 2N units; a pair cut at the slice's end lies past the first N.
  const head = [...prompt.slice(0, 2 * BASIC_PROMPT_CHARS)];
  // Past 2N units there is more than N code points whatever the slice holds.
  if (head.length <= BASIC_PROMPT_CHARS && prompt.length <= 2 * BASIC_PROMPT_CHARS) return undefined;
  return head.slice(0, BASIC_PROMPT_CHARS).join("");
}
