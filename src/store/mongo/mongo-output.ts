// Output chunks on MongoDB: collection output_chunks, one document per
// coalesced run of a running iteration's output, _id naming its place.
// Written only while a watcher on another replica wants them (output_watchers,
// refreshed by that watcher), then about once per ROOKERY_WATCH_POLL_MS per
// running task, and removed one iteration later. A run's last ones go
// ROOKERY_OUTPUT_GRACE_MS after it ends (never a later run's: the task may be
// running again by then), and a process killed mid-run leaves its chunks to the
// task's next run. So the collection holds little beyond what is streaming now
// to someone.
import type { Collection } from "mongodb";
import { isDuplicateKey } from "./mongo-errors.js";
import type { OutputBefore, OutputChunk, OutputPart } from "../../domain/output.js";

export interface OutputChunkDocument {
  /** "<task id>:<iteration>:<attempt>:<offset>". */
  _id: string;
  task_id: string;
  iteration: number;
  attempt: number;
  offset: number;
  end_offset: number;
  parts: OutputPart[];
}

/** _id = task id: a watcher on some replica wants its output until `until`. */
export interface OutputWatcherDocument {
  _id: string;
  until: Date;
}

export class MongoOutputChunks {
  constructor(
    private readonly chunks: Collection<OutputChunkDocument>,
    private readonly watchers: Collection<OutputWatcherDocument>,
  ) {}

  async noteWatcher(taskId: string, until: Date): Promise<void> {
    await this.watchers.replaceOne({ _id: taskId }, { until }, { upsert: true }).catch((error: unknown) => {
      // Two watchers raced to insert it (upserts are not atomic on FerretDB): theirs will do.
      if (!isDuplicateKey(error)) throw error;
    });
  }

  async hasWatcher(taskId: string, now: Date): Promise<boolean> {
    const doc = await this.watchers.findOne({ _id: taskId });
    return Boolean(doc && doc.until > now);
  }

  async createIndexes(): Promise<void> {
    await this.chunks.createIndex({ task_id: 1, iteration: 1, attempt: 1, offset: 1 }, { name: "output_by_iteration" });
  }

  async append(c: OutputChunk): Promise<void> {
    const doc: OutputChunkDocument = {
      _id: `${c.taskId}:${c.iteration}:${c.attempt}:${c.offset}`,
      task_id: c.taskId,
      iteration: c.iteration,
      attempt: c.attempt,
      offset: c.offset,
      end_offset: c.endOffset,
      parts: c.parts,
    };
    // Idempotent: a retried write of the same chunk replaces it.
    await this.chunks.replaceOne({ _id: doc._id }, doc, { upsert: true });
  }

  async read(taskId: string, iteration: number, minAttempt: number, from: number): Promise<OutputChunk[]> {
    const docs = await this.chunks
      .find({ task_id: taskId, iteration, attempt: { $gte: minAttempt }, end_offset: { $gt: from } })
      .sort({ attempt: 1, offset: 1 })
      .toArray();
    return docs.map((d) => ({
      taskId: d.task_id,
      iteration: d.iteration,
      attempt: d.attempt,
      offset: d.offset,
      endOffset: d.end_offset,
      parts: d.parts,
    }));
  }

  async delete(taskId: string, before: OutputBefore): Promise<void> {
    const which = "iteration" in before ? { iteration: { $lt: before.iteration } } : { attempt: { $lt: before.attempt } };
    await this.chunks.deleteMany({ task_id: taskId, ...which });
  }

  /** Everything kept for the task's output: its chunks, and the note that a watcher wants them. */
  async deleteTask(taskId: string): Promise<void> {
    await this.chunks.deleteMany({ task_id: taskId });
    await this.watchers.deleteOne({ _id: taskId });
  }
}
