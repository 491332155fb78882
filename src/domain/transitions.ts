// Every change to a stored task goes through `commitTransition`: it checks the
// status change against the state machine, stamps the time, advances the
// event sequence and builds the event. Store adapters call it inside their
// atomic read-check-write, so a refused transition writes nothing.
import { randomUUID } from "node:crypto";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  LeaseLostError,
  type FieldViolation,
} from "./errors.js";
import {
  ZERO_USAGE,
  summarize,
  type ChatMessage,
  type Checkpoint,
  type Task,
  type TaskEvent,
  type TaskEventKind,
  type TaskStatus,
  type ToolCall,
  type ToolResult,
  type Usage,
} from "./task.js";

const ALLOWED: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ["running", "cancelled"],
  // running -> running: a worker takes over a task whose lease expired.
  running: ["running", "pending", "input_required", "completed", "failed", "cancelled"],
  input_required: ["pending", "cancelled"],
  completed: ["pending"],
  failed: ["pending"],
  cancelled: ["pending"],
};

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return ALLOWED[from].includes(to);
}

/** What a named transition decides: the next task and the kind of event to record. */
export interface Transition {
  kind: TaskEventKind;
  next: Task;
}

export type Decide = (current: Task, now: Date) => Transition;

export interface Committed {
  task: Task;
  event: TaskEvent;
}

export function commitTransition(current: Task, decide: Decide, now: Date): Committed {
  const { kind, next } = decide(current, now);
  if (kind === "status_changed" && !canTransition(current.status, next.status)) {
    throw new FailedPreconditionError(
      current.id,
      current.status,
      `task ${current.id} cannot go from ${current.status} to ${next.status}`,
    );
  }
  const task: Task = { ...next, updatedAt: now, sequence: current.sequence + 1 };
  return { task, event: makeEvent(task, kind, current.status, now) };
}

function makeEvent(task: Task, kind: TaskEventKind, previous: TaskStatus | undefined, now: Date): TaskEvent {
  return {
    taskId: task.id,
    sequence: task.sequence,
    time: now,
    kind,
    status: task.status,
    ...(previous === undefined ? {} : { previousStatus: previous }),
    iterations: task.iterations,
    task: summarize(task),
  };
}

export interface NewTask {
  prompt: string;
  systemPrompt: string;
  provider?: string;
  model?: string;
  maxIterations: number;
  labels: Record<string, string>;
  tools: Task["tools"];
  requestId?: string;
  owner: string;
}

/** The event that records a task's creation, rebuilt from the task as first stored. */
export function creationEvent(task: Task): TaskEvent {
  return makeEvent({ ...task, sequence: 1 }, "status_changed", undefined, task.createdAt);
}

/** A new task in PENDING and its first event (sequence 1). */
export function createTask(input: NewTask, now: Date, id: string = randomUUID()): Committed {
  const task: Task = {
    id,
    prompt: input.prompt,
    systemPrompt: input.systemPrompt,
    status: "pending",
    createdAt: now,
    updatedAt: now,
    iterations: 0,
    maxIterations: input.maxIterations,
    ...(input.provider ? { provider: input.provider } : {}),
    ...(input.model ? { model: input.model } : {}),
    labels: input.labels,
    pendingToolCalls: [],
    usage: { ...ZERO_USAGE },
    tools: input.tools,
    ...(input.requestId ? { requestId: input.requestId } : {}),
    owner: input.owner,
    sequence: 1,
  };
  return { task, event: makeEvent(task, "status_changed", undefined, now) };
}

function withoutOutcome(task: Task): Task {
  const { result: _r, error: _e, lease: _l, ...rest } = task;
  return { ...rest, pendingToolCalls: [] };
}

export function isClaimable(task: Task, now: Date): boolean {
  if (task.status === "pending") return true;
  return task.status === "running" && (!task.lease || task.lease.expiresAt <= now);
}

/** PENDING (or RUNNING with an expired lease) -> RUNNING under a fresh lease. */
export function claim(owner: string, leaseMs: number, token: string = randomUUID()): Decide {
  return (t, now) => {
    if (!isClaimable(t, now)) {
      throw new FailedPreconditionError(t.id, t.status, `task ${t.id} is not claimable`);
    }
    const lease = { token, owner, expiresAt: new Date(now.getTime() + leaseMs) };
    return { kind: "status_changed", next: { ...t, status: "running", lease } };
  };
}

function assertLease(t: Task, token: string): void {
  if (t.status !== "running" || t.lease?.token !== token) throw new LeaseLostError(t.id);
}

/** What one finished iteration adds to the task. */
export interface Progress {
  checkpoint: Checkpoint;
  iterations: number;
  usage: Usage;
}

export function checkpoint(token: string, progress: Progress): Decide {
  return (t) => {
    assertLease(t, token);
    return { kind: "iteration_checkpointed", next: { ...t, ...progress } };
  };
}

export function complete(token: string, result: string, progress: Progress): Decide {
  return (t) => {
    assertLease(t, token);
    return { kind: "status_changed", next: { ...withoutOutcome(t), ...progress, status: "completed", result } };
  };
}

export function fail(token: string, error: string, progress?: Progress): Decide {
  return (t) => {
    assertLease(t, token);
    return { kind: "status_changed", next: { ...withoutOutcome(t), ...progress, status: "failed", error } };
  };
}

export function requireInput(token: string, calls: ToolCall[], progress: Progress): Decide {
  return (t) => {
    assertLease(t, token);
    return {
      kind: "status_changed",
      next: { ...withoutOutcome(t), ...progress, status: "input_required", pendingToolCalls: calls },
    };
  };
}

/** RUNNING -> PENDING: the worker hands the task back (shutdown) so another can claim it at once. */
export function release(token: string): Decide {
  return (t) => {
    assertLease(t, token);
    return { kind: "status_changed", next: { ...withoutOutcome(t), status: "pending" } };
  };
}

const CANCELLABLE: readonly TaskStatus[] = ["pending", "running", "input_required"];

export function cancel(reason: string): Decide {
  return (t) => {
    if (!CANCELLABLE.includes(t.status)) {
      throw new FailedPreconditionError(t.id, t.status, `task ${t.id} is ${t.status} and cannot be cancelled`);
    }
    return {
      kind: "status_changed",
      next: { ...withoutOutcome(t), status: "cancelled", error: reason || "cancelled by caller" },
    };
  };
}

export interface ResumeInput {
  message?: string;
  toolResults: ToolResult[];
  additionalIterations?: number;
}

const RESUMABLE: readonly TaskStatus[] = ["input_required", "completed", "failed", "cancelled"];

/** INPUT_REQUIRED | COMPLETED | FAILED | CANCELLED -> PENDING, continuing from the checkpoint. */
export function resume(input: ResumeInput): Decide {
  return (t) => {
    if (!RESUMABLE.includes(t.status)) {
      throw new FailedPreconditionError(
        t.id,
        t.status,
        `task ${t.id} is ${t.status}; only input_required, completed, failed or cancelled tasks can be resumed`,
      );
    }
    const violations = resumeViolations(t, input);
    if (violations.length > 0) throw new InvalidArgumentError(violations);

    const maxIterations = t.maxIterations + (input.additionalIterations ?? 0);
    if (t.iterations >= maxIterations) {
      throw new FailedPreconditionError(
        t.id,
        t.status,
        `task ${t.id} has used all ${t.maxIterations} iterations; resume with additional_iterations`,
      );
    }
    const added: ChatMessage[] = [
      ...orderedToolResults(t.pendingToolCalls, input.toolResults).map(
        (r): ChatMessage => ({
          role: "tool",
          toolCallId: r.toolCallId,
          content: r.isError ? `error: ${r.content}` : r.content,
        }),
      ),
      ...(input.message ? [{ role: "user" as const, content: input.message }] : []),
    ];
    const checkpointed = t.checkpoint
      ? { ...t.checkpoint, maxIterations, messages: [...t.checkpoint.messages, ...added] }
      : undefined;
    const next: Task = { ...withoutOutcome(t), status: "pending", maxIterations };
    if (checkpointed) next.checkpoint = checkpointed;
    else if (input.message) {
      // Never ran: the follow-up message joins the prompt's conversation when it starts.
      next.prompt = `${t.prompt}\n\n${input.message}`;
    }
    return { kind: "status_changed", next };
  };
}

function resumeViolations(t: Task, input: ResumeInput): FieldViolation[] {
  const violations: FieldViolation[] = [];
  if (t.status !== "input_required") {
    if (input.toolResults.length > 0) {
      violations.push({ field: "tool_results", description: `task is ${t.status}; tool results are only accepted when input_required` });
    }
    if (t.status === "completed" && !input.message) {
      violations.push({ field: "message", description: "required to continue a completed task" });
    }
    return violations;
  }
  const pending = new Set(t.pendingToolCalls.map((c) => c.id));
  const seen = new Set<string>();
  input.toolResults.forEach((r, i) => {
    if (!pending.has(r.toolCallId)) {
      violations.push({ field: `tool_results[${i}].tool_call_id`, description: `no pending tool call has id "${r.toolCallId}"` });
    } else if (seen.has(r.toolCallId)) {
      violations.push({ field: `tool_results[${i}].tool_call_id`, description: `duplicate result for "${r.toolCallId}"` });
    }
    seen.add(r.toolCallId);
  });
  const missing = [...pending].filter((id) => !seen.has(id));
  if (missing.length > 0) {
    violations.push({ field: "tool_results", description: `missing results for pending tool calls: ${missing.join(", ")}` });
  }
  return violations;
}

function orderedToolResults(calls: ToolCall[], results: ToolResult[]): ToolResult[] {
  const byId = new Map(results.map((r) => [r.toolCallId, r]));
  return calls.flatMap((c) => {
    const r = byId.get(c.id);
    return r ? [r] : [];
  });
}
