// Every change to a stored task goes through `commitTransition`: it checks the
// status change against the state machine, stamps the time, advances the
// event sequence and builds the event. Store adapters call it inside their
// atomic read-check-write, so a refused transition writes nothing.
import { randomUUID } from "node:crypto";
import { timeOrderedId } from "./ids.js";
import { deliveryFor, type WebhookConfig, type WebhookDelivery } from "./webhooks.js";
import { FailedPreconditionError, InvalidArgumentError, LeaseLostError, type FieldViolation } from "./errors.js";
import {
  ZERO_USAGE,
  isTerminal,
  type ErrorCode,
  basicView,
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

/** The named transitions: verbs, each one atomic store write that records one event. */
export type Verb = "claim" | "checkpoint" | "complete" | "fail" | "expire" | "require_input" | "release" | "cancel" | "resume";

interface Rule {
  /** Statuses the verb may be applied in. */
  from: readonly TaskStatus[];
  /** The status it leaves the task in. */
  to: TaskStatus;
  /** A write of the run holding the lease: refused with LeaseLostError unless the token still holds it. */
  fenced: boolean;
  /** What the refusal says when the task is in another status. */
  refusal: (id: string, status: TaskStatus) => string;
}

/**
 * The state machine, in one table: every event is checked against it in
 * commitTransition, whichever verb made it.
 */
const RULES: Record<Verb, Rule> = {
  // running -> running: a worker takes over a task whose lease expired (claim checks the expiry).
  claim: { from: ["pending", "running"], to: "running", fenced: false, refusal: (id) => `task ${id} is not claimable` },
  checkpoint: { from: ["running"], to: "running", fenced: true, refusal: leaseLost },
  complete: { from: ["running"], to: "completed", fenced: true, refusal: leaseLost },
  fail: { from: ["running"], to: "failed", fenced: true, refusal: leaseLost },
  // A deadline passed while no run held the task (expire() checks which one).
  expire: {
    from: ["pending", "input_required"],
    to: "failed",
    fenced: false,
    refusal: (id, status) => `task ${id} is ${status}; only pending or input_required tasks expire outside a run`,
  },
  require_input: { from: ["running"], to: "input_required", fenced: true, refusal: leaseLost },
  // The worker hands the task back (shutdown) so that another can claim it at once.
  release: { from: ["running"], to: "pending", fenced: true, refusal: leaseLost },
  cancel: {
    from: ["pending", "running", "input_required"],
    to: "cancelled",
    fenced: false,
    refusal: (id, status) => `task ${id} is ${status} and cannot be cancelled`,
  },
  resume: {
    from: ["input_required", "completed", "failed", "cancelled"],
    to: "pending",
    fenced: false,
    refusal: (id, status) => `task ${id} is ${status}; only input_required, completed, failed or cancelled tasks can be resumed`,
  },
};

function leaseLost(id: string): string {
  return `lease on task ${id} was lost`;
}

/** True when some verb takes a task from `from` to `to`. */
export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return Object.values(RULES).some((r) => r.from.includes(from) && r.to === to);
}

/** True when `verb` may be applied to a task in `status`. */
export function allows(verb: Verb, status: TaskStatus): boolean {
  return RULES[verb].from.includes(status);
}

/** What a verb makes of the current task: the next task, and the messages its event records. */
export interface Outcome {
  task: Task;
  messages?: ChatMessage[];
}

/** A transition to commit: its verb, the lease token of a fenced one, and the next task. */
export interface Decide {
  verb: Verb;
  token?: string;
  /** Computes the next task from the current one; may refuse by throwing a domain error. */
  apply(current: Task, now: Date): Outcome;
}

export interface Committed {
  task: Task;
  event: TaskEvent;
  /** The webhook delivery the event causes: written in the same commit. */
  delivery?: WebhookDelivery;
}

function committed(task: Task, event: TaskEvent): Committed {
  const delivery = deliveryFor(task, event);
  return { task, event, ...(delivery ? { delivery } : {}) };
}

/**
 * Checks `decide` against the state machine, applies it, stamps the time,
 * advances the sequence and builds the event. Store adapters call it inside
 * their atomic read-check-write, so a refused transition writes nothing.
 */
export function commitTransition(current: Task, decide: Decide, now: Date): Committed {
  const rule = RULES[decide.verb];
  if (rule.fenced && (current.status !== "running" || current.lease?.token !== decide.token)) {
    throw new LeaseLostError(current.id);
  }
  if (!rule.from.includes(current.status)) {
    throw new FailedPreconditionError(current.id, current.status, rule.refusal(current.id, current.status));
  }
  const { task: next, messages } = decide.apply(current, now);
  if (next.status !== rule.to) throw new Error(`${decide.verb} must lead to ${rule.to}, not ${next.status}`);
  const kind: TaskEventKind = decide.verb === "checkpoint" ? "iteration_checkpointed" : "status_changed";
  const task: Task = withPurgeTime({ ...next, updatedAt: now, sequence: current.sequence + 1 }, now);
  return committed(task, makeEvent(task, kind, current.status, now, messages));
}

/** A terminal task is purged retentionMs after it ends; a task that is not terminal is not purged. */
function withPurgeTime(task: Task, now: Date): Task {
  const { purgeAt: _p, ...rest } = task;
  if (!isTerminal(task.status) || task.retentionMs === undefined) return rest;
  return { ...rest, purgeAt: new Date(now.getTime() + task.retentionMs) };
}

function makeEvent(task: Task, kind: TaskEventKind, previous: TaskStatus | undefined, now: Date, messages?: ChatMessage[]): TaskEvent {
  return {
    taskId: task.id,
    sequence: task.sequence,
    time: now,
    kind,
    status: task.status,
    ...(previous === undefined ? {} : { previousStatus: previous }),
    iterations: task.iterations,
    task: basicView(task),
    ...(messages && messages.length > 0 ? { messages } : {}),
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
  maxTotalTokens?: number;
  timeoutMs?: number;
  queueTimeoutMs?: number;
  retentionMs?: number;
  webhook?: WebhookConfig;
  traceparent?: string;
}

/** The event that records a task's creation, rebuilt from the task as first stored. */
export function creationEvent(task: Task): TaskEvent {
  return makeEvent({ ...task, sequence: 1 }, "status_changed", undefined, task.createdAt, openingMessages(task));
}

/** The conversation a task starts with: its system prompt and prompt. */
function openingMessages(task: Task): ChatMessage[] {
  return [
    ...(task.systemPrompt ? [{ role: "system" as const, content: task.systemPrompt }] : []),
    { role: "user" as const, content: task.prompt },
  ];
}

/**
 * A new task in PENDING and its first event (sequence 1). Ids are UUID v7, time-ordered,
 * so the stores' id indexes grow at their end instead of taking writes all over.
 */
export function createTask(input: NewTask, now: Date, id: string = timeOrderedId(now)): Committed {
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
    ...(input.maxTotalTokens ? { maxTotalTokens: input.maxTotalTokens } : {}),
    ...(input.timeoutMs ? { deadline: new Date(now.getTime() + input.timeoutMs) } : {}),
    ...(input.queueTimeoutMs
      ? { queueTimeoutMs: input.queueTimeoutMs, queueDeadline: new Date(now.getTime() + input.queueTimeoutMs) }
      : {}),
    ...(input.retentionMs !== undefined ? { retentionMs: input.retentionMs } : {}),
    ...(input.webhook ? { webhook: input.webhook } : {}),
    ...(input.traceparent ? { traceparent: input.traceparent } : {}),
  };
  return committed(task, makeEvent(task, "status_changed", undefined, now, openingMessages(task)));
}

/** The task without the outcome of its last run; a run that ended also ends any run of takeovers. */
function withoutOutcome(task: Task): Task {
  const { result: _r, error: _e, errorCode: _c, lease: _l, takeovers: _t, queueDeadline: _q, ...rest } = task;
  return { ...rest, pendingToolCalls: [] };
}

/**
 * PENDING (or RUNNING with an expired lease) -> RUNNING under a fresh lease.
 * Taking over from a holder that died counts in `takeovers` (see the supervisor's
 * max_takeovers); a run that makes progress or ends resets it.
 */
export function claim(owner: string, leaseMs: number, token: string = randomUUID()): Decide {
  return {
    verb: "claim",
    apply: (t, now) => {
      if (t.status === "running" && t.lease && t.lease.expiresAt > now) {
        throw new FailedPreconditionError(t.id, t.status, `task ${t.id} is not claimable`);
      }
      const lease = { token, owner, expiresAt: new Date(now.getTime() + leaseMs) };
      const takeovers = t.status === "running" ? (t.takeovers ?? 0) + 1 : 0;
      // The queue deadline stays: the run checks it against the claim's time (passedDeadline).
      return { task: { ...t, status: "running", lease, runs: (t.runs ?? 0) + 1, ...(takeovers > 0 ? { takeovers } : {}) } };
    },
  };
}

/** What one finished iteration adds to the task, and the messages it added (recorded in its event). */
export interface Progress {
  checkpoint: Checkpoint;
  iterations: number;
  usage: Usage;
  added: ChatMessage[];
}

function progressed(t: Task, progress: Progress): Task {
  const { added: _a, ...fields } = progress;
  return { ...t, ...fields };
}

export function checkpoint(token: string, progress: Progress): Decide {
  return {
    verb: "checkpoint",
    token,
    apply: (t) => {
      const { takeovers: _t, ...rest } = t;
      return { task: progressed(rest, progress), messages: progress.added };
    },
  };
}

export function complete(token: string, result: string, progress: Progress): Decide {
  return {
    verb: "complete",
    token,
    apply: (t) => ({ task: { ...progressed(withoutOutcome(t), progress), status: "completed", result }, messages: progress.added }),
  };
}

/** Longest error message stored: a provider's error text is untrusted and may be huge. */
export const MAX_ERROR_CHARS = 4_096;

function failed(t: Task, error: string, code: ErrorCode): Task {
  const message = error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS)}… (truncated)` : error;
  return { ...t, status: "failed", error: message, errorCode: code };
}

export function fail(token: string, error: string, code: ErrorCode, progress?: Progress): Decide {
  return {
    verb: "fail",
    token,
    apply: (t) => {
      const task = failed(progress ? progressed(withoutOutcome(t), progress) : withoutOutcome(t), error, code);
      return { task, ...(progress ? { messages: progress.added } : {}) };
    },
  };
}

/**
 * The deadline a task has passed at `now`, if any: its deadline; and its queue deadline
 * while PENDING, or, for a task just claimed (RUNNING), at the time of the claim.
 */
export function passedDeadline(t: Task, now: Date): { code: "timeout" | "queue_timeout"; error: string } | undefined {
  if (t.deadline && t.deadline <= now) {
    return {
      code: "timeout",
      error: `the task passed its deadline (${t.deadline.toISOString()}) before it ended; Resume with a timeout to continue`,
    };
  }
  const waitedUntil = t.status === "pending" ? now : t.status === "running" ? t.updatedAt : undefined;
  if (t.queueDeadline && waitedUntil && t.queueDeadline <= waitedUntil) {
    return { code: "queue_timeout", error: `no worker claimed the task before its queue deadline (${t.queueDeadline.toISOString()})` };
  }
  return undefined;
}

/** PENDING | INPUT_REQUIRED -> FAILED when a deadline has passed (the sweeper's verb). */
export function expire(): Decide {
  return {
    verb: "expire",
    apply: (t, now) => {
      const passed = passedDeadline(t, now);
      if (!passed) throw new FailedPreconditionError(t.id, t.status, `task ${t.id} has no deadline that has passed`);
      return { task: failed(withoutOutcome(t), passed.error, passed.code) };
    },
  };
}

export function requireInput(token: string, calls: ToolCall[], progress: Progress): Decide {
  return {
    verb: "require_input",
    token,
    apply: (t) => ({
      task: { ...progressed(withoutOutcome(t), progress), status: "input_required", pendingToolCalls: calls },
      messages: progress.added,
    }),
  };
}

/** RUNNING -> PENDING: the worker hands the task back (shutdown) so another can claim it at once. */
export function release(token: string): Decide {
  return { verb: "release", token, apply: (t) => ({ task: { ...withoutOutcome(t), status: "pending" } }) };
}

export function cancel(reason: string): Decide {
  return {
    verb: "cancel",
    apply: (t) => ({ task: { ...withoutOutcome(t), status: "cancelled", error: reason || "cancelled by caller" } }),
  };
}

export interface ResumeInput {
  message?: string;
  toolResults: ToolResult[];
  additionalIterations?: number;
  additionalTokens?: number;
  /** A new deadline, this long from the Resume. */
  timeoutMs?: number;
}

/** INPUT_REQUIRED | COMPLETED | FAILED | CANCELLED -> PENDING, continuing from the checkpoint. */
export function resume(input: ResumeInput): Decide {
  return {
    verb: "resume",
    apply: (t, now) => {
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
      const maxTotalTokens = t.maxTotalTokens === undefined ? undefined : t.maxTotalTokens + (input.additionalTokens ?? 0);
      if (maxTotalTokens !== undefined && t.usage.totalTokens >= maxTotalTokens) {
        throw new FailedPreconditionError(
          t.id,
          t.status,
          `task ${t.id} has used ${t.usage.totalTokens} of its ${maxTotalTokens} tokens; resume with additional_tokens`,
        );
      }
      const deadline = input.timeoutMs !== undefined ? new Date(now.getTime() + input.timeoutMs) : t.deadline;
      if (deadline && deadline <= now) {
        throw new FailedPreconditionError(t.id, t.status, `task ${t.id} is past its deadline; resume with a timeout`);
      }
      const added: ChatMessage[] = [
        ...orderedToolResults(t.pendingToolCalls, input.toolResults).map((r): ChatMessage => ({
          role: "tool",
          toolCallId: r.toolCallId,
          content: r.isError ? `error: ${r.content}` : r.content,
        })),
        ...(input.message ? [{ role: "user" as const, content: input.message }] : []),
      ];
      const next: Task = {
        ...withoutOutcome(t),
        status: "pending",
        maxIterations,
        ...(maxTotalTokens !== undefined ? { maxTotalTokens } : {}),
        ...(deadline ? { deadline } : {}),
        ...(t.queueTimeoutMs ? { queueDeadline: new Date(now.getTime() + t.queueTimeoutMs) } : {}),
      };
      if (t.checkpoint) {
        next.checkpoint = { ...t.checkpoint, maxIterations, messages: [...t.checkpoint.messages, ...added] };
      } else if (input.message) {
        // Never ran: the message joins the conversation when it starts. The prompt stays as
        // submitted, so a retried Submit with the same request_id still matches it.
        next.followUps = [...(t.followUps ?? []), input.message];
      }
      return { task: next, messages: added };
    },
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
