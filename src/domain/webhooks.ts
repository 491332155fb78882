// Webhook deliveries: which transitions a task's webhook is told of, and how
// a delivery's attempts are scheduled. Pure: the store writes a delivery in
// the same commit as the event that causes it, and webhooks/ sends it.
import { timeOrderedId } from "./ids.js";
import { summarize, type Task, type TaskEvent, type TaskStatus } from "./task.js";

export interface WebhookConfig {
  url: string;
  /** Statuses whose entry is notified. */
  statuses: TaskStatus[];
}

/** Notified when a webhook names no statuses: where a client usually has something to do or read. */
export const DEFAULT_WEBHOOK_STATUSES: TaskStatus[] = ["input_required", "completed", "failed", "cancelled"];

/**
 *   pending    waiting for its (next) attempt
 *   delivered  a 2xx answered an attempt
 *   failed     no 2xx within the retry horizon
 *   stopped    the receiver answered 410 Gone (to this delivery or an earlier one of the task)
 */
export type DeliveryState = "pending" | "delivered" | "failed" | "stopped";

export interface WebhookDelivery {
  /** The Standard Webhooks `webhook-id`: the same on every attempt of this delivery. */
  id: string;
  taskId: string;
  /** The event that caused it; a task's deliveries are made in this order. */
  sequence: number;
  /** The task's owner (API key id): its deliveries are signed with that key's secret. */
  owner?: string;
  url: string;
  status: TaskStatus;
  previousStatus?: TaskStatus;
  /** When the transition happened. */
  time: Date;
  /** The task right after the event, as Get shows it but without its checkpoint. */
  task: Task;
  state: DeliveryState;
  attempts: number;
  createdAt: Date;
  /** When the next attempt is due (while pending); an attempt in flight holds it for a lease. */
  nextAttemptAt: Date;
  lastAttemptAt?: Date;
  /** HTTP status of the last attempt, when it got an answer. */
  lastStatusCode?: number;
  /** Why the last attempt did not count as delivered (timeout, connection error, status). */
  lastError?: string;
}

/** A delivery as ListWebhookDeliveries shows it: without the task snapshot its body carries, which the stores do not read for it. */
export type DeliveryRecord = Omit<WebhookDelivery, "task">;

/** The delivery a committed event causes, if the task's webhook asks for its status. */
export function deliveryFor(task: Task, event: TaskEvent): WebhookDelivery | undefined {
  const webhook = task.webhook;
  if (!webhook || event.kind !== "status_changed" || !webhook.statuses.includes(event.status)) return undefined;
  return {
    // The first event can be written twice (a creator that died is completed by a reader),
    // so its delivery's id is fixed; later events' deliveries get a fresh one, time-ordered
    // like task ids so that the outbox's id index grows at its end (bench/webhook-ids.ts).
    id: event.sequence === 1 ? `msg_${task.id.replaceAll("-", "")}_1` : `msg_${timeOrderedId(event.time).replaceAll("-", "")}`,
    taskId: task.id,
    sequence: event.sequence,
    ...(task.owner !== undefined ? { owner: task.owner } : {}),
    url: webhook.url,
    status: event.status,
    ...(event.previousStatus !== undefined ? { previousStatus: event.previousStatus } : {}),
    time: event.time,
    task: summarize(task),
    state: "pending",
    attempts: 0,
    createdAt: event.time,
    nextAttemptAt: event.time,
  };
}

/** The receiver a URL names (its host and port): senders share their slots out by it. */
export function receiverOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export interface RetryPolicy {
  /** Retry n waits between half and all of baseDelayMs·2^(n-1) (full jitter in its upper half), capped at maxDelayMs. */
  baseDelayMs: number;
  /** No wait between attempts is longer (a Retry-After included). */
  maxDelayMs: number;
  /** After this long since the delivery was made, it is marked failed instead of retried. */
  horizonMs: number;
}

/** What an attempt came to, as the sender saw it. */
export type AttemptResult =
  | { kind: "delivered"; statusCode: number }
  | { kind: "gone"; statusCode: 410 }
  | { kind: "refused"; statusCode?: number; error: string; retryAfterMs?: number };

/**
 * The delivery after one attempt: delivered, stopped, retried after a capped
 * exponential backoff with full jitter (or the receiver's Retry-After, capped),
 * or failed once the next attempt would fall past the horizon.
 */
export function afterAttempt(
  delivery: WebhookDelivery,
  result: AttemptResult,
  now: Date,
  policy: RetryPolicy,
  random: () => number = Math.random,
): WebhookDelivery {
  const attempts = delivery.attempts + 1;
  const { lastStatusCode: _s, lastError: _e, ...rest } = delivery;
  const base = { ...rest, attempts, lastAttemptAt: now, ...(result.statusCode !== undefined ? { lastStatusCode: result.statusCode } : {}) };
  if (result.kind === "delivered") return { ...base, state: "delivered" };
  if (result.kind === "gone")
    return { ...base, state: "stopped", lastError: "the receiver answered 410 Gone: no more deliveries for this task" };
  const wait = result.retryAfterMs !== undefined ? Math.min(result.retryAfterMs, policy.maxDelayMs) : backoffMs(attempts, policy, random);
  const next = new Date(now.getTime() + wait);
  const expired = next.getTime() > delivery.createdAt.getTime() + policy.horizonMs;
  return { ...base, state: expired ? "failed" : "pending", nextAttemptAt: next, lastError: result.error };
}

/** The wait before retry `attempt` (1 = after the first attempt): exponential, capped, with full jitter in its upper half. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
