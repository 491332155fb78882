// The stored form of a webhook delivery, for both adapters (snake_case, like
// task-document.ts; SQLite's JSON turns the Dates into strings, read back here).
import type { DeliveryRecord, WebhookDelivery } from "../domain/webhooks.js";
import { fromTaskDocument, toTaskDocument, type TaskDocument } from "./task-document.js";

export interface DeliveryDocument {
  _id: string;
  task_id: string;
  sequence: number;
  owner?: string;
  url: string;
  status: WebhookDelivery["status"];
  previous_status?: WebhookDelivery["status"];
  time: Date;
  task: TaskDocument;
  state: WebhookDelivery["state"];
  attempts: number;
  created_at: Date;
  next_attempt_at: Date;
  last_attempt_at?: Date;
  last_status_code?: number;
  last_error?: string;
}

const date = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));

export function toDeliveryDocument(d: WebhookDelivery): DeliveryDocument {
  return {
    _id: d.id,
    task_id: d.taskId,
    sequence: d.sequence,
    ...(d.owner !== undefined ? { owner: d.owner } : {}),
    url: d.url,
    status: d.status,
    ...(d.previousStatus !== undefined ? { previous_status: d.previousStatus } : {}),
    time: d.time,
    task: toTaskDocument(d.task),
    state: d.state,
    attempts: d.attempts,
    created_at: d.createdAt,
    next_attempt_at: d.nextAttemptAt,
    ...(d.lastAttemptAt ? { last_attempt_at: d.lastAttemptAt } : {}),
    ...(d.lastStatusCode !== undefined ? { last_status_code: d.lastStatusCode } : {}),
    ...(d.lastError !== undefined ? { last_error: d.lastError } : {}),
  };
}

export function fromDeliveryDocument(d: DeliveryDocument): WebhookDelivery {
  return { ...fromDeliveryRecordDocument(d), task: fromTaskDocument(d.task) };
}

/** A delivery's stored form read without its task snapshot (a projection leaves it out). */
export function fromDeliveryRecordDocument(d: Omit<DeliveryDocument, "task">): DeliveryRecord {
  return {
    id: d._id,
    taskId: d.task_id,
    sequence: d.sequence,
    ...(d.owner != null ? { owner: d.owner } : {}),
    url: d.url,
    status: d.status,
    ...(d.previous_status != null ? { previousStatus: d.previous_status } : {}),
    time: date(d.time),
    state: d.state,
    attempts: d.attempts,
    createdAt: date(d.created_at),
    nextAttemptAt: date(d.next_attempt_at),
    ...(d.last_attempt_at != null ? { lastAttemptAt: date(d.last_attempt_at) } : {}),
    ...(d.last_status_code != null ? { lastStatusCode: d.last_status_code } : {}),
    ...(d.last_error != null ? { lastError: d.last_error } : {}),
  };
}

/** What a delivery's receiver said last, for a delivery made while the task's receiver was gone. */
export const GONE_BEFORE = "the receiver answered 410 Gone to an earlier delivery of this task";
