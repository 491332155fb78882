import { describe, expect, it } from "vitest";
import type { TaskStatus } from "./task.js";
import { afterAttempt, backoffMs, deliveryFor, type WebhookDelivery } from "./webhooks.js";
import { cancel, commitTransition, createTask } from "./transitions.js";

const policy = { baseDelayMs: 1_000, maxDelayMs: 30_000, horizonMs: 60_000 };
const start = new Date("2026-01-01T00:00:00Z");

/** A task with a webhook on `statuses`, just created. */
const created = (statuses: TaskStatus[], owner = "k") =>
  createTask(
    { prompt: "p", systemPrompt: "", maxIterations: 3, labels: {}, tools: [], owner, webhook: { url: "https://h.example/", statuses } },
    start,
  );

function pending(): WebhookDelivery {
  return commitTransition(created(["cancelled"]).task, cancel("stop"), start).delivery!;
}

describe("deliveryFor", () => {
  it("should make a delivery only for a status change the webhook asks for, carrying the task without its checkpoint", () => {
    const { task, delivery: onCreate } = created(["cancelled"]);
    expect(onCreate).toBeUndefined();
    const { event, delivery } = commitTransition(task, cancel("stop"), start);
    expect(delivery).toMatchObject({
      taskId: task.id,
      sequence: event.sequence,
      owner: "k",
      status: "cancelled",
      previousStatus: "pending",
      state: "pending",
      attempts: 0,
    });
    expect(delivery!.task.checkpoint).toBeUndefined();
    expect(deliveryFor({ ...task, webhook: undefined }, event)).toBeUndefined();
  });

  it("should give the first event's delivery an id fixed by the task (it may be written twice) and later ones fresh ids", () => {
    const { task, event, delivery } = created(["pending", "cancelled"], "");
    expect(delivery!.id).toBe(`msg_${task.id.replaceAll("-", "")}_1`);
    expect(deliveryFor(task, event)!.id).toBe(delivery!.id);
    const later = commitTransition(task, cancel(""), start);
    expect(later.delivery!.id).toMatch(/^msg_[0-9a-f]{32}$/);
  });

  it("should give later events' deliveries UUID v7 ids in the order they were made, also within one millisecond", () => {
    const cancelledAt = (at: Date) => commitTransition(created(["cancelled"]).task, cancel(""), at).delivery!.id;
    const sameMs = Array.from({ length: 300 }, () => cancelledAt(start));
    const later = [1, 60_000, 86_400_000].map((ms) => cancelledAt(new Date(start.getTime() + ms)));
    for (const id of [...sameMs, ...later]) expect(id).toMatch(/^msg_[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    expect([...sameMs].sort()).toEqual(sameMs);
    expect([...later].sort()).toEqual(later);
    expect(sameMs.at(-1)! < later[0]!).toBe(true);
    expect(new Set(sameMs).size).toBe(sameMs.length);
  });
});

describe("afterAttempt", () => {
  it("should mark a 2xx delivered and a 410 stopped, counting the attempt", () => {
    expect(afterAttempt(pending(), { kind: "delivered", statusCode: 204 }, start, policy)).toMatchObject({
      state: "delivered",
      attempts: 1,
      lastStatusCode: 204,
    });
    expect(afterAttempt(pending(), { kind: "gone", statusCode: 410 }, start, policy)).toMatchObject({
      state: "stopped",
      attempts: 1,
      lastStatusCode: 410,
    });
  });

  it("should schedule retry n between half and all of base * 2^(n-1), capped at the maximum", () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(30_000, 1_000 * 2 ** (attempt - 1));
      expect(backoffMs(attempt, policy, () => 0)).toBe(ceiling / 2);
      expect(backoffMs(attempt, policy, () => 1)).toBe(ceiling);
    }
  });

  it("should wait a receiver's Retry-After, capped at the maximum wait", () => {
    const retry = (retryAfterMs: number) =>
      afterAttempt(pending(), { kind: "refused", statusCode: 429, error: "HTTP 429", retryAfterMs }, start, policy);
    expect(retry(7_000).nextAttemptAt.getTime() - start.getTime()).toBe(7_000);
    expect(retry(3_600_000).nextAttemptAt.getTime() - start.getTime()).toBe(30_000);
  });

  it("should mark a delivery failed once its next attempt would fall past the horizon", () => {
    let delivery = pending();
    let now = start;
    while (delivery.state === "pending") {
      delivery = afterAttempt(delivery, { kind: "refused", error: "ECONNREFUSED" }, now, policy, () => 1);
      now = delivery.nextAttemptAt;
    }
    expect(delivery).toMatchObject({ state: "failed", lastError: "ECONNREFUSED" });
    expect(delivery.lastAttemptAt!.getTime() - start.getTime()).toBeLessThanOrEqual(policy.horizonMs);
    expect(delivery.attempts).toBe(6); // at 0, 1, 3, 7, 15 and 31 s; the next would be at 61 s
  });
});
