// Request checks. Each returns the clean input for the domain or throws one
// InvalidArgumentError listing every violation, with proto field names.
import { InvalidArgumentError, type FieldViolation } from "../domain/errors.js";
import type { TaskStatus, ToolDefinition, ToolResult } from "../domain/task.js";
import type { ResumeInput } from "../domain/transitions.js";
import type {
  CancelRequest,
  ListRequest,
  ListWebhookDeliveriesRequest,
  ResumeRequest,
  SubmitRequest,
  WatchRequest,
} from "../../gen/rookery/v1/task_service_pb.js";
import { statusFromPb } from "./convert.js";
import { DEFAULT_WEBHOOK_STATUSES, type WebhookConfig } from "../domain/webhooks.js";
import type { WebhookConfig as PbWebhookConfig } from "../../gen/rookery/v1/task_pb.js";
import { TaskView } from "../../gen/rookery/v1/task_pb.js";
import type { Duration } from "@bufbuild/protobuf/wkt";

export interface Limits {
  maxPromptBytes: number;
  maxLabels: number;
  maxLabelValueLength: number;
  maxTools: number;
  maxToolSchemaBytes: number;
  /** All of a task's tool schemas together: they travel with the task (Get) and with every model call. */
  maxToolsTotalBytes: number;
  /** Levels of nested JSON objects and arrays in a tool schema (see checkSchemaDepth). */
  maxToolSchemaDepth: number;
  maxToolResults: number;
  maxPageSize: number;
  defaultPageSize: number;
  maxActiveTasksPerKey: number;
  maxWatchesPerKey: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxPromptBytes: 256 * 1024,
  maxLabels: 64,
  maxLabelValueLength: 256,
  maxTools: 64,
  maxToolSchemaBytes: 64 * 1024,
  maxToolsTotalBytes: 256 * 1024,
  maxToolSchemaDepth: 20,
  maxToolResults: 128,
  maxPageSize: 1000,
  defaultPageSize: 50,
  maxActiveTasksPerKey: 1_000,
  maxWatchesPerKey: 100,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LABEL_KEY = /^[a-z0-9]([a-z0-9_.\-/]{0,61}[a-z0-9])?$/;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, description: string): void {
    this.list.push({ field, description });
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw new InvalidArgumentError(this.list);
  }
}

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

function checkText(v: Violations, field: string, value: string, maxBytes: number): void {
  if (bytes(value) > maxBytes) v.add(field, `must be at most ${maxBytes} bytes (is ${bytes(value)})`);
  if (value.includes("\u0000")) v.add(field, "must not contain NUL characters");
}

function checkLabels(v: Violations, field: string, labels: Record<string, string>, limits: Limits): void {
  const entries = Object.entries(labels);
  if (entries.length > limits.maxLabels) v.add(field, `must have at most ${limits.maxLabels} entries (has ${entries.length})`);
  for (const [key, value] of entries.slice(0, limits.maxLabels + 1)) {
    if (!LABEL_KEY.test(key))
      v.add(
        `${field}[${JSON.stringify(key.slice(0, 80))}]`,
        "key must be 1-63 of a-z 0-9 _ . - /, starting and ending with a letter or digit",
      );
    if ([...value].length > limits.maxLabelValueLength)
      v.add(`${field}[${JSON.stringify(key.slice(0, 80))}]`, `value must be at most ${limits.maxLabelValueLength} characters`);
  }
}

/**
 * Levels of nested objects and arrays in a JSON value (a scalar is 0). A tool schema
 * travels as google.protobuf.Struct, and upb (Python, PHP, Ruby) spends three of its
 * 100 nesting units per Struct level: past ~30 levels a Get or a List page holding
 * the task cannot be decoded there. Walks iteratively, so no depth can overflow it.
 */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    max = Math.max(max, depth + 1);
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return max;
}

export function checkId(id: string, field = "id"): string {
  if (!UUID.test(id)) throw InvalidArgumentError.field(field, id === "" ? "is required" : "must be a task id (a UUID)");
  return id.toLowerCase();
}

/** A google.protobuf.Duration as milliseconds; a violation when negative, zero or past `maxDays`. */
function checkDuration(v: Violations, field: string, d: Duration | undefined, maxDays = 3650): number | undefined {
  if (!d) return undefined;
  const ms = Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
  if (!(ms > 0) || ms > maxDays * 86_400_000) {
    v.add(field, `must be more than 0 and at most ${maxDays} days`);
    return undefined;
  }
  return ms;
}

export interface SubmitInput {
  prompt: string;
  systemPrompt: string;
  provider?: string;
  model?: string;
  maxIterations?: number;
  labels: Record<string, string>;
  requestId?: string;
  tools: ToolDefinition[];
  maxTotalTokens?: number;
  timeoutMs?: number;
  queueTimeoutMs?: number;
  retentionMs?: number;
  /** As asked for; the URL is checked against the SSRF guard by the service (it resolves the host). */
  webhook?: WebhookConfig;
}

export function checkSubmit(req: SubmitRequest, limits: Limits, known: { providers: string[]; serverTools: string[] }): SubmitInput {
  const v = new Violations();
  if (req.prompt.trim() === "") v.add("prompt", "is required");
  checkText(v, "prompt", req.prompt, limits.maxPromptBytes);
  checkText(v, "system_prompt", req.systemPrompt, limits.maxPromptBytes);
  if (req.provider !== undefined && !known.providers.includes(req.provider)) {
    v.add("provider", `unknown provider "${req.provider.slice(0, 64)}"; configured: ${known.providers.join(", ")}`);
  }
  if (req.model !== undefined && (req.model.trim() === "" || req.model.length > 256)) {
    v.add("model", "must be 1-256 characters when given");
  }
  if (req.maxIterations !== undefined && (req.maxIterations < 1 || req.maxIterations > 10_000)) {
    v.add("max_iterations", "must be between 1 and 10000 when given");
  }
  checkLabels(v, "labels", req.labels, limits);
  if (req.requestId.length > 128) v.add("request_id", "must be at most 128 characters");
  if (req.tools.length > limits.maxTools) v.add("tools", `must have at most ${limits.maxTools} entries`);
  const names = new Set<string>();
  let totalToolBytes = 0;
  req.tools.slice(0, limits.maxTools).forEach((t, i) => {
    const f = `tools[${i}]`;
    if (!TOOL_NAME.test(t.name)) v.add(`${f}.name`, "must match ^[a-zA-Z0-9_-]{1,64}$");
    else if (known.serverTools.includes(t.name)) v.add(`${f}.name`, `"${t.name}" is a server tool`);
    else if (names.has(t.name)) v.add(`${f}.name`, `duplicate tool "${t.name}"`);
    names.add(t.name);
    if (t.description.length > 4096) v.add(`${f}.description`, "must be at most 4096 characters");
    const schemaBytes = t.parameters ? bytes(JSON.stringify(t.parameters)) : 0;
    totalToolBytes += schemaBytes + bytes(t.description);
    if (schemaBytes > limits.maxToolSchemaBytes) {
      v.add(`${f}.parameters`, `must be at most ${limits.maxToolSchemaBytes} bytes of JSON`);
    } else if (t.parameters && jsonDepth(t.parameters) > limits.maxToolSchemaDepth) {
      v.add(
        `${f}.parameters`,
        `must nest objects and arrays at most ${limits.maxToolSchemaDepth} levels deep (every protobuf runtime must be able to decode the task)`,
      );
    }
  });
  if (totalToolBytes > limits.maxToolsTotalBytes) {
    v.add("tools", `descriptions and schemas must be at most ${limits.maxToolsTotalBytes} bytes together (are ${totalToolBytes})`);
  }
  if (req.maxTotalTokens !== undefined && (req.maxTotalTokens < 1n || req.maxTotalTokens > 1_000_000_000_000n)) {
    v.add("max_total_tokens", "must be between 1 and 10^12 when given");
  }
  const timeoutMs = checkDuration(v, "timeout", req.timeout);
  const queueTimeoutMs = checkDuration(v, "queue_timeout", req.queueTimeout);
  const retentionMs = checkDuration(v, "retention", req.retention);
  const webhook = req.webhook && checkWebhook(v, req.webhook);
  v.throwIfAny();
  return {
    prompt: req.prompt,
    systemPrompt: req.systemPrompt,
    ...(req.provider !== undefined ? { provider: req.provider } : {}),
    ...(req.model !== undefined ? { model: req.model } : {}),
    ...(req.maxIterations !== undefined ? { maxIterations: req.maxIterations } : {}),
    labels: { ...req.labels },
    ...(req.requestId ? { requestId: req.requestId } : {}),
    tools: req.tools.map((t) => ({
      name: t.name,
      description: t.description,
      parameters: (t.parameters as Record<string, unknown> | undefined) ?? { type: "object", properties: {} },
    })),
    ...(req.maxTotalTokens !== undefined ? { maxTotalTokens: Number(req.maxTotalTokens) } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(queueTimeoutMs !== undefined ? { queueTimeoutMs } : {}),
    ...(retentionMs !== undefined ? { retentionMs } : {}),
    ...(webhook ? { webhook } : {}),
  };
}

export interface ListInput {
  view: "basic" | "full";
  pageSize: number;
  pageToken: string;
  statuses: TaskStatus[];
  labels: Record<string, string>;
}

export function checkList(req: ListRequest, limits: Limits): ListInput {
  const v = new Violations();
  if (req.pageSize < 0 || req.pageSize > limits.maxPageSize) {
    v.add("page_size", `must be between 0 and ${limits.maxPageSize} (0 means ${limits.defaultPageSize})`);
  }
  const statuses: TaskStatus[] = [];
  req.statuses.forEach((s, i) => {
    const status = statusFromPb(s);
    if (status) statuses.push(status);
    else v.add(`statuses[${i}]`, `${s} is not a task status`);
  });
  checkLabels(v, "labels", req.labels, limits);
  if (!(req.view in TaskView)) v.add("view", `${req.view} is not a task view`);
  v.throwIfAny();
  return {
    view: req.view === TaskView.FULL ? "full" : "basic",
    pageSize: req.pageSize === 0 ? limits.defaultPageSize : req.pageSize,
    pageToken: req.pageToken,
    statuses: [...new Set(statuses)].sort(),
    labels: { ...req.labels },
  };
}

/** A page of a task's webhook deliveries: all of nearly every task's when no size is asked for. */
export function checkListDeliveries(
  req: ListWebhookDeliveriesRequest,
  limits: Limits,
): { id: string; pageSize: number; pageToken: string } {
  const id = checkId(req.id);
  const v = new Violations();
  if (req.pageSize < 0 || req.pageSize > limits.maxPageSize) {
    v.add("page_size", `must be between 0 and ${limits.maxPageSize} (0 means ${limits.maxPageSize})`);
  }
  v.throwIfAny();
  return { id, pageSize: req.pageSize === 0 ? limits.maxPageSize : req.pageSize, pageToken: req.pageToken };
}

export function checkResume(req: ResumeRequest, limits: Limits): { id: string; input: ResumeInput } {
  const id = checkId(req.id);
  const v = new Violations();
  if (req.message !== undefined) {
    if (req.message.trim() === "") v.add("message", "must not be empty when given");
    checkText(v, "message", req.message, limits.maxPromptBytes);
  }
  if (req.additionalIterations !== undefined && (req.additionalIterations < 1 || req.additionalIterations > 10_000)) {
    v.add("additional_iterations", "must be between 1 and 10000 when given");
  }
  if (req.additionalTokens !== undefined && (req.additionalTokens < 1n || req.additionalTokens > 1_000_000_000_000n)) {
    v.add("additional_tokens", "must be between 1 and 10^12 when given");
  }
  const timeoutMs = checkDuration(v, "timeout", req.timeout);
  if (req.toolResults.length > limits.maxToolResults) {
    v.add("tool_results", `must have at most ${limits.maxToolResults} entries`);
  }
  let resultBytes = 0;
  req.toolResults.slice(0, limits.maxToolResults).forEach((r, i) => {
    if (r.toolCallId === "") v.add(`tool_results[${i}].tool_call_id`, "is required");
    checkText(v, `tool_results[${i}].content`, r.content, limits.maxPromptBytes);
    resultBytes += bytes(r.content);
  });
  if (resultBytes > limits.maxPromptBytes) {
    v.add("tool_results", `contents must be at most ${limits.maxPromptBytes} bytes together (are ${resultBytes})`);
  }
  v.throwIfAny();
  const toolResults: ToolResult[] = req.toolResults.map((r) => ({
    toolCallId: r.toolCallId,
    content: r.content,
    isError: r.isError,
  }));
  return {
    id,
    input: {
      toolResults,
      ...(req.message !== undefined ? { message: req.message } : {}),
      ...(req.additionalIterations !== undefined ? { additionalIterations: req.additionalIterations } : {}),
      ...(req.additionalTokens !== undefined ? { additionalTokens: Number(req.additionalTokens) } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    },
  };
}

/**
 * What a Watch request says on its own; `after_sequence` against the task is checked by the
 * service. An `output_offset` is a position in the output of the iteration in flight after
 * `after_sequence`: without `include_output` there is no output, and after sequence 0 no
 * iteration (a task's first event comes before its first model call).
 */
export function checkWatch(req: WatchRequest): string {
  const id = checkId(req.id);
  if (req.outputOffset > 0n && !req.includeOutput) {
    throw InvalidArgumentError.field(
      "output_offset",
      "is a position in the model's output, which the stream carries only with include_output",
    );
  }
  if (req.outputOffset > 0n && req.afterSequence === 0n) {
    throw InvalidArgumentError.field(
      "output_offset",
      "is a position in the iteration in flight after after_sequence; pass the sequence of the last event you saw with it",
    );
  }
  return id;
}

export function checkCancel(req: CancelRequest): { id: string; reason: string } {
  const id = checkId(req.id);
  if (req.reason.length > 1024) throw InvalidArgumentError.field("reason", "must be at most 1024 characters");
  return { id, reason: req.reason };
}

const MAX_WEBHOOK_URL_CHARS = 2_048;

function checkWebhook(v: Violations, req: PbWebhookConfig): WebhookConfig | undefined {
  if (req.url === "") v.add("webhook.url", "is required when webhook is set");
  else if (req.url.length > MAX_WEBHOOK_URL_CHARS) v.add("webhook.url", `must be at most ${MAX_WEBHOOK_URL_CHARS} characters`);
  const statuses: TaskStatus[] = [];
  req.statuses.forEach((s, i) => {
    const status = statusFromPb(s);
    if (status) statuses.push(status);
    else v.add(`webhook.statuses[${i}]`, `${s} is not a task status`);
  });
  return { url: req.url, statuses: statuses.length > 0 ? [...new Set(statuses)] : [...DEFAULT_WEBHOOK_STATUSES] };
}
