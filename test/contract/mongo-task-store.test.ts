import { BSON, MongoClient, type Db } from "mongodb";
import { expect, it } from "vitest";
import type { Task } from "../../src/domain/task.js";
import { cancel, checkpoint, claim, commitTransition, complete, createTask } from "../../src/domain/transitions.js";
import type { WebhookDelivery } from "../../src/domain/webhooks.js";
import { toDeliveryDocument } from "../../src/store/delivery-document.js";
import { eventId, toMongoTask, type MongoEventDocument, type MongoTaskDocument } from "../../src/store/mongo/mongo-document.js";
import type { InputsDocument } from "../../src/store/mongo/mongo-inputs.js";
import type { QueueDocument } from "../../src/store/mongo/mongo-queue.js";
import { MongoTaskStore } from "../../src/store/mongo/mongo-task-store.js";
import { MongoWebhookDeliveries, type MongoDeliveryDocument } from "../../src/store/mongo/mongo-webhooks.js";
import { toTaskDocument } from "../../src/store/task-document.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";
import { conversationAfter, progressAt } from "./growing-conversation.js";
import { describeTaskStoreContract } from "./task-store-contract.js";

/** Runs `work` with a store on a database of its own and a raw view of that database, dropped after. */
async function withStore(work: (store: MongoTaskStore, db: Db) => Promise<void>, now?: () => Date): Promise<void> {
  const database = uniqueDatabase();
  const store = await MongoTaskStore.open({ uri: mongodbUri(), database, ...(now ? { now } : {}) });
  const raw = await MongoClient.connect(mongodbUri());
  try {
    await work(store, raw.db(database));
  } finally {
    await store.dropDatabase();
    await store.close();
    await raw.close();
  }
}

/** A task created with `prompt` and claimed: RUNNING, with a lease. */
async function runningTask(store: MongoTaskStore, prompt: string): Promise<Task> {
  const { task } = await store.create(
    createTask({ prompt, systemPrompt: "", maxIterations: 60, labels: {}, tools: [], owner: "" }, new Date()),
  );
  return (await store.commit(task.id, claim("w", 60_000))).task;
}

/** The task's documents as stored: its view, and the state its newest event holds. */
async function storedDocuments(db: Db, id: string): Promise<{ view: MongoTaskDocument; state: MongoTaskDocument }> {
  const view = (await db.collection<MongoTaskDocument>("tasks").findOne({ _id: id }))!;
  const newest = await db.collection<MongoEventDocument>("task_events").findOne({ _id: eventId(id, view.sequence) });
  return { view, state: newest!.state! };
}

/**
 * Puts the task's view and its previous newest event back as `before` had them, as if the
 * writer of the newest event had died before its last two steps (updating the view, dropping
 * the previous event's state).
 */
async function undoViewUpdate(db: Db, before: { view: MongoTaskDocument; state: MongoTaskDocument }): Promise<void> {
  const id = before.view._id;
  await db.collection<MongoTaskDocument>("tasks").replaceOne({ _id: id }, before.view);
  await db
    .collection<MongoEventDocument>("task_events")
    .updateOne({ _id: eventId(id, before.view.sequence) }, { $set: { state: before.state } });
}

/** The claim-queue entry a Resume of `task` writes, before its event, for the PENDING state at `sequence`. */
function resumingEntry(task: Task, sequence: number, writtenAt: Date): QueueDocument {
  return { _id: task.id, status: "pending", created_at: task.createdAt, sequence, written_at: writtenAt };
}

describeWithMongo("MongoDB adapter", () => {
  it("should keep a checkpoint's conversation apart in a few parts: the task's documents stay flat over 50 iterations, Get returns it all", async () => {
    await withStore(async (store, db) => {
      const running = await runningTask(store, "grow");
      const bytes: number[] = [];
      for (let n = 1; n <= 50; n++) {
        await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, n)));
        const { view, state } = await storedDocuments(db, running.id);
        expect(view.checkpoint?.messages).toEqual([]);
        expect(state.checkpoint?.messages).toEqual([]);
        bytes.push(BSON.calculateObjectSize(state));
        // A few parts (a binary counter over ~2 KB of text), and no part left that none names.
        expect(state.checkpoint_parts!.length).toBeLessThanOrEqual(8);
        expect(await db.collection("checkpoint_messages").countDocuments({})).toBe(state.checkpoint_parts!.length);
      }
      // A state holding the conversation would have grown as much as it did: it grew by the
      // list of parts only.
      const grown = BSON.calculateObjectSize({ m: conversationAfter(50) }) - BSON.calculateObjectSize({ m: conversationAfter(1) });
      expect(Math.max(...bytes) - bytes[0]!).toBeLessThan(grown / 10);
      expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(50));
      const done = await store.commit(running.id, complete(running.lease!.token, "done", progressAt(running, 51)));
      expect(done.task.checkpoint?.messages).toEqual(conversationAfter(51));
      expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(51));
    });
  });

  it("should give every Get a whole conversation while commits replace the parts it is read from", async () => {
    await withStore(async (store) => {
      const running = await runningTask(store, "grow");
      let committing = true;
      const commits = (async () => {
        for (let n = 1; n <= 30; n++) await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, n)));
        committing = false;
      })();
      const seen = new Set<number>();
      while (committing) {
        const messages = (await store.get(running.id))?.checkpoint?.messages ?? [];
        const n = (messages.length - 1) / 2;
        if (messages.length > 0) expect(messages).toEqual(conversationAfter(n));
        seen.add(n);
      }
      await commits;
      // Gets ran across the commits, not all before or after them.
      expect(seen.size).toBeGreaterThan(3);
    });
  });

  it("should drop, when a run is taken over, the conversation parts its dead holder wrote that no state names, and keep the conversation whole", async () => {
    let clock = new Date();
    await withStore(
      async (store, db) => {
        const running = await runningTask(store, "grow");
        for (let n = 1; n <= 5; n++) await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, n)));
        // The holder then wrote the part of iteration 6 and died before the event naming it.
        const parts = db.collection<{ _id: string; task_id: string; messages: unknown[] }>("checkpoint_messages");
        await parts.insertOne({ _id: `${running.id}:left-by-a-dead-holder`, task_id: running.id, messages: [] });
        const named = (await storedDocuments(db, running.id)).state.checkpoint_parts!.map((p) => p.id);
        expect(await parts.countDocuments({ task_id: running.id })).toBe(named.length + 1);

        clock = new Date(clock.getTime() + 120_000); // its lease (60 s) has run out
        const taken = await store.claimNext(claim("w2", 60_000));
        expect(taken?.task.id).toBe(running.id);
        expect(taken?.task.takeovers).toBe(1);
        expect((await parts.find({ task_id: running.id }).toArray()).map((p) => p._id).sort()).toEqual([...named].sort());
        expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(5));
      },
      () => clock,
    );
  });

  it("should commit after an event the view does not show yet (its writer died before updating the view), with dense sequences", async () => {
    await withStore(async (store, db) => {
      const running = await runningTask(store, "grow");
      await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, 1)));
      const before = await storedDocuments(db, running.id);
      await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, 2)));
      await undoViewUpdate(db, before);

      const third = await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, 3)));
      expect(third.event.sequence).toBe(before.view.sequence + 2);
      expect((await store.events(running.id, before.view.sequence, 10)).map((e) => e.sequence)).toEqual([
        before.view.sequence + 1,
        before.view.sequence + 2,
      ]);
      expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(3));
    });
  });

  it("should commit what the newest event allows when the view still shows an older one that refuses it (a takeover whose view update died)", async () => {
    let clock = new Date();
    await withStore(
      async (store, db) => {
        const first = await runningTask(store, "grow");
        const before = await storedDocuments(db, first.id);
        clock = new Date(clock.getTime() + 120_000); // the first lease has run out
        const taken = (await store.commit(first.id, claim("w2", 60_000))).task;
        await undoViewUpdate(db, before); // the view still names the first holder's lease

        const committed = await store.commit(first.id, checkpoint(taken.lease!.token, progressAt(taken, 1)));
        expect(committed.event.sequence).toBe(taken.sequence + 1);
        expect(committed.task.lease?.token).toBe(taken.lease!.token);
        await expect(store.commit(first.id, checkpoint(first.lease!.token, progressAt(first, 2)))).rejects.toThrow(/lease/i);
      },
      () => clock,
    );
  });

  it("should store a 250 KB prompt once, apart: the task's documents hold its head; a delete removes it and the conversation", async () => {
    await withStore(async (store, db) => {
      const prompt = `long ${"x".repeat(250_000)}`;
      const running = await runningTask(store, prompt);
      // Its checkpoint carries the prompt too, as the agent loop's does (initial_prompt).
      const progress = (n: number) => {
        const p = progressAt(running, n);
        return { ...p, checkpoint: { ...p.checkpoint, initialPrompt: prompt } };
      };
      for (let n = 1; n <= 5; n++) {
        await store.commit(running.id, checkpoint(running.lease!.token, progress(n)));
        const { view, state } = await storedDocuments(db, running.id);
        expect(BSON.calculateObjectSize(view)).toBeLessThan(8_192);
        expect(BSON.calculateObjectSize(state)).toBeLessThan(8_192);
      }
      expect(await db.collection("task_inputs").countDocuments({})).toBe(1);
      expect(await store.get(running.id)).toMatchObject({ prompt, checkpoint: { initialPrompt: prompt, iteration: 5 } });
      expect((await store.list({ statuses: [], labels: {}, limit: 10 }))[0]?.prompt).toBe(prompt);
      expect(await store.delete(running.id)).toBe(true);
      expect(await db.collection("task_inputs").countDocuments({})).toBe(0);
      expect(await db.collection("checkpoint_messages").countDocuments({})).toBe(0);
    });
  });

  it("should read a task whose documents hold its conversation and long inputs inline (stored before they were kept apart), and move them out at its next commit", async () => {
    await withStore(async (store, db) => {
      const running = await runningTask(store, "grow");
      await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, 3)));
      const inputs = {
        prompt: "p".repeat(5_000),
        systemPrompt: "s".repeat(5_000),
        tools: [{ name: "t", description: "d", parameters: { type: "object" } }],
      };
      // The documents as this store wrote them before: everything inline, nothing apart.
      const inline = toMongoTask(toTaskDocument({ ...(await store.get(running.id))!, ...inputs }));
      const { view } = await storedDocuments(db, running.id);
      const newest = eventId(running.id, view.sequence);
      await db.collection<MongoEventDocument>("task_events").updateOne({ _id: newest }, { $set: { state: inline } });
      await db.collection<MongoTaskDocument>("tasks").replaceOne({ _id: running.id }, inline);
      await db.collection("checkpoint_messages").deleteMany({});
      expect(await store.get(running.id)).toMatchObject({ ...inputs, checkpoint: { messages: conversationAfter(3) } });

      await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, 4)));
      const { state } = await storedDocuments(db, running.id);
      expect(state).toMatchObject({
        prompt: "p".repeat(1_000),
        prompt_truncated: true,
        system_prompt: "",
        tools: [],
        checkpoint: { messages: [] },
      });
      expect(state.inputs_id).toBeDefined();
      expect(await store.get(running.id)).toMatchObject({ ...inputs, checkpoint: { messages: conversationAfter(4) } });
    });
  });

  it("should keep, when a commit takes a task out of the claim queue, an entry a Resume has just written for the task's next state", async () => {
    await withStore(async (store, db) => {
      const running = await runningTask(store, "p");
      // A Resume that read the completion below wrote the entry of the PENDING state it is
      // about to commit (at the completion's sequence + 1), before the completion's writer
      // got to remove the entry of the RUNNING state.
      const queue = db.collection<QueueDocument>("task_queue");
      await queue.replaceOne({ _id: running.id }, resumingEntry(running, running.sequence + 2, new Date()));

      await store.commit(running.id, complete(running.lease!.token, "done", progressAt(running, 1)));
      expect(await queue.findOne({ _id: running.id })).toMatchObject({ sequence: running.sequence + 2 });

      // The entry of a state the commit supersedes goes, and so does one written before
      // entries named their sequence.
      const again = await runningTask(store, "q");
      await store.commit(again.id, complete(again.lease!.token, "done", progressAt(again, 1)));
      expect(await queue.findOne({ _id: again.id })).toBeNull();
      const older = await runningTask(store, "r");
      await queue.replaceOne({ _id: older.id }, { status: "running", created_at: older.createdAt });
      await store.commit(older.id, complete(older.lease!.token, "done", progressAt(older, 1)));
      expect(await queue.findOne({ _id: older.id })).toBeNull();
    });
  });

  it("should leave a claim-queue entry written for a state not committed yet, until it is older than a writer can take", async () => {
    let clock = new Date();
    await withStore(
      async (store, db) => {
        const running = await runningTask(store, "p");
        const done = (await store.commit(running.id, complete(running.lease!.token, "done", progressAt(running, 1)))).task;
        const queue = db.collection<QueueDocument>("task_queue");
        await queue.insertOne(resumingEntry(done, done.sequence + 1, clock));

        expect(await store.claimNext(claim("w2", 60_000))).toBeUndefined();
        expect(await queue.findOne({ _id: done.id })).not.toBeNull();

        clock = new Date(clock.getTime() + 120_000); // its writer died before committing
        expect(await store.claimNext(claim("w2", 60_000))).toBeUndefined();
        expect(await queue.findOne({ _id: done.id })).toBeNull();
      },
      () => clock,
    );
  });

  it("should remove what a Submit that died before storing its task left (its claim-queue entry and long inputs), and nothing a retry wrote since", async () => {
    let clock = new Date();
    await withStore(
      async (store, db) => {
        const { task } = createTask({ prompt: "p", systemPrompt: "", maxIterations: 1, labels: {}, tools: [], owner: "" }, clock);
        const queue = db.collection<QueueDocument>("task_queue");
        const inputs = db.collection<InputsDocument>("task_inputs");
        await queue.insertOne({ _id: task.id, status: "pending", created_at: clock, sequence: task.sequence, written_at: clock });
        const inputsOf = (suffix: string, at: Date): InputsDocument => ({
          _id: `${task.id}:${suffix}`,
          task_id: task.id,
          prompt: "p",
          system_prompt: "",
          tools: [],
          written_at: at,
        });
        await inputs.insertOne(inputsOf("dead", clock));

        expect(await store.claimNext(claim("w", 60_000))).toBeUndefined();
        expect(await queue.countDocuments({ _id: task.id })).toBe(1); // its creator may still be at it

        clock = new Date(clock.getTime() + 120_000);
        await inputs.insertOne(inputsOf("retry", clock)); // a retry of its request_id, under way
        expect(await store.claimNext(claim("w", 60_000))).toBeUndefined();
        expect(await queue.countDocuments({ _id: task.id })).toBe(0);
        expect((await inputs.find({ task_id: task.id }).toArray()).map((d) => d._id)).toEqual([`${task.id}:retry`]);
      },
      () => clock,
    );
  });

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
