// The stored form of a task and of an event: snake_case documents whose field
// names mirror the Rust runtime's BackgroundTask. Both adapters store these;
// MongoDB keeps the Dates, SQLite's JSON turns them into ISO strings, and the
// readers here accept either.
import type { ChatMessage, Checkpoint, Task, TaskEvent, ToolCall } from "../domain/task.js";

export interface TaskDocument {
  _id: string;
  prompt: string;
  system_prompt: string;
  status: Task["status"];
  result?: string;
  error?: string;
  created_at: Date;
  updated_at: Date;
  iterations: number;
  max_iterations: number;
  provider?: string;
  model?: string;
  labels: Record<string, string>;
  checkpoint?: CheckpointDocument;
  pending_tool_calls: ToolCall[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  tools: Task["tools"];
  request_id?: string;
  owner: string;
  lease?: { token: string; owner: string; expires_at: Date };
  sequence: number;
  takeovers?: number;
  follow_ups?: string[];
  prompt_truncated?: boolean;
  runs?: number;
  error_code?: Task["errorCode"];
  max_total_tokens?: number;
  deadline?: Date;
  queue_deadline?: Date;
  queue_timeout_ms?: number;
  retention_ms?: number;
  purge_at?: Date;
  webhook?: { url: string; statuses: Task["status"][] };
  traceparent?: string;
}

export interface MessageDocument {
  role: ChatMessage["role"];
  content: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

interface CheckpointDocument {
  session_id: string;
  iteration: number;
  max_iterations: number;
  messages: MessageDocument[];
  initial_prompt: string;
  system_prompt: string;
  provider: string;
  model: string;
  tools_enabled: string[];
  last_checkpoint_at: Date;
}

export interface EventDocument {
  task_id: string;
  sequence: number;
  time: Date;
  kind: TaskEvent["kind"];
  status: TaskEvent["status"];
  previous_status?: TaskEvent["status"];
  iterations: number;
  task: TaskDocument;
  messages?: MessageDocument[];
}

const date = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));

/** Copies only the keys whose value is defined, so documents carry no nulls. */
function defined<T extends object>(record: T): T {
  const copy: Record<string, unknown> = {};
  for (const key in record) if (record[key] !== undefined) copy[key] = record[key];
  return copy as T;
}

export function toTaskDocument(t: Task): TaskDocument {
  return defined<TaskDocument>({
    _id: t.id,
    prompt: t.prompt,
    system_prompt: t.systemPrompt,
    status: t.status,
    result: t.result,
    error: t.error,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    iterations: t.iterations,
    max_iterations: t.maxIterations,
    provider: t.provider,
    model: t.model,
    labels: t.labels,
    checkpoint: t.checkpoint && toCheckpointDocument(t.checkpoint),
    pending_tool_calls: t.pendingToolCalls,
    usage: {
      prompt_tokens: t.usage.promptTokens,
      completion_tokens: t.usage.completionTokens,
      total_tokens: t.usage.totalTokens,
    },
    tools: t.tools,
    request_id: t.requestId,
    owner: t.owner,
    lease: t.lease && { token: t.lease.token, owner: t.lease.owner, expires_at: t.lease.expiresAt },
    sequence: t.sequence,
    takeovers: t.takeovers,
    follow_ups: t.followUps,
    prompt_truncated: t.promptTruncated,
    runs: t.runs,
    error_code: t.errorCode,
    max_total_tokens: t.maxTotalTokens,
    deadline: t.deadline,
    queue_deadline: t.queueDeadline,
    queue_timeout_ms: t.queueTimeoutMs,
    retention_ms: t.retentionMs,
    purge_at: t.purgeAt,
    webhook: t.webhook && { url: t.webhook.url, statuses: t.webhook.statuses },
    traceparent: t.traceparent,
  });
}

export function fromTaskDocument(d: TaskDocument): Task {
  return defined<Task>({
    id: d._id,
    prompt: d.prompt,
    systemPrompt: d.system_prompt,
    status: d.status,
    result: d.result ?? undefined,
    error: d.error ?? undefined,
    createdAt: date(d.created_at),
    updatedAt: date(d.updated_at),
    iterations: d.iterations,
    maxIterations: d.max_iterations,
    provider: d.provider ?? undefined,
    model: d.model ?? undefined,
    labels: d.labels ?? {},
    checkpoint: d.checkpoint ? fromCheckpointDocument(d.checkpoint) : undefined,
    pendingToolCalls: d.pending_tool_calls ?? [],
    usage: {
      promptTokens: d.usage?.prompt_tokens ?? 0,
      completionTokens: d.usage?.completion_tokens ?? 0,
      totalTokens: d.usage?.total_tokens ?? 0,
    },
    tools: d.tools ?? [],
    requestId: d.request_id ?? undefined,
    owner: d.owner ?? "",
    lease: d.lease ? { token: d.lease.token, owner: d.lease.owner, expiresAt: date(d.lease.expires_at) } : undefined,
    sequence: d.sequence,
    takeovers: d.takeovers ?? undefined,
    followUps: d.follow_ups ?? undefined,
    promptTruncated: d.prompt_truncated ?? undefined,
    runs: d.runs ?? undefined,
    errorCode: d.error_code ?? undefined,
    maxTotalTokens: d.max_total_tokens ?? undefined,
    deadline: d.deadline ? date(d.deadline) : undefined,
    queueDeadline: d.queue_deadline ? date(d.queue_deadline) : undefined,
    queueTimeoutMs: d.queue_timeout_ms ?? undefined,
    retentionMs: d.retention_ms ?? undefined,
    purgeAt: d.purge_at ? date(d.purge_at) : undefined,
    webhook: d.webhook ? { url: d.webhook.url, statuses: d.webhook.statuses } : undefined,
    traceparent: d.traceparent ?? undefined,
  });
}

export function toMessageDocument(m: ChatMessage): MessageDocument {
  return defined<MessageDocument>({ role: m.role, content: m.content, tool_calls: m.toolCalls, tool_call_id: m.toolCallId });
}

function fromMessageDocument(m: MessageDocument): ChatMessage {
  return defined<ChatMessage>({ role: m.role, content: m.content, toolCalls: m.tool_calls, toolCallId: m.tool_call_id });
}

function toCheckpointDocument(c: Checkpoint): CheckpointDocument {
  return {
    session_id: c.sessionId,
    iteration: c.iteration,
    max_iterations: c.maxIterations,
    messages: c.messages.map(toMessageDocument),
    initial_prompt: c.initialPrompt,
    system_prompt: c.systemPrompt,
    provider: c.provider,
    model: c.model,
    tools_enabled: c.toolsEnabled,
    last_checkpoint_at: c.lastCheckpointAt,
  };
}

function fromCheckpointDocument(d: CheckpointDocument): Checkpoint {
  return {
    sessionId: d.session_id,
    iteration: d.iteration,
    maxIterations: d.max_iterations,
    messages: d.messages.map(fromMessageDocument),
    initialPrompt: d.initial_prompt,
    systemPrompt: d.system_prompt,
    provider: d.provider,
    model: d.model,
    toolsEnabled: d.tools_enabled,
    lastCheckpointAt: date(d.last_checkpoint_at),
  };
}

export function toEventDocument(e: TaskEvent): EventDocument {
  return defined<EventDocument>({
    task_id: e.taskId,
    sequence: e.sequence,
    time: e.time,
    kind: e.kind,
    status: e.status,
    previous_status: e.previousStatus,
    iterations: e.iterations,
    task: toTaskDocument(e.task),
    messages: e.messages?.map(toMessageDocument),
  });
}

export function fromEventDocument(d: EventDocument): TaskEvent {
  return defined<TaskEvent>({
    taskId: d.task_id,
    sequence: d.sequence,
    time: date(d.time),
    kind: d.kind,
    status: d.status,
    previousStatus: d.previous_status ?? undefined,
    iterations: d.iterations,
    task: fromTaskDocument(d.task),
    messages: d.messages?.map(fromMessageDocument),
  });
}
