// When the webhook sender looks in the store for due deliveries. A look skips a
// receiver whose slots are all taken (and on SQLite scans its pending deliveries
// to do so), so a transition for that receiver must not cause one; a transition
// for any other receiver must. Real HTTP receiver on loopback; the store is a
// stand-in that counts the looks.
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { receiverOf, type WebhookDelivery } from "../../src/domain/webhooks.js";
import { createTask } from "../../src/domain/transitions.js";
import type { TaskStore } from "../../src/store/task-store.js";
import { WebhookSender } from "../../src/webhooks/sender.js";
import { WebhookUrlGuard } from "../../src/webhooks/url-guard.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

let receiver: WebhookReceiver;
beforeAll(async () => {
  receiver = await WebhookReceiver.start();
  receiver.answer(() => "hang");
});
afterAll(() => receiver.close());

function deliveryTo(url: string, n: number): WebhookDelivery {
  const { task } = createTask({ prompt: `p${n}`, systemPrompt: "", maxIterations: 5, labels: {}, tools: [], owner: "" }, new Date());
  const now = new Date();
  return {
    id: `msg_${n}`,
    taskId: task.id,
    sequence: 2,
    url,
    status: "completed",
    time: now,
    task,
    state: "pending",
    attempts: 0,
    createdAt: now,
    nextAttemptAt: now,
  };
}

describe("webhook sender looks", () => {
  it("should not look for due deliveries on a transition for a receiver with all its slots taken, and should on one for another receiver", async () => {
    const pending = Array.from({ length: 10 }, (_, n) => deliveryTo(receiver.url, n));
    let looks = 0;
    const store = {
      async dueDeliveries(_now: Date, limit: number, _holdMs: number, skipReceivers: string[] = []) {
        looks += 1;
        const due = pending.filter((d) => !skipReceivers.includes(receiverOf(d.url))).slice(0, limit);
        for (const d of due) pending.splice(pending.indexOf(d), 1);
        return due;
      },
      async recordDelivery() {},
    } as unknown as TaskStore;
    const sender = new WebhookSender({
      store,
      guard: new WebhookUrlGuard(["127.0.0.1"]),
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      policy: { baseDelayMs: 1_000, maxDelayMs: 10_000, horizonMs: 60_000 },
      timeoutMs: 60_000,
      concurrency: 4, // two slots per receiver
      pollMs: 3_600_000, // no poll during the test: only pokes look
      logger: pino({ level: "silent" }),
    });
    sender.start();
    try {
      // The first look takes the receiver's two slots; its requests hang.
      await expect.poll(() => receiver.open).toBe(2);
      const before = looks;

      for (let i = 0; i < 5; i++) sender.poke(receiverOf(receiver.url));
      // Well past the poke batching (20 ms): a look would have happened by now.
      await sleep(300);
      expect(looks).toBe(before);

      sender.poke("127.0.0.1:9"); // another receiver's transition
      await expect.poll(() => looks).toBe(before + 1);
    } finally {
      await sender.stop();
    }
  });
});
