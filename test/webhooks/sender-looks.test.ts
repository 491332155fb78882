// When the webhook sender looks in the store for due deliveries. A delivery this
// process commits is offered to the sender and goes out at once, with no look,
// when a slot is free; one left over (no slot, or the store will not let it go
// yet) is found by a look when a slot frees. A look skips a receiver whose slots
// are all taken (and on SQLite scans its pending deliveries to do so), so a
// transition for that receiver must not cause one; a transition for any other
// receiver must. Real HTTP receivers on loopback; the store is a stand-in that
// counts the looks.
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { receiverOf, type WebhookDelivery } from "../../src/domain/webhooks.js";
import { createTask } from "../../src/domain/transitions.js";
import type { TaskStore } from "../../src/store/task-store.js";
import { WebhookSender, type WebhookSenderOptions } from "../../src/webhooks/sender.js";
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

/** A store stand-in: `pending` is what a look finds; holdDelivery lets a delivery go unless `refuse` says not. */
function countingStore(pending: WebhookDelivery[], refuse: (d: WebhookDelivery) => boolean = () => false) {
  const counts = { looks: 0, holds: 0, recorded: [] as WebhookDelivery[] };
  const store = {
    async dueDeliveries(_now: Date, limit: number, _holdMs: number, skipReceivers: string[] = []) {
      counts.looks += 1;
      const due = pending.filter((d) => !skipReceivers.includes(receiverOf(d.url))).slice(0, limit);
      for (const d of due) pending.splice(pending.indexOf(d), 1);
      return due;
    },
    async holdDelivery(delivery: WebhookDelivery) {
      counts.holds += 1;
      return refuse(delivery) ? undefined : delivery;
    },
    async recordDelivery(delivery: WebhookDelivery) {
      counts.recorded.push(delivery);
    },
  } as unknown as TaskStore;
  return { store, counts };
}

function senderOn(store: TaskStore): WebhookSender {
  return new WebhookSender(senderOptions(store));
}

function senderOptions(store: TaskStore): WebhookSenderOptions {
  return {
    store,
    guard: new WebhookUrlGuard(["127.0.0.1"]),
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    policy: { baseDelayMs: 1_000, maxDelayMs: 10_000, horizonMs: 60_000 },
    timeoutMs: 60_000,
    concurrency: 4, // two slots per receiver
    pollMs: 3_600_000, // no poll during the test: only pokes and freed slots look
    logger: pino({ level: "silent" }),
  };
}

describe("webhook sender offers", () => {
  let answering: WebhookReceiver;
  beforeAll(async () => {
    answering = await WebhookReceiver.start();
  });
  afterAll(() => answering.close());

  it("should send a delivery this process committed at once, without a look, when a slot is free", async () => {
    const { store, counts } = countingStore([]);
    const sender = senderOn(store);
    sender.start();
    try {
      await expect.poll(() => counts.looks).toBe(1); // the first look, at start, finds nothing
      const delivery = deliveryTo(answering.url, 100);
      sender.offer(delivery);
      await expect.poll(() => counts.recorded.map((d) => [d.id, d.state])).toEqual([[delivery.id, "delivered"]]);
      expect(answering.received.map((r) => r.headers["webhook-id"])).toContain(delivery.id);
      await sleep(100); // past the poke batching (20 ms): a look would have happened by now
      expect(counts.looks).toBe(1);
      expect(counts.holds).toBe(1);
    } finally {
      await sender.stop();
    }
  });

  it("should leave an offered delivery the store will not let go yet for a look, made when the offer's slot frees", async () => {
    const pending: WebhookDelivery[] = [];
    const { store, counts } = countingStore(pending, () => true); // as when an earlier delivery of its task is pending
    const sender = senderOn(store);
    sender.start();
    try {
      await expect.poll(() => counts.looks).toBe(1); // the first look, at start, finds nothing
      const later = deliveryTo(answering.url, 101);
      pending.push(later); // what a look finds
      sender.offer(later);
      await expect.poll(() => counts.recorded.map((d) => [d.id, d.state])).toEqual([[later.id, "delivered"]]);
      expect(counts.holds).toBe(1);
      expect(counts.looks).toBe(2);
    } finally {
      await sender.stop();
    }
  });

  it("should send a delivery left over while its receiver's slots were all taken once one frees, though a look skipped it meanwhile", async () => {
    const slow = await WebhookReceiver.start();
    slow.answer((_request, index) => (index < 2 ? "hang" : { status: 204 }));
    const pending: WebhookDelivery[] = [];
    const { store, counts } = countingStore(pending);
    const sender = new WebhookSender({ ...senderOptions(store), timeoutMs: 1_000 }); // the two hanging attempts end then
    sender.start();
    try {
      await expect.poll(() => counts.looks).toBe(1);
      sender.offer(deliveryTo(slow.url, 200));
      sender.offer(deliveryTo(slow.url, 201));
      await expect.poll(() => slow.open).toBe(2); // both of its slots taken
      const leftOver = deliveryTo(slow.url, 202);
      pending.push(leftOver);
      sender.offer(leftOver);
      sender.poke("127.0.0.1:9"); // another receiver's transition: a look, which skips the busy one
      await expect.poll(() => counts.looks).toBe(2);
      expect(pending).toEqual([leftOver]);
      await expect
        .poll(() => counts.recorded.filter((d) => d.id === leftOver.id).map((d) => d.state), { timeout: 15_000 })
        .toEqual(["delivered"]);
    } finally {
      await sender.stop();
      await slow.close();
    }
  });
});

describe("webhook sender looks", () => {
  it("should not look for due deliveries on a transition for a receiver with all its slots taken, and should on one for another receiver", async () => {
    const pending = Array.from({ length: 10 }, (_, n) => deliveryTo(receiver.url, n));
    const { store, counts } = countingStore(pending);
    const sender = senderOn(store);
    sender.start();
    try {
      // The first look takes the receiver's two slots; its requests hang.
      await expect.poll(() => receiver.open).toBe(2);
      const before = counts.looks;

      for (let i = 0; i < 5; i++) sender.poke(receiverOf(receiver.url));
      sender.offer(deliveryTo(receiver.url, 50)); // no slot: left for a look, which would skip its receiver
      // Well past the poke batching (20 ms): a look would have happened by now.
      await sleep(300);
      expect(counts.looks).toBe(before);
      expect(counts.holds).toBe(0);

      sender.poke("127.0.0.1:9"); // another receiver's transition
      await expect.poll(() => counts.looks).toBe(before + 1);
    } finally {
      await sender.stop();
    }
  });
});
