// How the CLI prints tasks and events for people (--json prints the proto JSON instead).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  TaskErrorCode,
  TaskEventKind,
  TaskStatus,
  WebhookDeliveryState,
  type Message,
  type Task,
  type TaskEvent,
  type WebhookDelivery,
} from "../../gen/rookery/v1/task_pb.js";

/** Bad command-line input: exit code 2. */
export class UsageError extends Error {}

export function statusName(status: TaskStatus): string {
  return (TaskStatus[status] ?? String(status)).toLowerCase();
}

export function errorCodeName(code: TaskErrorCode): string {
  return (TaskErrorCode[code] ?? String(code)).toLowerCase();
}

export function statusFromName(name: string): TaskStatus {
  const key = name.toUpperCase() as keyof typeof TaskStatus;
  const value = TaskStatus[key];
  if (typeof value !== "number" || value === TaskStatus.UNSPECIFIED) {
    throw new UsageError(`unknown status "${name}"; one of pending, running, input_required, completed, failed, cancelled`);
  }
  return value;
}

export function formatTask(t: Task): string {
  const lines = [
    `id:          ${t.id}`,
    `status:      ${statusName(t.status)}`,
    `iterations:  ${t.iterations}/${t.maxIterations}`,
    `model:       ${t.provider ?? "-"}/${t.model ?? "-"}`,
    `created:     ${t.createTime ? timestampDate(t.createTime).toISOString() : "-"}`,
    `updated:     ${t.updateTime ? timestampDate(t.updateTime).toISOString() : "-"}`,
  ];
  if (Object.keys(t.labels).length)
    lines.push(
      `labels:      ${Object.entries(t.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}`,
    );
  if (t.usage) lines.push(`tokens:      ${t.usage.totalTokens}${t.maxTotalTokens ? ` of ${t.maxTotalTokens}` : ""}`);
  if (t.deadline) lines.push(`deadline:    ${timestampDate(t.deadline).toISOString()}`);
  if (t.webhook) lines.push(`webhook:     ${t.webhook.url} (on ${t.webhook.statuses.map(statusName).join(", ")})`);
  for (const c of t.pendingToolCalls) lines.push(`tool call:   ${c.id} ${c.name}(${c.arguments})`);
  if (t.result !== undefined) lines.push(`result:\n${t.result}`);
  if (t.error !== undefined) lines.push(`error:       ${t.error}${t.errorCode ? ` (${errorCodeName(t.errorCode)})` : ""}`);
  return lines.join("\n");
}

/** One line per webhook delivery: which transition, what became of it, and when it is tried next. */
export function formatDelivery(d: WebhookDelivery): string {
  const state = WebhookDeliveryState[d.state].toLowerCase();
  const last = d.lastStatusCode !== undefined ? ` last HTTP ${d.lastStatusCode}` : "";
  const why = d.lastError !== undefined && d.state !== WebhookDeliveryState.DELIVERED ? ` (${shorten(d.lastError, 120)})` : "";
  const next = d.nextAttemptTime ? `, next attempt ${timestampDate(d.nextAttemptTime).toISOString()}` : "";
  return `webhook #${d.sequence} ${statusName(d.status).padEnd(14)} ${state}, ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}${last}${why}${next}  ${d.id}`;
}

export function formatTaskRow(t: Task): string {
  const created = t.createTime ? timestampDate(t.createTime).toISOString() : "-";
  return `${t.id}  ${statusName(t.status).padEnd(14)}  ${created}  ${t.prompt.replace(/\s+/g, " ").slice(0, 48)}`;
}

export function formatEvent(e: TaskEvent): string {
  // By kind, not by status: a lease takeover is RUNNING -> RUNNING and checkpoints nothing.
  const what =
    e.kind === TaskEventKind.ITERATION_CHECKPOINTED
      ? `iteration ${e.iterations} checkpointed`
      : e.previousStatus === TaskStatus.UNSPECIFIED
        ? "submitted"
        : `${statusName(e.previousStatus)} -> ${statusName(e.status)}`;
  const code = e.status === TaskStatus.FAILED && e.task?.errorCode ? ` [${errorCodeName(e.task.errorCode)}]` : "";
  return `#${e.sequence} ${statusName(e.status).padEnd(14)} ${what} (iterations ${e.iterations})${code}`;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text as a terminal should show it. What the CLI prints comes from a model, a client or a
 * webhook receiver, and a control character in it would act on the terminal rather than show:
 * an escape sequence can move the cursor, rewrite lines already printed, set the window's
 * title or the clipboard. Those (C0 but newline and tab, DEL, C1) print as visible escapes
 * such as \x1b; a carriage return, which can only overwrite, is dropped.
 */
export function forTerminal(text: string): string {
  return text.replace(/\r/g, "").replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** At most `max` characters on one line, with an ellipsis when cut. */
export function shorten(text: string, max = 200): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * The lines a message adds to `rookery watch`: tool calls with their arguments,
 * tool results shortened, and the text of messages whose text was not already
 * printed as it streamed (`streamed`).
 */
export function formatMessage(m: Message, streamed: string): string[] {
  const lines: string[] = [];
  if (m.role === "user" || m.role === "system") lines.push(`${m.role}: ${shorten(m.content)}`);
  if (m.role === "assistant" && m.content && m.content !== streamed) lines.push(m.content);
  for (const call of m.toolCalls) lines.push(`→ ${call.name}(${shorten(call.arguments, 500)})`);
  if (m.role === "tool") lines.push(`← ${shorten(m.content)}`);
  return lines;
}
