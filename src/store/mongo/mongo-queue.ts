// The claim queue on MongoDB: task_queue, one small document per PENDING or
// RUNNING task, which is what claims scan (the tasks view would be a full scan
// on FerretDB). The task's events stay the truth; an entry is a hint.
//
//   {_id task id, status, created_at, lease_expires_at?, sequence, written_at}
//
// An entry is written before the event that makes its task PENDING or RUNNING
// (`sequence` is that event's), so every claimable task has one, and removed
// after the task leaves. Writers race on an entry, so a removal names what it
// removes: a commit out of the queue removes only entries written for its
// sequence or an earlier one, and a claim scan that finds an entry not
// claimable removes only that entry as it read it. Otherwise a Resume that
// wrote the entry of its PENDING state while another writer was removing the
// entry of the state before would leave its task PENDING with no entry: never
// claimed. Entries written before these fields existed are removed as before.
import type { Collection, Filter } from "mongodb";
import { isDuplicateKey } from "./mongo-errors.js";
import type { Task } from "../../domain/task.js";

export interface QueueDocument {
  _id: string;
  status: "pending" | "running";
  created_at: Date;
  lease_expires_at?: Date;
  /** The sequence of the event this entry was written for. */
  sequence?: number;
  written_at?: Date;
}

/** An entry as a claim scan read it. */
export interface QueueEntry {
  id: string;
  sequence?: number;
  writtenAt?: Date;
  createdAt: Date;
}

/**
 * An entry whose writer has not committed its state for this long never will: it died
 * between the two. (A Submit's write of its task, or a Resume's of its event, takes
 * milliseconds.)
 */
export const ABANDONED_ENTRY_MS = 60_000;

export class MongoTaskQueue {
  constructor(
    private readonly collection: Collection<QueueDocument>,
    private readonly now: () => Date,
  ) {}

  async createIndexes(): Promise<void> {
    await this.collection.createIndex({ status: 1, created_at: 1 }, { name: "claim_pending" });
    await this.collection.createIndex({ status: 1, lease_expires_at: 1 }, { name: "claim_expired" });
  }

  /** Writes the entry of `task`, a PENDING or RUNNING state about to be committed. */
  async put(task: Task): Promise<void> {
    const entry: QueueDocument = {
      _id: task.id,
      status: task.status === "running" ? "running" : "pending",
      created_at: task.createdAt,
      ...(task.lease ? { lease_expires_at: task.lease.expiresAt } : {}),
      sequence: task.sequence,
      written_at: this.now(),
    };
    try {
      await this.collection.replaceOne({ _id: task.id }, entry, { upsert: true });
    } catch (error) {
      // Two upserts raced to insert the entry (not atomic on FerretDB): replace the winner's.
      if (!isDuplicateKey(error)) throw error;
      await this.collection.replaceOne({ _id: task.id }, entry);
    }
  }

  /** The oldest entries of claimable tasks: PENDING, or RUNNING on a lease that has run out. */
  async scan(limit: number): Promise<QueueEntry[]> {
    const docs = await this.collection
      .find(
        { $or: [{ status: "pending" }, { status: "running", lease_expires_at: { $lte: this.now() } }] },
        { projection: { _id: 1, created_at: 1, sequence: 1, written_at: 1 } },
      )
      .sort({ created_at: 1 })
      .limit(limit)
      .toArray();
    return docs.map((d) => ({
      id: d._id,
      createdAt: d.created_at,
      ...(d.sequence !== undefined ? { sequence: d.sequence } : {}),
      ...(d.written_at !== undefined ? { writtenAt: d.written_at } : {}),
    }));
  }

  /** A hint for the claim scan only: claims judge a lease by the task's event. */
  async renewed(id: string, expiresAt: Date): Promise<void> {
    await this.collection.updateOne({ _id: id }, { $set: { lease_expires_at: expiresAt } });
  }

  /** After `task`, a state out of the queue, was committed: removes the entries it supersedes. */
  async left(task: Task): Promise<void> {
    await this.collection.deleteOne({ _id: task.id, $or: [{ sequence: { $lte: task.sequence } }, { sequence: { $exists: false } }] });
  }

  /**
   * Whether `entry`, whose task is not claimable as of `newest` (its newest state, or
   * undefined when it has none), is left over: written for that state or an older one,
   * or by a writer that died before committing the state it was written for.
   */
  isLeftOver(entry: QueueEntry, newest: Task | undefined): boolean {
    if (newest && (entry.sequence === undefined || entry.sequence <= newest.sequence)) return true;
    const written = entry.writtenAt ?? entry.createdAt;
    return this.now().getTime() - written.getTime() > ABANDONED_ENTRY_MS;
  }

  /** Removes `entry` as the scan read it; one written since by another writer stays. */
  async drop(entry: QueueEntry): Promise<void> {
    const filter: Filter<QueueDocument> =
      entry.sequence === undefined
        ? { _id: entry.id, sequence: { $exists: false } }
        : { _id: entry.id, sequence: entry.sequence, ...(entry.writtenAt ? { written_at: entry.writtenAt } : {}) };
    await this.collection.deleteOne(filter);
  }

  /** The task is being deleted. */
  async delete(id: string): Promise<void> {
    await this.collection.deleteOne({ _id: id });
  }
}
