// Domain records <-> generated protobuf-es messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ChatMessage, Checkpoint, ErrorCode, Task, TaskEvent, TaskStatus } from "../domain/task.js";
import { DurationSchema, type Duration } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  CheckpointSchema,
  TaskEventKind,
  TaskEventSchema,
  TaskSchema,
  TaskStatus as PbStatus,
  TaskErrorCode as PbErrorCode,
  type Task as PbTask,
  type TaskEvent as PbTaskEvent,
  type Checkpoint as PbCheckpoint,
  type MessageSchema,
  OutputDeltaSchema,
  type OutputDelta as PbOutputDelta,
  WebhookDeliverySchema,
  WebhookDeliveryState as PbDeliveryState,
  type WebhookDelivery as PbWebhookDelivery,
  WebhookPayloadSchema,
  type WebhookPayload as PbWebhookPayload,
} from "../../gen/rookery/v1/task_pb.js";
import type { DeliveryRecord, DeliveryState, WebhookDelivery } from "../domain/webhooks.js";
import { mergeParts, type OutputChunk } from "../domain/output.js";

type PbMessageInit = MessageInitShape<typeof MessageSchema>;

const TO_PB: Record<TaskStatus, PbStatus> = {
  pending: PbStatus.PENDING,
  running: PbStatus.RUNNING,
  input_required: PbStatus.INPUT_REQUIRED,
  completed: PbStatus.COMPLETED,
  failed: PbStatus.FAILED,
  cancelled: PbStatus.CANCELLED,
};

const FROM_PB = new Map<PbStatus, TaskStatus>(Object.entries(TO_PB).map(([k, v]) => [v, k as TaskStatus]));

const ERROR_CODE_TO_PB: Record<ErrorCode, PbErrorCode> = {
  max_iterations: PbErrorCode.MAX_ITERATIONS,
  token_budget: PbErrorCode.TOKEN_BUDGET,
  timeout: PbErrorCode.TIMEOUT,
  queue_timeout: PbErrorCode.QUEUE_TIMEOUT,
  provider_error: PbErrorCode.PROVIDER_ERROR,
  provider_refused: PbErrorCode.PROVIDER_REFUSED,
  malformed_reply: PbErrorCode.MALFORMED_REPLY,
  output_limit: PbErrorCode.OUTPUT_LIMIT,
  takeovers: PbErrorCode.TAKEOVERS,
  internal: PbErrorCode.INTERNAL,
};

function durationFromMs(ms: number): Duration {
  return create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });
}

export function statusToPb(status: TaskStatus): PbStatus {
  return TO_PB[status];
}

/** undefined for UNSPECIFIED and for numbers the enum does not define. */
export function statusFromPb(status: PbStatus): TaskStatus | undefined {
  return FROM_PB.get(status);
}

export function taskToPb(t: Task): PbTask {
  return create(TaskSchema, {
    id: t.id,
    prompt: t.prompt,
    systemPrompt: t.systemPrompt,
    status: statusToPb(t.status),
    ...(t.result !== undefined ? { result: t.result } : {}),
    ...(t.error !== undefined ? { error: t.error } : {}),
    createTime: timestampFromDate(t.createdAt),
    updateTime: timestampFromDate(t.updatedAt),
    iterations: t.iterations,
    maxIterations: t.maxIterations,
    ...(t.provider !== undefined ? { provider: t.provider } : {}),
    ...(t.model !== undefined ? { model: t.model } : {}),
    labels: t.labels,
    ...(t.checkpoint ? { checkpoint: checkpointToPb(t.checkpoint) } : {}),
    pendingToolCalls: t.pendingToolCalls,
    usage: {
      promptTokens: BigInt(t.usage.promptTokens),
      completionTokens: BigInt(t.usage.completionTokens),
      totalTokens: BigInt(t.usage.totalTokens),
    },
    tools: t.tools.map((d) => ({ name: d.name, description: d.description, parameters: d.parameters as never })),
    requestId: t.requestId ?? "",
    lastEventSequence: BigInt(t.sequence),
    promptTruncated: t.promptTruncated ?? false,
    runs: t.runs ?? 0,
    errorCode: t.errorCode ? ERROR_CODE_TO_PB[t.errorCode] : PbErrorCode.UNSPECIFIED,
    maxTotalTokens: BigInt(t.maxTotalTokens ?? 0),
    ...(t.deadline ? { deadline: timestampFromDate(t.deadline) } : {}),
    ...(t.queueDeadline ? { queueDeadline: timestampFromDate(t.queueDeadline) } : {}),
    ...(t.retentionMs !== undefined ? { retention: durationFromMs(t.retentionMs) } : {}),
    ...(t.webhook ? { webhook: { url: t.webhook.url, statuses: t.webhook.statuses.map(statusToPb) } } : {}),
  });
}

const DELIVERY_STATE_TO_PB: Record<DeliveryState, PbDeliveryState> = {
  pending: PbDeliveryState.PENDING,
  delivered: PbDeliveryState.DELIVERED,
  failed: PbDeliveryState.FAILED,
  stopped: PbDeliveryState.STOPPED,
};

export function deliveryToPb(d: DeliveryRecord): PbWebhookDelivery {
  return create(WebhookDeliverySchema, {
    id: d.id,
    sequence: BigInt(d.sequence),
    status: statusToPb(d.status),
    url: d.url,
    state: DELIVERY_STATE_TO_PB[d.state],
    attempts: d.attempts,
    ...(d.lastStatusCode !== undefined ? { lastStatusCode: d.lastStatusCode } : {}),
    ...(d.lastError !== undefined ? { lastError: d.lastError } : {}),
    createTime: timestampFromDate(d.createdAt),
    ...(d.lastAttemptAt ? { lastAttemptTime: timestampFromDate(d.lastAttemptAt) } : {}),
    ...(d.state === "pending" ? { nextAttemptTime: timestampFromDate(d.nextAttemptAt) } : {}),
  });
}

/** The body a delivery posts (see WebhookPayload in task.proto). */
export function webhookPayloadToPb(d: WebhookDelivery): PbWebhookPayload {
  return create(WebhookPayloadSchema, {
    type: "task.status_changed",
    timestamp: timestampFromDate(d.time),
    data: {
      taskId: d.taskId,
      sequence: BigInt(d.sequence),
      status: statusToPb(d.status),
      previousStatus: d.previousStatus ? statusToPb(d.previousStatus) : PbStatus.UNSPECIFIED,
      time: timestampFromDate(d.time),
      task: taskToPb(d.task),
    },
  });
}

function checkpointToPb(c: Checkpoint): PbCheckpoint {
  return create(CheckpointSchema, {
    sessionId: c.sessionId,
    iteration: c.iteration,
    maxIterations: c.maxIterations,
    messages: c.messages.map(messageToPb),
    initialPrompt: c.initialPrompt,
    systemPrompt: c.systemPrompt,
    provider: c.provider,
    model: c.model,
    toolsEnabled: c.toolsEnabled,
    lastCheckpointTime: timestampFromDate(c.lastCheckpointAt),
  });
}

export function eventToPb(e: TaskEvent): PbTaskEvent {
  return create(TaskEventSchema, {
    taskId: e.taskId,
    sequence: BigInt(e.sequence),
    time: timestampFromDate(e.time),
    kind: e.kind === "status_changed" ? TaskEventKind.STATUS_CHANGED : TaskEventKind.ITERATION_CHECKPOINTED,
    status: statusToPb(e.status),
    previousStatus: e.previousStatus ? statusToPb(e.previousStatus) : PbStatus.UNSPECIFIED,
    iterations: e.iterations,
    task: taskToPb(e.task),
    messages: (e.messages ?? []).map(messageToPb),
  });
}

export function outputToPb(c: OutputChunk): PbOutputDelta {
  const { text, toolCalls } = mergeParts(c.parts);
  return create(OutputDeltaSchema, {
    iteration: c.iteration,
    attempt: c.attempt,
    offset: BigInt(c.offset),
    endOffset: BigInt(c.endOffset),
    text,
    toolCalls: toolCalls.map((t) => ({ index: t.index, id: t.id ?? "", name: t.name ?? "", arguments: t.arguments })),
  });
}

function messageToPb(m: ChatMessage): PbMessageInit {
  return { role: m.role, content: m.content, toolCalls: m.toolCalls ?? [], toolCallId: m.toolCallId ?? "" };
}
