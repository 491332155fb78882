import { MongoClient } from "mongodb";
import { expect, it } from "vitest";
import { cancel, commitTransition, createTask } from "../../src/domain/transitions.js";
import type { WebhookDelivery } from "../../src/domain/webhooks.js";
import { toDeliveryDocument } from "../../src/store/delivery-document.js";
import type { MongoEventDocument } from "../../src/store/mongo/mongo-document.js";
import { MongoTaskStore } from "../../src/store/mongo/mongo-task-store.js";
import { MongoWebhookDeliveries, type MongoDeliveryDocument } from "../../src/store/mongo/mongo-webhooks.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";
import { describeTaskStoreContract } from "./task-store-contract.js";

describeWithMongo("MongoDB adapter", () => {
  describeTaskStoreContract("mongodb", async () => {
    let offset = 0;
    const store = await MongoTaskStore.open({
      uri: mongodbUri(),
      database: uniqueDatabase(),
      now: () => new Date(Date.now() + offset),
    });
    const close = store.close.bind(store);
    store.close = async () => {
      await store.dropDatabase();
      await close();
    };
    return { store, advance: (ms) => void (offset += ms) };
  });

  it("should find a due webhook delivery behind more pending ones than a look reads, when those are backing off", async () => {
    const client = await MongoClient.connect(mongodbUri());
    const db = client.db(uniqueDatabase());
    try {
      const deliveries = db.collection<MongoDeliveryDocument>("webhook_deliveries");
      const LOOK_READS = 5;
      const outbox = new MongoWebhookDeliveries(
        deliveries,
        db.collection<{ _id: string }>("webhook_gone"),
        db.collection<MongoEventDocument>("task_events"),
        (taskId, sequence) => `${taskId}:${sequence}`,
        LOOK_READS,
      );
      await outbox.createIndexes();
      const now = new Date();
      /** A confirmed pending delivery of a task of its own, next attempted at `next`. */
      const pendingUntil = async (next: Date): Promise<WebhookDelivery> => {
        const webhook = { url: "http://127.0.0.1:9/hook", statuses: ["cancelled" as const] };
        const { task } = createTask({ prompt: "p", systemPrompt: "", maxIterations: 1, labels: {}, tools: [], owner: "", webhook }, now);
        const delivery = { ...commitTransition(task, cancel(""), now).delivery!, nextAttemptAt: next };
        await deliveries.insertOne({ ...toDeliveryDocument(delivery), confirmed: true });
        return delivery;
      };
      // Written first, so first in a scan of all pending ones: a receiver down, each backing off an hour.
      for (let i = 0; i < 2 * LOOK_READS; i++) await pendingUntil(new Date(now.getTime() + 3_600_000));
      const dueNow = await pendingUntil(new Date(now.getTime() - 1_000));
      const taken = await outbox.due(now, 10, 30_000, []);
      expect(taken.map((d) => d.id)).toEqual([dueNow.id]);
    } finally {
      await db.dropDatabase();
      await client.close();
    }
  });
});
