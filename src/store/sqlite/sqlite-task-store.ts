// The embedded store: one SQLite file (WAL). Writes are group-committed: those
// that arrive in one turn of the event loop share one IMMEDIATE transaction (up
// to MAX_GROUP_COMMIT of them), so a transition and its event are written
// together or not at all, and each caller is answered only after the commit.
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { ActiveTaskQuotaError, StoreUnavailableError, TaskNotFoundError } from "../../domain/errors.js";
import type { OutputBefore, OutputChunk } from "../../domain/output.js";
import { ACTIVE_STATUSES, TASK_STATUSES, type ChatMessage, type Task, type TaskEvent, type TaskStatus } from "../../domain/task.js";
import { SqliteOutputChunks } from "./sqlite-output.js";
import { SqliteTaskInputs } from "./sqlite-inputs.js";
import { hasLongInputs, withoutInputs } from "../task-inputs.js";
import { SqliteLifetime, expiresAt, purgeAt } from "./sqlite-lifetime.js";
import { SqliteWebhookDeliveries } from "./sqlite-webhooks.js";
import { DEFAULT_CHECKPOINT_POLICY, FALLBACK_PAGES, WalCheckpointer, type CheckpointPolicy } from "./wal-checkpointer.js";
import type { DeliveryRecord, WebhookDelivery } from "../../domain/webhooks.js";
import type { Hooks } from "../../hooks.js";
import { commitTransition, type Committed, type Decide } from "../../domain/transitions.js";
import type { CreateOptions, CreateResult, DeliveryPage, ListQuery, TaskStore } from "../task-store.js";
import {
  fromEventDocument,
  fromTaskDocument,
  toEventDocument,
  toMessageDocument,
  toTaskDocument,
  type EventDocument,
  type MessageDocument,
  type TaskDocument,
} from "../task-document.js";

/**
 * At most this many writes share one transaction; the rest of a turn's writes go
 * in the next turn. A burst of calls read in one turn (64 Submits from one
 * HTTP/2 connection) would otherwise all wait for the last of them to be written,
 * and the server and its callers would take turns instead of working at once: in
 * groups of 16 the first group's replies are sent while the next group is written.
 * bench/RESULTS.md, issue 16 figure 2, has the figures (8 costs more transactions
 * than it saves; 32 overlaps less).
 */
const MAX_GROUP_COMMIT = 16;

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

export interface SqliteStoreOptions {
  /** A file path, or ":memory:". */
  path: string;
  now?: () => Date;
  hooks?: Hooks;
  /** When the checkpointer thread copies the log into the file (tests shorten or disable parts of it). */
  checkpoint?: Partial<CheckpointPolicy>;
}

/** What every read of a task takes: its doc, and where its conversation (migration 0006) and long inputs (0007) are. */
const TASK_COLUMNS = "task_no, checkpoint_messages, inputs_apart, doc";

interface TaskRow {
  task_no: number;
  /** Rows of checkpoint_messages that are the checkpoint's conversation; 0 for a doc that holds it inline. */
  checkpoint_messages: number;
  /** 1 when task_inputs holds the prompt, system prompt and tools, the doc only the prompt's head. */
  inputs_apart: number;
  doc: string;
}

interface ClaimRow extends TaskRow {
  created_at: number;
}

type WriteOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface PendingWrite {
  write: () => unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class SqliteTaskStore implements TaskStore {
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly statements = new Map<string, Database.Statement>();
  private pendingWrites: PendingWrite[] = [];
  private readonly output: SqliteOutputChunks;
  private readonly inputs: SqliteTaskInputs;
  private readonly lifetime: SqliteLifetime;
  private readonly webhooks: SqliteWebhookDeliveries;
  private readonly checkpointer: WalCheckpointer | undefined;
  /** One process serves a SQLite file: there are no other replicas to share output with. */
  readonly sharesOutput = false;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.now = options.now ?? (() => new Date());
    migrate(this.db);
    if (options.path !== ":memory:") {
      this.checkpointer = new WalCheckpointer(options.path, { ...DEFAULT_CHECKPOINT_POLICY, ...options.checkpoint });
      this.db.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`);
    }
    this.output = new SqliteOutputChunks(this.db);
    this.inputs = new SqliteTaskInputs(this.db);
    this.lifetime = new SqliteLifetime(this.db, options.hooks);
    this.webhooks = new SqliteWebhookDeliveries(this.db);
  }

  create(draft: Committed, options: CreateOptions = {}): Promise<CreateResult> {
    return this.enqueue(() => this.createOne(draft, options));
  }

  /** Queues a write for the next group commit; it settles after that commit. */
  private enqueue<T>(write: () => T): Promise<T> {
    return new Promise((resolve, reject) => {
      this.pendingWrites.push({ write, resolve: resolve, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => this.flushWrites());
    });
  }

  private flushWrites(): void {
    const batch = this.pendingWrites.splice(0, MAX_GROUP_COMMIT);
    // The rest are written in the next turn, after this group's callers have been answered.
    if (this.pendingWrites.length > 0) setImmediate(() => this.flushWrites());
    if (batch.length === 0) return; // close() flushed them already
    let outcomes: WriteOutcome[];
    try {
      outcomes = this.guard(() => this.writeBatch(batch.map((p) => p.write)));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(this.mapped(outcome.error));
    });
  }

  /**
   * Runs the batch in one transaction. If any write throws (a refused transition
   * does, before it writes), the batch is rolled back and run again with a
   * savepoint per write, so that only the failing ones are lost. A write reads only
   * the store and the clock, so the second run decides as the first would have.
   */
  private writeBatch(writes: (() => unknown)[]): WriteOutcome[] {
    try {
      return this.db.transaction(() => writes.map((write): WriteOutcome => ({ ok: true, value: write() }))).immediate();
    } catch (error) {
      if (writes.length === 1) return [{ ok: false, error }];
    }
    const inSavepoint = this.db.transaction((write: () => unknown) => write());
    return this.db
      .transaction(() =>
        writes.map((write): WriteOutcome => {
          try {
            return { ok: true, value: inSavepoint(write) };
          } catch (error) {
            return { ok: false, error };
          }
        }),
      )
      .immediate();
  }

  /** Runs inside the group-commit transaction: the quota count and the insert are one atomic step. */
  private createOne(draft: Committed, options: CreateOptions): CreateResult {
    const { task } = draft;
    if (task.requestId) {
      const existing = this.statement<[string, string], TaskRow>(
        `SELECT ${TASK_COLUMNS} FROM tasks WHERE owner = ? AND request_id = ?`,
      ).get(task.owner, task.requestId);
      if (existing) {
        const found = this.taskFrom(existing);
        const [first] = this.readEvents(found.id, 0, 1);
        return { task: found, event: first ?? draft.event, created: false };
      }
    }
    if (options.maxActive !== undefined && this.countActive(task.owner) >= options.maxActive) {
      throw new ActiveTaskQuotaError(options.maxActive);
    }
    const apart = hasLongInputs(task);
    const { lastInsertRowid } = this.statement(
      `INSERT INTO tasks (id, owner, status, created_at, request_id, lease_expires_at, sequence, doc, checkpoint_messages, inputs_apart, expires_at, purge_at)
         VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL)`,
    ).run(
      task.id,
      task.owner,
      task.status,
      task.createdAt.getTime(),
      task.requestId ?? null,
      task.sequence,
      storedDoc(task, apart),
      task.checkpoint?.messages.length ?? 0,
      apart ? 1 : 0,
      expiresAt(task),
    );
    const taskNo = Number(lastInsertRowid);
    if (apart) this.inputs.store(taskNo, task);
    if (task.checkpoint) this.storeConversation(taskNo, 0, task.checkpoint.messages);
    this.insertEvent(taskNo, draft.event);
    if (draft.delivery) this.webhooks.insert(draft.delivery);
    return { ...draft, created: true };
  }

  async get(id: string): Promise<Task | undefined> {
    return this.guard(() => {
      const row = this.statement<[string], TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ?`).get(id);
      return row && this.taskFrom(row);
    });
  }

  async list(query: ListQuery): Promise<Task[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.owner !== undefined) {
      where.push("owner = ?");
      params.push(query.owner);
    }
    if (query.statuses.length > 0) {
      where.push(`status IN (${query.statuses.map(() => "?").join(", ")})`);
      params.push(...query.statuses);
    }
    for (const [key, value] of Object.entries(query.labels)) {
      where.push("json_extract(doc, '$.labels.' || json_quote(?)) = ?");
      params.push(key, value);
    }
    if (query.after) {
      // A row value, so that the keyset is one range of the (created_at, id) index.
      where.push("(created_at, id) < (?, ?)");
      params.push(query.after.createdAt.getTime(), query.after.id);
    }
    // A List row never shows the checkpoint (the MongoDB adapter does not read it either).
    const sql = `SELECT task_no, inputs_apart, doc FROM tasks ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
                 ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.guard(() =>
      this.statement<(string | number)[], Omit<TaskRow, "checkpoint_messages">>(sql)
        .all(...params, query.limit)
        .map((row) => {
          const task = withoutCheckpoint(JSON.parse(row.doc) as TaskDocument);
          return row.inputs_apart ? this.inputs.restore(row.task_no, task) : task;
        }),
    );
  }

  async events(taskId: string, afterSequence: number, limit: number): Promise<TaskEvent[]> {
    return this.guard(() => this.readEvents(taskId, afterSequence, limit));
  }

  commit(id: string, decide: Decide): Promise<Committed> {
    return this.enqueue(() => {
      const row = this.statement<[string], TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ?`).get(id);
      if (!row) throw new TaskNotFoundError(id);
      // A checkpoint carries the whole conversation (the run's, which began from the stored
      // one): the stored one is not read back for it, nor are long inputs (it changes neither,
      // and its event shows only the prompt's head).
      const task = this.taskFrom(row, decide.verb !== "checkpoint");
      return this.write(commitTransition(task, decide, this.now()), row);
    });
  }

  claimNext(decide: Decide): Promise<Committed | undefined> {
    return this.enqueue(() => {
      const now = this.now();
      // Two index walks, each stopping at its first row; a UNION under one ORDER BY
      // would read and sort every pending task on each claim.
      const pending = this.statement<[], ClaimRow>(
        `SELECT ${TASK_COLUMNS}, created_at FROM tasks WHERE status = 'pending' ORDER BY created_at LIMIT 1`,
      ).get();
      const expired = this.statement<[number], ClaimRow>(
        `SELECT ${TASK_COLUMNS}, created_at FROM tasks WHERE status = 'running' AND lease_expires_at <= ? ORDER BY created_at LIMIT 1`,
      ).get(now.getTime());
      const row = pending && expired ? (expired.created_at < pending.created_at ? expired : pending) : (pending ?? expired);
      return row ? this.write(commitTransition(this.taskFrom(row), decide, now), row) : undefined;
    });
  }

  renewLease(id: string, token: string, expiresAt: Date): Promise<boolean> {
    return this.enqueue(() => {
      const row = this.statement<[string], Pick<TaskRow, "doc">>("SELECT doc FROM tasks WHERE id = ? AND status = 'running'").get(id);
      // Only the lease changes: the doc is edited as it is, its conversation left where it is.
      const doc = row && (JSON.parse(row.doc) as TaskDocument);
      if (!doc?.lease || doc.lease.token !== token) return false;
      doc.lease.expires_at = expiresAt;
      this.statement("UPDATE tasks SET lease_expires_at = ?, doc = ? WHERE id = ?").run(expiresAt.getTime(), JSON.stringify(doc), id);
      return true;
    });
  }

  private countActive(owner: string): number {
    const row = this.statement<[string], { n: number }>(
      `SELECT COUNT(*) AS n FROM tasks WHERE owner = ? AND status IN (${ACTIVE_STATUSES.map((s) => `'${s}'`).join(", ")})`,
    ).get(owner);
    return row?.n ?? 0;
  }

  async appendOutput(chunk: OutputChunk): Promise<void> {
    this.guard(() => this.output.append(chunk));
  }

  async readOutput(taskId: string, iteration: number, minAttempt: number, from: number): Promise<OutputChunk[]> {
    return this.guard(() => this.output.read(taskId, iteration, minAttempt, from));
  }

  /** One process per file: no watcher is ever elsewhere. */
  async noteOutputWatcher(): Promise<void> {}

  async hasOutputWatcher(): Promise<boolean> {
    return false;
  }

  async deleteOutput(taskId: string, before: OutputBefore): Promise<void> {
    this.guard(() => this.output.delete(taskId, before));
  }

  async expired(now: Date, limit: number): Promise<string[]> {
    return this.guard(() => this.lifetime.expired(now, limit));
  }

  async purgeable(now: Date, limit: number): Promise<string[]> {
    return this.guard(() => this.lifetime.purgeable(now, limit));
  }

  async dueDeliveries(now: Date, limit: number, leaseMs: number, skipReceivers: string[] = []): Promise<WebhookDelivery[]> {
    return this.guard(() => this.webhooks.due(now, limit, leaseMs, skipReceivers));
  }

  async holdDelivery(delivery: WebhookDelivery, now: Date, leaseMs: number): Promise<WebhookDelivery | undefined> {
    return this.guard(() => this.webhooks.hold(delivery, now, leaseMs));
  }

  recordDelivery(delivery: WebhookDelivery): Promise<void> {
    return this.enqueue(() => this.webhooks.record(delivery));
  }

  async deliveries(taskId: string, page: DeliveryPage): Promise<DeliveryRecord[]> {
    return this.guard(() => this.webhooks.list(taskId, page));
  }

  /** In the group commit: with the writes around it, one transaction; never half done. */
  delete(id: string, ifPurgeDueAt?: Date): Promise<boolean> {
    return this.enqueue(() => this.lifetime.delete(id, ifPurgeDueAt));
  }

  async statusCounts(): Promise<Record<TaskStatus, number>> {
    return this.guard(() => {
      const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
      const rows = this.statement<[], { status: TaskStatus; n: number }>("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status").all();
      for (const row of rows) counts[row.status] = row.n;
      return counts;
    });
  }

  async ping(): Promise<void> {
    this.guard(() => this.statement("SELECT 1").get());
  }

  async close(): Promise<void> {
    while (this.pendingWrites.length > 0) this.flushWrites();
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }

  /** Prepared once per SQL text: preparing compiles the statement. */
  private statement<P extends unknown[] | object = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement as unknown as Database.Statement<P, R>;
  }

  /** Writes a transition of the task read as `row`. */
  private write(committed: Committed, row: TaskRow): Committed {
    const { task, event } = committed;
    const stored = this.storeConversation(row.task_no, row.checkpoint_messages, task.checkpoint?.messages ?? []);
    // Long inputs of a doc written before migration 0007 move out at its first write (its
    // task was read whole: the doc held them).
    const apart = row.inputs_apart === 1 || hasLongInputs(task);
    if (apart && row.inputs_apart !== 1) this.inputs.store(row.task_no, task);
    this.statement(
      `UPDATE tasks SET status = ?, lease_expires_at = ?, sequence = ?, doc = ?, checkpoint_messages = ?, inputs_apart = ?, expires_at = ?, purge_at = ?
         WHERE task_no = ?`,
    ).run(
      task.status,
      task.lease ? task.lease.expiresAt.getTime() : null,
      task.sequence,
      storedDoc(task, apart),
      stored,
      apart ? 1 : 0,
      expiresAt(task),
      purgeAt(task),
      row.task_no,
    );
    this.insertEvent(row.task_no, event);
    if (committed.delivery) this.webhooks.insert(committed.delivery);
    return committed;
  }

  /**
   * Makes checkpoint_messages hold `messages`, given that its first `stored` rows are the
   * task's; returns how many it holds. A conversation only grows (the agent loop and
   * Resume append to it), so only the messages past `stored` are written; one that
   * shrank (no checkpoint any more) is written anew.
   */
  private storeConversation(taskNo: number, stored: number, messages: readonly ChatMessage[]): number {
    if (messages.length < stored) {
      this.statement("DELETE FROM checkpoint_messages WHERE task_no = ?").run(taskNo);
      stored = 0;
    }
    const insert = this.statement("INSERT INTO checkpoint_messages (task_no, position, doc) VALUES (?, ?, ?)");
    for (let i = stored; i < messages.length; i++) insert.run(taskNo, i, JSON.stringify(toMessageDocument(messages[i]!)));
    return messages.length;
  }

  /**
   * The task a row holds, whole: its conversation read back from checkpoint_messages and
   * its long inputs from task_inputs. With `whole` false, as its doc holds it: no
   * conversation, and long inputs as withoutInputs leaves them.
   */
  private taskFrom(row: TaskRow, whole = true): Task {
    const doc = JSON.parse(row.doc) as TaskDocument;
    if (!whole) return fromTaskDocument(doc);
    if (doc.checkpoint && row.checkpoint_messages > 0) {
      const { messages } = this.statement<[number], { messages: string }>(
        "SELECT json_group_array(json(doc) ORDER BY position) AS messages FROM checkpoint_messages WHERE task_no = ?",
      ).get(row.task_no)!;
      doc.checkpoint.messages = JSON.parse(messages) as MessageDocument[];
    }
    const task = fromTaskDocument(doc);
    return row.inputs_apart === 1 ? this.inputs.restore(row.task_no, task) : task;
  }

  private insertEvent(taskNo: number, event: TaskEvent): void {
    this.statement("INSERT INTO task_events (task_no, sequence, doc) VALUES (?, ?, ?)").run(
      taskNo,
      event.sequence,
      JSON.stringify(toEventDocument(event)),
    );
  }

  private readEvents(taskId: string, afterSequence: number, limit: number): TaskEvent[] {
    return this.statement<[string, number, number], { doc: string }>(
      `SELECT doc FROM task_events WHERE task_no = (SELECT task_no FROM tasks WHERE id = ?)
           AND sequence > ? ORDER BY sequence LIMIT ?`,
    )
      .all(taskId, afterSequence, limit)
      .map((r) => fromEventDocument(JSON.parse(r.doc) as EventDocument));
  }

  private guard<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw this.mapped(error);
    }
  }

  /** Maps SQLite's I/O-level failures to StoreUnavailableError; domain errors pass through. */
  private mapped(error: unknown): unknown {
    if (error instanceof Database.SqliteError && UNAVAILABLE_CODES.test(error.code)) {
      return new StoreUnavailableError(`embedded store unavailable: ${error.message}`, { cause: error });
    }
    if (error instanceof TypeError && /database connection is not open/.test(error.message)) {
      return new StoreUnavailableError("embedded store is closed", { cause: error });
    }
    return error;
  }
}

// Busy/locked after busy_timeout, disk I/O, disk full, read-only, can't open.
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN)/;

/**
 * The task's doc as stored: its checkpoint without the conversation, which
 * checkpoint_messages holds, and with `inputsApart` its prompt's head only (task_inputs).
 */
function storedDoc(task: Task, inputsApart: boolean): string {
  const doc = inputsApart ? withoutInputs(task) : task;
  return JSON.stringify(toTaskDocument(doc.checkpoint ? { ...doc, checkpoint: { ...doc.checkpoint, messages: [] } } : doc));
}

function withoutCheckpoint(doc: TaskDocument): Task {
  const { checkpoint: _checkpoint, ...rest } = fromTaskDocument(doc);
  return rest;
}

function migrate(db: Database.Database): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort();
  for (const file of files) {
    const number = Number(file.slice(0, 4));
    if (number <= version) continue;
    db.transaction(() => {
      db.exec(readFileSync(MIGRATIONS_DIR + file, "utf8"));
      db.pragma(`user_version = ${number}`);
    }).immediate();
  }
}
