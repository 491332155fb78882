// The webhook outbox on MongoDB: collection webhook_deliveries, one document
// per delivery (_id = its webhook-id), and webhook_gone (_id = task id) for
// tasks whose receiver answered 410.
//
// Only an insert is atomic on FerretDB, and a transition commits by inserting
// its event (see mongo-task-store.ts), so a delivery cannot be written in the
// same write as its event. Instead the delivery is written first, as an intent
// under a fresh id, and the event names it (`delivery_id`): the event is the
// commit point of both. A delivery counts only once its event is found naming
// it (then it is marked `confirmed`); an intent whose sequence went to another
// writer's event, or whose task is gone, is deleted. So no transition is
// without its delivery, and no delivery is sent without its transition.
import type { Collection, Filter } from "mongodb";
import { isDuplicateKey } from "./mongo-errors.js";
import { receiverOf, type DeliveryRecord, type WebhookDelivery } from "../../domain/webhooks.js";
import type { DeliveryPage } from "../task-store.js";
import {
  fromDeliveryDocument,
  fromDeliveryRecordDocument,
  GONE_BEFORE,
  toDeliveryDocument,
  type DeliveryDocument,
} from "../delivery-document.js";
import type { MongoEventDocument } from "./mongo-document.js";

export interface MongoDeliveryDocument extends DeliveryDocument {
  /** Set once the event that names it was found: it is a real delivery. */
  confirmed?: true;
}

/** Due deliveries read per look: bounds what one look holds in memory. */
const SCAN_LIMIT = 10_000;
/** An intent whose event is still missing this long after it was written will never get one. */
const ABANDONED_AFTER_MS = 10 * 60_000;

export class MongoWebhookDeliveries {
  constructor(
    private readonly deliveries: Collection<MongoDeliveryDocument>,
    private readonly gone: Collection<{ _id: string }>,
    private readonly events: Collection<MongoEventDocument>,
    private readonly eventId: (taskId: string, sequence: number) => string,
    private readonly scanLimit: number = SCAN_LIMIT,
  ) {}

  async createIndexes(): Promise<void> {
    await this.deliveries.createIndex({ task_id: 1, sequence: 1 }, { name: "deliveries_by_task" });
    await this.deliveries.createIndex({ state: 1, next_attempt_at: 1 }, { name: "deliveries_pending" });
  }

  /** Writes the delivery before the event that will name it (the first event's may be written twice). */
  async intend(delivery: WebhookDelivery): Promise<void> {
    try {
      await this.deliveries.insertOne(toDeliveryDocument(delivery));
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
  }

  async due(now: Date, limit: number, leaseMs: number, skipReceivers: string[]): Promise<WebhookDelivery[]> {
    // Only the due ones, soonest first (index deliveries_pending): the deliveries backing off
    // from a receiver that is down are not read, however many there are, and a delivery due
    // now is never left unread behind them (a look read the first 10,000 pending ones before).
    const due = await this.deliveries
      .find({ state: "pending", next_attempt_at: { $lte: now } }, { projection: { task: 0 } })
      .sort({ next_attempt_at: 1 })
      .limit(this.scanLimit)
      .toArray();
    // Of each task its lowest due delivery only, and that one only when no earlier delivery of
    // the task is pending (backing off, or held for an attempt): a task's deliveries go out in order.
    const first = new Map<string, MongoDeliveryDocument>();
    for (const doc of due) {
      const seen = first.get(doc.task_id);
      if (!seen || doc.sequence < seen.sequence) first.set(doc.task_id, doc);
    }
    const candidates = [...first.values()]
      .filter((d) => !skipReceivers.includes(receiverOf(d.url)))
      .sort((a, b) => a.next_attempt_at.getTime() - b.next_attempt_at.getTime());
    const taken: WebhookDelivery[] = [];
    for (const candidate of candidates) {
      if (taken.length >= limit) break;
      if (await this.hasEarlierPending(candidate.task_id, candidate.sequence)) continue;
      if (!(await this.isReal(candidate, now))) continue;
      if (await this.gone.findOne({ _id: candidate.task_id })) {
        await this.deliveries.updateOne({ _id: candidate._id }, { $set: { state: "stopped", last_error: GONE_BEFORE } });
        continue;
      }
      // Hold it for the attempt. Not atomic on FerretDB: two replicas may both take it,
      // which sends it twice with one webhook-id (at least once allows that).
      const held = new Date(now.getTime() + leaseMs);
      const { matchedCount } = await this.deliveries.updateOne(
        { _id: candidate._id, state: "pending", next_attempt_at: candidate.next_attempt_at },
        { $set: { next_attempt_at: held } },
      );
      if (matchedCount === 0) continue;
      const full = await this.deliveries.findOne({ _id: candidate._id });
      if (full) taken.push({ ...fromDeliveryDocument(full), nextAttemptAt: held });
    }
    return taken;
  }

  /**
   * A delivery whose event this process has just committed (so it is real: confirmed here),
   * held as due() holds one, unless it may not go now (see TaskStore.holdDelivery).
   */
  async hold(delivery: WebhookDelivery, now: Date, leaseMs: number): Promise<WebhookDelivery | undefined> {
    if (await this.gone.findOne({ _id: delivery.taskId })) return undefined; // due() stores it stopped
    if (await this.hasEarlierPending(delivery.taskId, delivery.sequence)) return undefined;
    const held = new Date(now.getTime() + leaseMs);
    const { matchedCount } = await this.deliveries.updateOne(
      { _id: delivery.id, state: "pending", next_attempt_at: delivery.nextAttemptAt },
      { $set: { next_attempt_at: held, confirmed: true } },
    );
    return matchedCount === 1 ? { ...delivery, nextAttemptAt: held } : undefined;
  }

  async record(delivery: WebhookDelivery): Promise<void> {
    // Only what an attempt changes: the transition and its task were written once.
    const doc = toDeliveryDocument(delivery);
    const unset = (["last_attempt_at", "last_status_code", "last_error"] as const).filter((k) => doc[k] === undefined);
    await this.deliveries.updateOne(
      { _id: delivery.id },
      {
        $set: {
          state: doc.state,
          attempts: doc.attempts,
          next_attempt_at: doc.next_attempt_at,
          confirmed: true,
          ...(doc.last_attempt_at ? { last_attempt_at: doc.last_attempt_at } : {}),
          ...(doc.last_status_code !== undefined ? { last_status_code: doc.last_status_code } : {}),
          ...(doc.last_error !== undefined ? { last_error: doc.last_error } : {}),
        },
        ...(unset.length > 0 ? { $unset: Object.fromEntries(unset.map((k) => [k, ""])) } : {}),
      },
    );
    if (delivery.state !== "stopped" || delivery.lastStatusCode !== 410) return;
    await this.gone.replaceOne({ _id: delivery.taskId }, {}, { upsert: true }).catch(ignoreDuplicate);
    await this.deliveries.updateMany(
      { task_id: delivery.taskId, state: "pending" },
      { $set: { state: "stopped", last_error: GONE_BEFORE } },
    );
  }

  /** A page of the task's real deliveries, by sequence (intents not yet confirmed are checked against their events). */
  async list(taskId: string, page: DeliveryPage, now: Date): Promise<DeliveryRecord[]> {
    // Without their task snapshots: one per delivery, a task resumed many times with a
    // long result would make this read heavy for what the answer never shows.
    const read = (filter: Filter<MongoDeliveryDocument>, limit = 0) =>
      this.deliveries
        .find(filter, { projection: { task: 0 } })
        .sort({ sequence: 1 })
        .limit(limit)
        .toArray();
    const real: DeliveryRecord[] = [];
    let after = page.afterSequence;
    // Intents that are not real are left out, so a page may take more than one read. Each
    // read ends with a whole sequence: an intent that lost its sequence shares it with the
    // real delivery, which must not be cut off at the read's limit.
    while (real.length < page.limit) {
      const want = page.limit - real.length;
      const docs = await read({ task_id: taskId, sequence: { $gt: after } }, want);
      const full = docs.length === want;
      const last = docs.at(-1)?.sequence;
      if (full && last !== undefined) {
        const readOfLast = docs.filter((d) => d.sequence === last).map((d) => d._id);
        docs.push(...(await read({ task_id: taskId, sequence: last, _id: { $nin: readOfLast } })));
      }
      for (const doc of docs) if (await this.isReal(doc, now)) real.push(fromDeliveryRecordDocument(doc));
      if (!full || last === undefined) break;
      after = last;
    }
    return real;
  }

  async deleteTask(taskId: string): Promise<void> {
    await this.deliveries.deleteMany({ task_id: taskId });
    await this.gone.deleteOne({ _id: taskId });
  }

  /** An earlier delivery of the task is still pending: this one waits for it (index deliveries_by_task). */
  private async hasEarlierPending(taskId: string, sequence: number): Promise<boolean> {
    const earlier = await this.deliveries.findOne(
      { task_id: taskId, state: "pending", sequence: { $lt: sequence } },
      { projection: { _id: 1 } },
    );
    return earlier !== null;
  }

  /**
   * True when the event at the delivery's sequence names it; an intent that lost its
   * sequence to another event, or was abandoned, is deleted. An intent whose event is not
   * written yet is not real yet.
   */
  private async isReal(doc: MongoDeliveryDocument, now: Date): Promise<boolean> {
    if (doc.confirmed) return true;
    const event = await this.events.findOne(
      { _id: this.eventId(doc.task_id, doc.sequence) },
      { projection: { delivery_id: 1, deleted: 1 } },
    );
    // The first event may be rewritten without its delivery_id by a reader (head()); its delivery's id is fixed.
    const names = event && !event.deleted && (event.delivery_id === doc._id || (doc.sequence === 1 && doc._id.endsWith("_1")));
    if (names) {
      await this.deliveries.updateOne({ _id: doc._id }, { $set: { confirmed: true } });
      return true;
    }
    if (event || now.getTime() - doc.created_at.getTime() > ABANDONED_AFTER_MS) await this.deliveries.deleteOne({ _id: doc._id });
    return false;
  }
}

function ignoreDuplicate(error: unknown): void {
  if (!isDuplicateKey(error)) throw error;
}
