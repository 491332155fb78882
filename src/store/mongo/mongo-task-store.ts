// The production store: MongoDB through the official driver.
//
//   task_events  one document per event, unique on (task_id, sequence). The
//                newest event of a task also holds the whole task (`state`):
//                it is the source of truth.
//   tasks        one BackgroundTask-shaped document per task: the view that
//                List, claims and people query. It may lag the events for a
//                moment, never lead them, and is repaired when found stale.
//   request_ids  _id = owner + request_id -> task id, for idempotent Submit.
//
// A transition commits by inserting its event: the unique index lets exactly
// one writer add sequence N+1, so claims are exclusive, lease-fenced writes
// cannot interleave, and sequences are dense by construction. Only inserts are
// relied on for atomicity, because FerretDB (the MongoDB-wire server the tests
// use) runs a filtered update as a read followed by a separate write.
import { MongoClient, MongoServerError, type Collection, type Db, type Filter } from "mongodb";
import { StoreUnavailableError, TaskNotFoundError, FailedPreconditionError } from "../../domain/errors.js";
import type { Task, TaskEvent } from "../../domain/task.js";
import { commitTransition, creationEvent, type Committed, type Decide } from "../../domain/transitions.js";
import type { CreateResult, ListQuery, TaskStore } from "../task-store.js";
import { fromEventDocument, fromTaskDocument, toEventDocument, toTaskDocument } from "../task-document.js";
import {
  fromMongoEvent,
  fromMongoTask,
  labelPair,
  toMongoEvent,
  toMongoTask,
  type MongoEventDocument,
  type MongoTaskDocument,
} from "./mongo-document.js";
import { isUnavailable } from "./mongo-errors.js";

export interface MongoStoreOptions {
  uri: string;
  database: string;
  now?: () => Date;
  /** How long an operation waits for a reachable server before UNAVAILABLE. */
  serverSelectionTimeoutMS?: number;
}

interface RequestIdDocument {
  _id: string;
  task_id: string;
}

const DUPLICATE_KEY = 11000;
const MAX_COMMIT_ATTEMPTS = 100;
const ACTIVE: Task["status"][] = ["pending", "running", "input_required"];

export class MongoTaskStore implements TaskStore {
  private readonly tasks: Collection<MongoTaskDocument>;
  private readonly taskEvents: Collection<MongoEventDocument>;
  private readonly requestIds: Collection<RequestIdDocument>;
  private readonly now: () => Date;

  private constructor(
    private readonly client: MongoClient,
    private readonly db: Db,
    now: () => Date,
  ) {
    this.tasks = db.collection<MongoTaskDocument>("tasks");
    this.taskEvents = db.collection<MongoEventDocument>("task_events");
    this.requestIds = db.collection<RequestIdDocument>("request_ids");
    this.now = now;
  }

  static async open(options: MongoStoreOptions): Promise<MongoTaskStore> {
    const client = new MongoClient(options.uri, {
      serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 5_000,
      ignoreUndefined: true,
    });
    const store = new MongoTaskStore(client, client.db(options.database), options.now ?? (() => new Date()));
    await store.guard(async () => {
      await client.connect();
      await store.createIndexes();
    });
    return store;
  }

  /** One index per query the service makes. */
  private async createIndexes(): Promise<void> {
    await this.taskEvents.createIndex({ task_id: 1, sequence: 1 }, { name: "task_sequence_unique", unique: true });
    await this.tasks.createIndexes([
      { key: { status: 1, created_at: 1 }, name: "claim_pending" },
      { key: { status: 1, "lease.expires_at": 1 }, name: "claim_expired" },
      { key: { created_at: -1, _id: -1 }, name: "list" },
      { key: { status: 1, created_at: -1, _id: -1 }, name: "list_by_status" },
      { key: { owner: 1, created_at: -1, _id: -1 }, name: "list_by_owner" },
      { key: { owner: 1, status: 1, created_at: -1, _id: -1 }, name: "list_by_owner_status" },
      { key: { label_pairs: 1 }, name: "list_by_label" },
    ]);
  }

  async create(draft: Committed): Promise<CreateResult> {
    return this.guard(async () => {
      let { task } = draft;
      if (task.requestId) {
        const key = `${task.owner}\n${task.requestId}`;
        if (!(await this.insertIgnoringDuplicate(this.requestIds, { _id: key, task_id: task.id }))) {
          const reserved = (await this.requestIds.findOne({ _id: key }))!;
          const existing = await this.head(reserved.task_id);
          if (existing) return { task: existing.task, event: await this.firstEvent(existing.task), created: false };
          // Its creator died before storing the task: finish creating it under the reserved id.
          task = { ...task, id: reserved.task_id };
        }
      }
      const doc = toMongoTask(toTaskDocument(task));
      await this.insertIgnoringDuplicate(this.tasks, doc);
      const event = creationEvent(task);
      await this.insertIgnoringDuplicate(this.taskEvents, toMongoEvent(toEventDocument(event), toTaskDocument(task)));
      return { task, event, created: true };
    });
  }

  async get(id: string): Promise<Task | undefined> {
    return this.guard(async () => (await this.head(id))?.task);
  }

  async list(query: ListQuery): Promise<Task[]> {
    const filter: Filter<MongoTaskDocument> = {};
    if (query.owner !== undefined) filter.owner = query.owner;
    if (query.statuses.length > 0) filter.status = { $in: query.statuses };
    const pairs = Object.entries(query.labels).map(([k, v]) => labelPair(k, v));
    if (pairs.length > 0) filter.label_pairs = { $all: pairs };
    if (query.after) {
      filter.$or = [
        { created_at: { $lt: query.after.createdAt } },
        { created_at: query.after.createdAt, _id: { $lt: query.after.id } },
      ];
    }
    return this.guard(async () => {
      const docs = await this.tasks
        .find(filter, { projection: { checkpoint: 0 } })
        .sort({ created_at: -1, _id: -1 })
        .limit(query.limit)
        .toArray();
      return docs.map((d) => fromTaskDocument(fromMongoTask(d)));
    });
  }

  async events(taskId: string, afterSequence: number, limit: number): Promise<TaskEvent[]> {
    return this.guard(async () => {
      const docs = await this.taskEvents
        .find({ task_id: taskId, sequence: { $gt: afterSequence } }, { projection: { state: 0 } })
        .sort({ sequence: 1 })
        .limit(limit)
        .toArray();
      return docs.map((d) => fromEventDocument(fromMongoEvent(d)));
    });
  }

  async commit(id: string, decide: Decide): Promise<Committed> {
    return this.guard(async () => {
      for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
        const current = await this.head(id);
        if (!current) throw new TaskNotFoundError(id);
        const committed = await this.tryCommit(current.task, decide);
        if (committed) return committed;
        await backoff(attempt);
      }
      throw new StoreUnavailableError(`task ${id} kept changing under ${MAX_COMMIT_ATTEMPTS} attempts to update it`);
    });
  }

  async claimNext(decide: Decide): Promise<Committed | undefined> {
    return this.guard(async () => {
      const now = this.now();
      const candidates = await this.tasks
        .find(
          { $or: [{ status: "pending" }, { status: "running", "lease.expires_at": { $lte: now } }] },
          { projection: { _id: 1 } },
        )
        .sort({ created_at: 1 })
        .limit(16)
        .toArray();
      for (const { _id } of candidates) {
        const current = await this.head(_id);
        if (!current) continue;
        try {
          const claimed = await this.tryCommit(current.task, decide);
          if (claimed) return claimed;
        } catch (error) {
          if (!(error instanceof FailedPreconditionError)) throw error;
          await this.syncView(current.task); // the view was stale: it said claimable
        }
      }
      return undefined;
    });
  }

  async renewLease(id: string, token: string, expiresAt: Date): Promise<boolean> {
    return this.guard(async () => {
      const current = await this.head(id);
      if (current?.task.status !== "running" || current.task.lease?.token !== token) return false;
      await this.taskEvents.updateMany(
        { task_id: id, "state.lease.token": token },
        { $set: { "state.lease.expires_at": expiresAt } },
      );
      await this.tasks.updateOne({ _id: id, "lease.token": token }, { $set: { "lease.expires_at": expiresAt } });
      return true;
    });
  }

  async countActive(owner: string): Promise<number> {
    return this.guard(() => this.tasks.countDocuments({ owner, status: { $in: ACTIVE } }));
  }

  async ping(): Promise<void> {
    await this.guard(() => this.client.db("admin").command({ ping: 1 }));
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Drops the database: for tests that share one server. */
  async dropDatabase(): Promise<void> {
    await this.db.dropDatabase();
  }

  /** The task as of its newest event. */
  private async head(id: string): Promise<{ task: Task } | undefined> {
    const event = await this.taskEvents.find({ task_id: id }).sort({ sequence: -1 }).limit(1).next();
    if (event?.state) return { task: fromTaskDocument(fromMongoTask(event.state)) };
    // No event yet: a creator died between storing the task and its first event.
    const view = await this.tasks.findOne({ _id: id });
    if (!view || view.sequence !== 1) return undefined;
    const task = fromTaskDocument(fromMongoTask(view));
    await this.insertIgnoringDuplicate(this.taskEvents, toMongoEvent(toEventDocument(creationEvent(task)), toTaskDocument(task)));
    return { task };
  }

  /** One attempt: undefined when another writer committed the next sequence first. */
  private async tryCommit(current: Task, decide: Decide): Promise<Committed | undefined> {
    const committed = commitTransition(current, decide, this.now());
    const event = toMongoEvent(toEventDocument(committed.event), toTaskDocument(committed.task));
    if (!(await this.insertIgnoringDuplicate(this.taskEvents, event))) return undefined;
    await this.syncView(committed.task);
    // Only the newest event needs the whole task.
    await this.taskEvents.updateOne({ task_id: current.id, sequence: current.sequence }, { $unset: { state: "" } });
    return committed;
  }

  /** Brings the tasks view up to `task`, unless it already shows something newer. */
  private async syncView(task: Task): Promise<void> {
    await this.tasks.replaceOne({ _id: task.id, sequence: { $lte: task.sequence } }, toMongoTask(toTaskDocument(task)));
  }

  private async firstEvent(task: Task): Promise<TaskEvent> {
    const [first] = await this.events(task.id, 0, 1);
    return first ?? creationEvent(task);
  }

  /** True when inserted, false when a document with the same unique key exists. */
  private async insertIgnoringDuplicate<T extends object>(collection: Collection<T>, doc: T): Promise<boolean> {
    try {
      await collection.insertOne({ ...doc } as never);
      return true;
    } catch (error) {
      if (error instanceof MongoServerError && error.code === DUPLICATE_KEY) return false;
      throw error;
    }
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isUnavailable(error)) {
        throw new StoreUnavailableError(`MongoDB unavailable: ${(error as Error).message}`, { cause: error });
      }
      throw error;
    }
  }
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(50, 2 ** Math.min(attempt, 5)) * Math.random();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
