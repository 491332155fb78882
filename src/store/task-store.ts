// The storage port. Adapters (sqlite/, mongo/) say how; this says what, and
// one contract suite (test/contract/) holds every adapter to it.
import type { Committed, Decide } from "../domain/transitions.js";
import type { OutputBefore, OutputChunk } from "../domain/output.js";
import type { Task, TaskEvent, TaskStatus } from "../domain/task.js";
import type { DeliveryRecord, WebhookDelivery } from "../domain/webhooks.js";

export interface ListQuery {
  /** Only this owner's tasks; undefined means every owner's. */
  owner?: string;
  statuses: TaskStatus[];
  labels: Record<string, string>;
  limit: number;
  /** Keyset position: tasks strictly older than this (created_at desc, id desc). */
  after?: { createdAt: Date; id: string };
}

/** A page of a task's deliveries: those after `afterSequence` (0: from the first), at most `limit`. */
export interface DeliveryPage {
  afterSequence: number;
  limit: number;
}

export interface CreateResult extends Committed {
  /** False when the (owner, request_id) pair already named a task: `task` is that one. */
  created: boolean;
}

export interface CreateOptions {
  /**
   * The most PENDING, RUNNING and INPUT_REQUIRED tasks the draft's owner may have:
   * counted and created in one atomic step, so the limit is exact under concurrent
   * creates. A request_id that already names a task returns it whatever the count.
   */
  maxActive?: number;
}

export interface TaskStore {
  /**
   * Stores a new task and its first event, or returns the task its idempotency key
   * names. Throws ResourceExhaustedError past `options.maxActive`.
   */
  create(draft: Committed, options?: CreateOptions): Promise<CreateResult>;
  get(id: string): Promise<Task | undefined>;
  /** Newest first; without their checkpoints (a List row never shows one). */
  list(query: ListQuery): Promise<Task[]>;
  /** Events with sequence > afterSequence, in order, at most `limit`. */
  events(taskId: string, afterSequence: number, limit: number): Promise<TaskEvent[]>;
  /**
   * Atomically: reads the task, lets `decide` check and compute the change, writes
   * the task and its event. Whatever `decide` throws propagates and nothing is written.
   * Throws TaskNotFoundError when the task does not exist.
   */
  commit(id: string, decide: Decide): Promise<Committed>;
  /** Claims the oldest claimable task (PENDING, or RUNNING with an expired lease). */
  claimNext(decide: Decide): Promise<Committed | undefined>;
  /** Extends the lease if `token` still holds it; false when it was lost. */
  renewLease(id: string, token: string, expiresAt: Date): Promise<boolean>;
  /**
   * True when other processes may watch this store's tasks (replicas on one MongoDB):
   * then running tasks share their output through the output chunk methods below.
   */
  readonly sharesOutput: boolean;
  /** Stores a coalesced run of a running iteration's output (for watchers on other replicas). */
  appendOutput(chunk: OutputChunk): Promise<void>;
  /** The chunks of the task's iteration with attempt >= minAttempt that end after `from`, by attempt and offset. */
  readOutput(taskId: string, iteration: number, minAttempt: number, from: number): Promise<OutputChunk[]>;
  /** A watcher on another replica wants the task's output until `until`: only then are chunks written. */
  noteOutputWatcher(taskId: string, until: Date): Promise<void>;
  /** True when some watcher noted it wants the task's output past `now`. */
  hasOutputWatcher(taskId: string, now: Date): Promise<boolean>;
  /**
   * Removes the task's chunks of iterations before `before.iteration`, or of attempts before
   * `before.attempt`: a run removes its own and older runs' output, never a later run's.
   */
  deleteOutput(taskId: string, before: OutputBefore): Promise<void>;
  /**
   * Webhook deliveries due at `now`, at most `limit`, of each task only its lowest-sequence
   * PENDING one (a task's deliveries go out in order). Each is held for `leaseMs` (its
   * nextAttemptAt moves there) so no other sender takes it meanwhile; if its sender dies
   * it falls due again. Deliveries to the receivers in `skipReceivers` (see receiverOf) are
   * left for later. Deliveries are written by create() and commit() with the event that
   * causes them (Committed.delivery), in the same atomic write.
   */
  dueDeliveries(now: Date, limit: number, leaseMs: number, skipReceivers?: string[]): Promise<WebhookDelivery[]>;
  /**
   * Takes one delivery that this process has just committed (Committed.delivery) for an
   * attempt, held for `leaseMs` as dueDeliveries() would hold it, without a look for due
   * ones. Undefined when it may not go now: an earlier delivery of its task is still
   * pending (a task's deliveries go out in order), its task's receiver answered 410 before,
   * or it is taken already. It then waits for dueDeliveries(), as any delivery does.
   */
  holdDelivery(delivery: WebhookDelivery, now: Date, leaseMs: number): Promise<WebhookDelivery | undefined>;
  /**
   * Stores an attempt's outcome. A delivery stopped by a 410 stops the task's other pending
   * deliveries, and those its later events cause are stored stopped.
   */
  recordDelivery(delivery: WebhookDelivery): Promise<void>;
  /** A page of the task's deliveries, by sequence, without their task snapshots. */
  deliveries(taskId: string, page: DeliveryPage): Promise<DeliveryRecord[]>;
  /** Ids of PENDING and INPUT_REQUIRED tasks a deadline of which has passed at `now` (see passedDeadline). */
  expired(now: Date, limit: number): Promise<string[]>;
  /** Ids of tasks to delete at `now`: terminal ones past their purge time, and any left half-deleted. */
  purgeable(now: Date, limit: number): Promise<string[]>;
  /**
   * Removes the task and everything stored for it, as one step: afterwards no read finds
   * any of it and every write of it throws TaskNotFoundError. False when there was none.
   * With `ifPurgeDueAt` (the retention purge), only a task still due for purging then:
   * one resumed since purgeable() listed it stays, and the answer is false.
   */
  delete(id: string, ifPurgeDueAt?: Date): Promise<boolean>;
  /** How many tasks are in each status now (every owner's): the queue depth operators watch. */
  statusCounts(): Promise<Record<TaskStatus, number>>;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
