// The production store: MongoDB through the official driver.
//
//   task_events  one document per event, _id "<task id>:<sequence, 10 digits>",
//                also unique on (task_id, sequence). The newest event of a
//                task holds the whole task after it (`state`), but for its
//                checkpoint's conversation and long inputs, which are kept apart:
//   checkpoint_messages  the conversations, a few parts each (mongo-conversation.ts).
//   task_inputs  long prompts, system prompts and tools (mongo-inputs.ts).
//   tasks        one BackgroundTask-shaped document per task: the view that
//                List, claims and people query. It is written after its event,
//                so it may lag the events for a moment but never leads them.
//   task_queue   one small document per PENDING or RUNNING task: what claims
//                scan (mongo-queue.ts). Written before a task enters PENDING or
//                RUNNING and removed after it leaves, so every claimable task
//                has an entry; a stale entry only costs a check against the
//                task's events.
//   request_ids  _id = owner + request_id -> task id, for idempotent Submit.
//   output_chunks  model output of running iterations (mongo-output.ts).
//   deletions    _id = task id, while a delete is under way (see delete()).
//   owner_locks  _id = owner: held while a create counts the owner's active
//                tasks (owner-lock.ts), so the active-task quota is exact.
//
// A transition commits by inserting its event: the unique _id lets exactly one
// writer add sequence N+1, so claims are exclusive, lease-fenced writes cannot
// interleave, and sequences are dense by construction. A task's current state
// is its view plus any newer event (probed by _id), so a writer that dies
// between the two writes loses nothing.
//
// Two constraints of FerretDB (the MongoDB-wire server the tests use) shaped
// this, and cost nothing on MongoDB: only inserts are atomic (a filtered
// update is a read then a separate write), and only _id equality uses an
// index (any other filter scans the collection). So every hot-path read is an
// _id lookup, and no correctness rests on a conditional update.
import { setTimeout as sleep } from "node:timers/promises";
import { MongoClient, type Collection, type Db, type Filter } from "mongodb";
import { ActiveTaskQuotaError, StoreUnavailableError, TaskNotFoundError, FailedPreconditionError } from "../../domain/errors.js";
import { ACTIVE_STATUSES, TASK_STATUSES, type Task, type TaskEvent, type TaskStatus } from "../../domain/task.js";
import { commitTransition, creationEvent, type Committed, type Decide } from "../../domain/transitions.js";
import type { CreateOptions, CreateResult, DeliveryPage, ListQuery, TaskStore } from "../task-store.js";
import { fromEventDocument, fromTaskDocument, toEventDocument, toTaskDocument } from "../task-document.js";
import {
  eventId,
  fromMongoEvent,
  fromMongoTask,
  labelPair,
  toMongoEvent,
  toMongoTask,
  type MongoEventDocument,
  type MongoTaskDocument,
} from "./mongo-document.js";
import { isDuplicateKey, isUnavailable } from "./mongo-errors.js";
import { withOwnerLock, type LockDocument } from "./owner-lock.js";
import { MongoOutputChunks, type OutputChunkDocument, type OutputWatcherDocument } from "./mongo-output.js";
import { MongoWebhookDeliveries, type MongoDeliveryDocument } from "./mongo-webhooks.js";
import { MongoConversations, type ConversationPart, type PartDocument } from "./mongo-conversation.js";
import { MongoTaskInputs, type InputsDocument } from "./mongo-inputs.js";
import { ABANDONED_ENTRY_MS, MongoTaskQueue, type QueueDocument, type QueueEntry } from "./mongo-queue.js";
import { hasLongInputs, withInputs, withoutInputs } from "../task-inputs.js";
import { deliveryFor, type DeliveryRecord, type WebhookDelivery } from "../../domain/webhooks.js";
import type { Hooks } from "../../hooks.js";
import type { OutputBefore, OutputChunk } from "../../domain/output.js";
import { errorMessage } from "../../logger.js";

export interface MongoStoreOptions {
  uri: string;
  database: string;
  now?: () => Date;
  /** How long an operation waits for a reachable server before UNAVAILABLE. */
  serverSelectionTimeoutMS?: number;
  hooks?: Hooks;
}

/** A task as of its newest event, and where its checkpoint's conversation and long inputs are. */
interface Head {
  task: Task;
  parts: ConversationPart[];
  inputsId?: string;
  /** False when read without checking that no newer event follows (see commit). */
  probed: boolean;
}

interface RequestIdDocument {
  _id: string;
  task_id: string;
}

const MAX_COMMIT_ATTEMPTS = 100;

export class MongoTaskStore implements TaskStore {
  private readonly tasks: Collection<MongoTaskDocument>;
  private readonly taskEvents: Collection<MongoEventDocument>;
  private readonly requestIds: Collection<RequestIdDocument>;
  private readonly queue: MongoTaskQueue;
  private readonly locks: Collection<LockDocument>;
  private readonly deletions: Collection<{ _id: string }>;
  private readonly output: MongoOutputChunks;
  private readonly webhooks: MongoWebhookDeliveries;
  private readonly conversations: MongoConversations;
  private readonly inputs: MongoTaskInputs;
  /** Replicas share one database: a watcher may be on another process than the run. */
  readonly sharesOutput = true;
  private readonly now: () => Date;
  /** Claim candidates left from the last scan, oldest first. */
  private candidates: QueueEntry[] = [];
  private scanning: Promise<void> | undefined;

  private constructor(
    private readonly client: MongoClient,
    private readonly db: Db,
    now: () => Date,
    private readonly hooks?: Hooks,
  ) {
    this.tasks = db.collection<MongoTaskDocument>("tasks");
    this.taskEvents = db.collection<MongoEventDocument>("task_events");
    this.requestIds = db.collection<RequestIdDocument>("request_ids");
    this.queue = new MongoTaskQueue(db.collection<QueueDocument>("task_queue"), now);
    this.locks = db.collection<LockDocument>("owner_locks");
    this.deletions = db.collection<{ _id: string }>("deletions");
    this.output = new MongoOutputChunks(
      db.collection<OutputChunkDocument>("output_chunks"),
      db.collection<OutputWatcherDocument>("output_watchers"),
    );
    this.webhooks = new MongoWebhookDeliveries(
      db.collection<MongoDeliveryDocument>("webhook_deliveries"),
      db.collection<{ _id: string }>("webhook_gone"),
      this.taskEvents,
      eventId,
    );
    this.conversations = new MongoConversations(db.collection<PartDocument>("checkpoint_messages"));
    this.inputs = new MongoTaskInputs(db.collection<InputsDocument>("task_inputs"), now);
    this.now = now;
  }

  static async open(options: MongoStoreOptions): Promise<MongoTaskStore> {
    const client = new MongoClient(options.uri, {
      serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 5_000,
      ignoreUndefined: true,
    });
    const store = new MongoTaskStore(client, client.db(options.database), options.now ?? (() => new Date()), options.hooks);
    await store.guard(async () => {
      await client.connect();
      await store.createIndexes();
    });
    return store;
  }

  /** One index per query the service makes. */
  private async createIndexes(): Promise<void> {
    await this.taskEvents.createIndex({ task_id: 1, sequence: 1 }, { name: "task_sequence_unique", unique: true });
    await this.queue.createIndexes();
    const taskIndexes: [Record<string, 1 | -1>, string][] = [
      [{ created_at: -1, _id: -1 }, "list"],
      [{ status: 1, created_at: -1, _id: -1 }, "list_by_status"],
      [{ owner: 1, created_at: -1, _id: -1 }, "list_by_owner"],
      [{ owner: 1, status: 1, created_at: -1, _id: -1 }, "list_by_owner_status"],
      [{ label_pairs: 1 }, "list_by_label"],
      [{ deadline: 1 }, "expiry"],
      [{ queue_deadline: 1 }, "queue_expiry"],
      [{ purge_at: 1 }, "purge"],
    ];
    // One at a time: FerretDB 1.24 drops the connection when one createIndexes
    // command names several indexes that already exist (every restart does).
    for (const [key, name] of taskIndexes) await this.tasks.createIndex(key, { name });
    await this.output.createIndexes();
    await this.webhooks.createIndexes();
    await this.conversations.createIndexes();
    await this.inputs.createIndexes();
  }

  async create(draft: Committed, options: CreateOptions = {}): Promise<CreateResult> {
    const { maxActive } = options;
    const { task } = draft;
    if (maxActive === undefined) return this.guard(() => this.createOne(draft));
    return this.guard(async () => {
      // A retry of a Submit that was accepted gets its task back, whatever the count now.
      if (task.requestId && (await this.requestIds.findOne({ _id: requestKey(task) }))) return this.createOne(draft);
      return withOwnerLock({ locks: this.locks, now: this.now }, task.owner, async () => {
        const active = await this.tasks.countDocuments({ owner: task.owner, status: { $in: [...ACTIVE_STATUSES] } });
        if (active >= maxActive) throw new ActiveTaskQuotaError(maxActive);
        return this.createOne(draft);
      });
    });
  }

  private async createOne(draft: Committed): Promise<CreateResult> {
    let { task } = draft;
    if (task.requestId) {
      const key = requestKey(task);
      if (!(await this.insertIgnoringDuplicate(this.requestIds, { _id: key, task_id: task.id }))) {
        // The key is taken: its task may be stored already, or its creator may still be
        // storing it (or have died doing so). Either way the task gets the reserved id.
        const reserved = (await this.requestIds.findOne({ _id: key }))!;
        task = { ...task, id: reserved.task_id };
      }
    }
    // The task may have taken a reserved id above: its delivery is then made for that id.
    const delivery = task === draft.task ? draft.delivery : deliveryFor(task, creationEvent(task));
    if (delivery) await this.webhooks.intend(delivery);
    await this.queue.put(task);
    const inputsId = hasLongInputs(task) ? await this.inputs.write(task) : undefined;
    const conversation = await this.conversations.write(task.id, task.checkpoint?.messages ?? [], []);
    const stored = storedTask(task, conversation.parts, inputsId);
    if (!(await this.insertIgnoringDuplicate(this.tasks, stored))) {
      // Someone else stored it first: theirs is the task.
      if (conversation.written) await this.conversations.drop([conversation.written]);
      if (inputsId) await this.inputs.drop(inputsId);
      const existing = (await this.head(task.id))!;
      return { task: existing.task, event: await this.firstEvent(existing.task), created: false };
    }
    const event = creationEvent(task);
    await this.insertIgnoringDuplicate(this.taskEvents, eventDocument(event, stored, delivery));
    return { task, event, created: true, ...(delivery ? { delivery } : {}) };
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
      filter.$or = [{ created_at: { $lt: query.after.createdAt } }, { created_at: query.after.createdAt, _id: { $lt: query.after.id } }];
    }
    return this.guard(async () => {
      const docs = await this.tasks
        .find(filter, { projection: { checkpoint: 0 } })
        .sort({ created_at: -1, _id: -1 })
        .limit(query.limit)
        .toArray();
      const tasks = await Promise.all(docs.map((d) => this.restoreInputs(fromTaskDocument(fromMongoTask(d)), d.inputs_id)));
      // A task whose inputs are gone is being deleted.
      return tasks.filter((t) => t !== undefined);
    });
  }

  async events(taskId: string, afterSequence: number, limit: number): Promise<TaskEvent[]> {
    return this.guard(async () => {
      const events: TaskEvent[] = [];
      // Point reads by _id, up to the first sequence not written yet: one first (a
      // tailing watcher usually finds nothing new), then windows read in parallel
      // that double while events keep coming (a replay).
      let window = 1;
      for (let next = afterSequence + 1; events.length < limit; next += window, window = Math.min(window * 2, MAX_EVENT_WINDOW)) {
        const reads = Array.from({ length: Math.min(window, limit - events.length) }, (_, i) =>
          this.taskEvents.findOne({ _id: eventId(taskId, next + i) }, { projection: { state: 0 } }),
        );
        for (const doc of await Promise.all(reads)) {
          if (!doc) return events;
          if (doc.deleted) throw new TaskNotFoundError(taskId); // a delete is under way
          events.push(fromEventDocument(fromMongoEvent(doc)));
        }
      }
      return events;
    });
  }

  async commit(id: string, decide: Decide): Promise<Committed> {
    return this.guard(async () => {
      for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
        // A checkpoint carries the whole conversation (the run's, which began from the
        // stored one): the stored one is not read back for it. The first attempt takes
        // the event the view names as the newest without reading the next _id to make
        // sure (one read fewer per commit): if a newer one exists, the insert of the
        // next sequence fails, and the attempts after it look.
        const current = await this.head(id, decide.verb !== "checkpoint", attempt > 0);
        if (!current) throw new TaskNotFoundError(id);
        const committed = await this.tryCommit(current, decide);
        if (committed) return committed;
        await backoff(attempt);
      }
      throw new StoreUnavailableError(`task ${id} kept changing under ${MAX_COMMIT_ATTEMPTS} attempts to update it`);
    });
  }

  async claimNext(decide: Decide): Promise<Committed | undefined> {
    return this.guard(async () => {
      // Try the candidates of the last scan first: a claim then costs a few point
      // reads rather than a query over `tasks` (a full scan on FerretDB).
      if (this.candidates.length === 0) await this.refillCandidates();
      while (this.candidates.length > 0) {
        const entry = this.candidates.shift()!;
        const current = await this.head(entry.id);
        if (current && isQueued(current.task)) {
          try {
            const claimed = await this.tryCommit(current, decide);
            if (claimed) return claimed;
          } catch (error) {
            // Claimed by someone else since the scan, or RUNNING on a lease renewed since.
            if (!(error instanceof FailedPreconditionError)) throw error;
          }
          continue;
        }
        // Not in the queue as of its newest state (or no state: its creator has not stored
        // the task yet, or died first, or it was deleted). The entry goes only when left over.
        if (!this.queue.isLeftOver(entry, current?.task)) continue;
        // A Submit that died before storing its task may have written its long inputs.
        if (!current) await this.inputs.deleteAbandoned(entry.id, new Date(this.now().getTime() - ABANDONED_ENTRY_MS));
        await this.queue.drop(entry);
      }
      return undefined;
    });
  }

  /** Claims made at the same time (the supervisor asks for one per free slot) share one scan. */
  private refillCandidates(): Promise<void> {
    this.scanning ??= this.queue
      .scan(CANDIDATES_PER_SCAN)
      .then((ids) => {
        this.candidates = ids;
      })
      .finally(() => {
        this.scanning = undefined;
      });
    return this.scanning;
  }

  async renewLease(id: string, token: string, expiresAt: Date): Promise<boolean> {
    return this.guard(async () => {
      const current = await this.head(id, false);
      if (current?.task.status !== "running" || current.task.lease?.token !== token) return false;
      await this.taskEvents.updateOne(
        { _id: eventId(id, current.task.sequence), "state.lease.token": token },
        { $set: { "state.lease.expires_at": expiresAt } },
      );
      await this.queue.renewed(id, expiresAt);
      return true;
    });
  }

  async appendOutput(chunk: OutputChunk): Promise<void> {
    await this.guard(() => this.output.append(chunk));
  }

  async readOutput(taskId: string, iteration: number, minAttempt: number, from: number): Promise<OutputChunk[]> {
    return this.guard(() => this.output.read(taskId, iteration, minAttempt, from));
  }

  async noteOutputWatcher(taskId: string, until: Date): Promise<void> {
    await this.guard(() => this.output.noteWatcher(taskId, until));
  }

  async hasOutputWatcher(taskId: string, now: Date): Promise<boolean> {
    return this.guard(() => this.output.hasWatcher(taskId, now));
  }

  async deleteOutput(taskId: string, before: OutputBefore): Promise<void> {
    await this.guard(() => this.output.delete(taskId, before));
  }

  async expired(now: Date, limit: number): Promise<string[]> {
    // From the view, which may lag: the expire verb checks the task's head before it fails it.
    return this.guard(async () => {
      const docs = await this.tasks
        .find(
          {
            status: { $in: ["pending", "input_required"] },
            $or: [{ deadline: { $lte: now } }, { status: "pending", queue_deadline: { $lte: now } }],
          },
          { projection: { _id: 1 } },
        )
        .limit(limit)
        .toArray();
      return docs.map((d) => d._id);
    });
  }

  async purgeable(now: Date, limit: number): Promise<string[]> {
    return this.guard(async () => {
      const due = await this.tasks
        .find({ purge_at: { $lte: now } }, { projection: { _id: 1 } })
        .limit(limit)
        .toArray();
      const halfDeleted = await this.deletions.find({}).limit(limit).toArray();
      return [...new Set([...halfDeleted.map((d) => d._id), ...due.map((d) => d._id)])];
    });
  }

  /**
   * The commit point of a delete is a tombstone inserted as the task's next event: no
   * writer can add an event after it, and every read stops at it (the task is gone). The
   * task's documents are removed after it, the tombstone last. A `deletions` entry is
   * written first and removed at the very end, so that a delete cut short by a crash is
   * found by purgeable() (without scanning the events) and finished.
   *
   * A purge (`ifPurgeDueAt`) checks each state it would tombstone: a Resume that takes
   * the sequence first makes the insert fail, and the next look finds the task PENDING.
   */
  async delete(id: string, ifPurgeDueAt?: Date): Promise<boolean> {
    return this.guard(async () => {
      const unfinished = Boolean(await this.deletions.findOne({ _id: id }));
      if (!unfinished && !(await this.head(id, false))) return false;
      await this.insertIgnoringDuplicate(this.deletions, { _id: id });
      for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
        const current = await this.head(id, false);
        if (!current) break; // tombstoned already: a delete cut short
        if (ifPurgeDueAt && !purgeDue(current.task, ifPurgeDueAt)) {
          // Not due (resumed since it was listed): the task stays, and its mark goes, also
          // one that a delete cut short before its tombstone left (never acknowledged).
          await this.deletions.deleteOne({ _id: id });
          return false;
        }
        const sequence = current.task.sequence + 1;
        const tombstone = { _id: eventId(id, sequence), task_id: id, sequence, deleted: true } as unknown as MongoEventDocument;
        if (await this.insertIgnoringDuplicate(this.taskEvents, tombstone)) break;
        await backoff(attempt);
      }
      await this.tasks.deleteOne({ _id: id });
      await this.inputs.deleteTask(id);
      await this.queue.delete(id);
      await this.requestIds.deleteMany({ task_id: id });
      await this.output.deleteTask(id);
      await this.conversations.deleteTask(id);
      await this.webhooks.deleteTask(id);
      this.hooks?.reached("store.during_delete");
      await this.taskEvents.deleteMany({ task_id: id, deleted: { $ne: true } });
      await this.taskEvents.deleteMany({ task_id: id });
      await this.deletions.deleteOne({ _id: id });
      return true;
    });
  }

  async dueDeliveries(now: Date, limit: number, leaseMs: number, skipReceivers: string[] = []): Promise<WebhookDelivery[]> {
    return this.guard(() => this.webhooks.due(now, limit, leaseMs, skipReceivers));
  }

  async holdDelivery(delivery: WebhookDelivery, now: Date, leaseMs: number): Promise<WebhookDelivery | undefined> {
    return this.guard(() => this.webhooks.hold(delivery, now, leaseMs));
  }

  async recordDelivery(delivery: WebhookDelivery): Promise<void> {
    await this.guard(() => this.webhooks.record(delivery));
  }

  async deliveries(taskId: string, page: DeliveryPage): Promise<DeliveryRecord[]> {
    return this.guard(() => this.webhooks.list(taskId, page, this.now()));
  }

  /** A count per status of the tasks view (which may lag its events for a moment). */
  async statusCounts(): Promise<Record<TaskStatus, number>> {
    return this.guard(async () => {
      const counts = await Promise.all(TASK_STATUSES.map(async (status) => [status, await this.tasks.countDocuments({ status })] as const));
      return Object.fromEntries(counts) as Record<TaskStatus, number>;
    });
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

  /**
   * The task as of its newest event; `whole`, with its checkpoint's conversation and
   * long inputs put back (else as its documents hold them: no conversation, the
   * prompt's head). A conversation part replaced since the state was read is
   * missing: the state is read again (a commit has moved on).
   */
  private async head(id: string, whole = true, probe = true): Promise<Head | undefined> {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const state = await this.newestState(id, probe);
      if (!state) return undefined;
      const parts = state.checkpoint_parts ?? [];
      const inputsId = state.inputs_id;
      const found = { parts, ...(inputsId ? { inputsId } : {}), probed: probe };
      if (!whole) return { task: fromTaskDocument(fromMongoTask(state)), ...found };
      const apart = state.checkpoint && parts.length > 0 ? state.checkpoint : undefined;
      const [messages, inputs] = await Promise.all([
        apart ? this.conversations.read(parts) : [],
        inputsId ? this.inputs.read(inputsId) : null,
      ]);
      if (!messages || inputs === undefined) {
        // Replaced (or deleted) since the state was read; or the state, read without a
        // probe, is an older one whose parts a newer commit replaced.
        probe = true;
        continue;
      }
      if (apart) apart.messages = messages;
      const task = fromTaskDocument(fromMongoTask(state));
      return { task: inputs ? withInputs(task, inputs) : task, ...found };
    }
    throw new StoreUnavailableError(`task ${id} kept changing under ${MAX_COMMIT_ATTEMPTS} attempts to read it`);
  }

  /** `task` read from a document naming its inputs `inputsId`, with them; undefined when they are gone. */
  private async restoreInputs(task: Task, inputsId: string | undefined): Promise<Task | undefined> {
    if (!inputsId) return task;
    const inputs = await this.inputs.read(inputsId);
    return inputs && withInputs(task, inputs);
  }

  /**
   * The task's document as of its newest event. The view's sequence says where to
   * start (it never leads); the state itself always comes from the newest event,
   * never from the view, whose fields concurrent best-effort updates may have clobbered.
   * Without `probe`, the first event found with a state is taken as the newest.
   */
  private async newestState(id: string, probe = true): Promise<MongoTaskDocument | undefined> {
    const view = await this.tasks.findOne({ _id: id }, { projection: { sequence: 1 } });
    if (!view) return undefined;
    let state: MongoTaskDocument | undefined;
    for (let sequence = view.sequence; ; sequence++) {
      const event = await this.taskEvents.findOne({ _id: eventId(id, sequence) });
      if (!event) break;
      if (event.deleted) return undefined; // a delete in progress: the task is gone
      state = event.state ?? state;
      if (state && !probe) break;
    }
    if (!state) {
      // Its creator died between storing the task and its first event: write that event now.
      const created = (await this.tasks.findOne({ _id: id }))!;
      await this.insertIgnoringDuplicate(this.taskEvents, eventDocument(creationEvent(fromTaskDocument(fromMongoTask(created))), created));
      return created;
    }
    return state;
  }

  /** One attempt: undefined when another writer committed the next sequence first. */
  private async tryCommit(head: Head, decide: Decide): Promise<Committed | undefined> {
    const current = head.task;
    let committed: Committed;
    try {
      committed = commitTransition(current, decide, this.now());
    } catch (error) {
      // An older state than the newest may refuse what the newest allows: look again.
      if (!head.probed) return undefined;
      throw error;
    }
    const next = committed.task;
    const queueChanges = next.status !== current.status || next.lease?.token !== current.lease?.token;
    if (queueChanges && isQueued(next)) await this.queue.put(next);
    if (committed.delivery) await this.webhooks.intend(committed.delivery);
    // Inputs stored inline (before they were kept apart) move out at the task's next commit.
    const movedInputs = !head.inputsId && hasLongInputs(next) ? await this.inputs.write(next) : undefined;
    // A run taken over may have died with parts no state names (mongo-conversation.ts).
    // Those stored before this commit's event that the head does not name are such
    // leftovers, or belong to a writer that read this head or an older one and so
    // will lose its sequence to this commit (and drop them itself): safe to drop.
    const leftovers = takesOver(current, decide) ? await this.conversations.idsOf(current.id) : [];
    const conversation = await this.conversations.write(next.id, next.checkpoint?.messages ?? [], head.parts);
    if (conversation.written) this.hooks?.reached("store.after_conversation_part");
    const stored = storedTask(next, conversation.parts, head.inputsId ?? movedInputs);
    if (!(await this.insertIgnoringDuplicate(this.taskEvents, eventDocument(committed.event, stored, committed.delivery)))) {
      if (conversation.written) await this.conversations.drop([conversation.written]);
      if (movedInputs) await this.inputs.drop(movedInputs);
      return undefined;
    }
    await this.syncView(stored);
    // Only the newest event needs the whole task.
    await this.taskEvents.updateOne({ _id: eventId(current.id, current.sequence) }, { $unset: { state: "" } });
    if (queueChanges && !isQueued(next)) await this.queue.left(next);
    const named = new Set(conversation.parts.map((p) => p.id));
    await this.conversations.drop([...new Set([...conversation.replaced, ...leftovers.filter((id) => !named.has(id))])]);
    return committed;
  }

  /** Brings the tasks view up to `stored`, unless it already shows something newer. */
  private async syncView(stored: MongoTaskDocument): Promise<void> {
    await this.tasks.replaceOne({ _id: stored._id, sequence: { $lte: stored.sequence } }, stored);
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
      if (isDuplicateKey(error)) return false;
      throw error;
    }
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isUnavailable(error)) {
        throw new StoreUnavailableError(`MongoDB unavailable: ${errorMessage(error)}`, { cause: error });
      }
      throw error;
    }
  }
}

const requestKey = (task: Task) => `${task.owner}\n${task.requestId}`;

const isQueued = (task: Task) => task.status === "pending" || task.status === "running";

const purgeDue = (task: Task, at: Date) => task.purgeAt !== undefined && task.purgeAt <= at;

/** A claim of a run whose holder's lease ran out: the holder may have died mid-commit. */
const takesOver = (current: Task, decide: Decide) => decide.verb === "claim" && current.status === "running";

const MAX_EVENT_WINDOW = 32;
const CANDIDATES_PER_SCAN = 64;

function eventDocument(event: TaskEvent, state: MongoTaskDocument, delivery?: WebhookDelivery): MongoEventDocument {
  const doc = { ...toMongoEvent(eventId(event.taskId, event.sequence), toEventDocument(event)), state };
  return delivery ? { ...doc, delivery_id: delivery.id } : doc;
}

/**
 * The task's document as stored (the view, and its newest event's state): its
 * conversation in `parts`, and with `inputsId` its prompt's head only.
 */
function storedTask(task: Task, parts: ConversationPart[], inputsId: string | undefined): MongoTaskDocument {
  const apart = inputsId ? withoutInputs(task) : task;
  const doc = toMongoTask(toTaskDocument(apart.checkpoint ? { ...apart, checkpoint: { ...apart.checkpoint, messages: [] } } : apart));
  return { ...doc, ...(apart.checkpoint ? { checkpoint_parts: parts } : {}), ...(inputsId ? { inputs_id: inputsId } : {}) };
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(50, 2 ** Math.min(attempt, 5)) * Math.random();
  return sleep(ms);
}
