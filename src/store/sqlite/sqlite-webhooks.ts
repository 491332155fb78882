// The webhook outbox of the embedded store (table of migration 0005). A
// delivery is inserted with the event that causes it, in the same group
// commit. What never changes is written once as JSON; an attempt updates only
// the columns of its outcome. One process serves a SQLite file, so the hold on
// a delivery taken for an attempt is kept in memory: nothing is written to take
// one, and after a crash every undelivered delivery is due again at once.
import type Database from "better-sqlite3";
import type { DeliveryPage } from "../task-store.js";
import { receiverOf, type DeliveryRecord, type WebhookDelivery } from "../../domain/webhooks.js";
import {
  fromDeliveryDocument,
  fromDeliveryRecordDocument,
  GONE_BEFORE,
  toDeliveryDocument,
  type DeliveryDocument,
} from "../delivery-document.js";

interface Row {
  doc: string;
  state: WebhookDelivery["state"];
  next_attempt_at: number;
  attempts: number;
  last_attempt_at: number | null;
  last_status_code: number | null;
  last_error: string | null;
}

const ATTEMPT_COLUMNS = "state, next_attempt_at, attempts, last_attempt_at, last_status_code, last_error";
const COLUMNS = `doc, ${ATTEMPT_COLUMNS}`;
/** Without the task snapshot, which a listing never shows (SQLite's JSON functions drop it before it is read out). */
const RECORD_COLUMNS = `json_remove(doc, '$.task') AS doc, ${ATTEMPT_COLUMNS}`;

type Outcome = [string, number, number, number | null, number | null, string | null, number, string];

export class SqliteWebhookDeliveries {
  private readonly insertRow: Database.Statement<[string, string, number, string, string, number, string | null, string]>;
  private readonly goneBefore: Database.Statement<[string], { n: number }>;
  private readonly dueRows: Database.Statement<[number, string, string, number], Row & { id: string }>;
  /** Deliveries taken for an attempt, until when: left out of due() meanwhile. */
  private readonly held = new Map<string, number>();
  private readonly mayGo: Database.Statement<[string], { state: string; earlier: number }>;
  private readonly updateOutcome: Database.Statement<Outcome>;
  private readonly stopPending: Database.Statement<[string, string]>;
  private readonly ofTask: Database.Statement<[string, number, number], Row>;
  private readonly deleteOfTask: Database.Statement<[string]>;

  constructor(db: Database.Database) {
    this.insertRow = db.prepare(
      "INSERT INTO webhook_deliveries (id, task_id, sequence, receiver, state, next_attempt_at, last_error, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.goneBefore = db.prepare("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE task_id = ? AND gone = 1");
    // Of each task only its lowest pending delivery: a task's deliveries go out in sequence order.
    this.dueRows = db.prepare(
      `SELECT id, ${COLUMNS} FROM webhook_deliveries d
        WHERE d.state = 'pending' AND d.next_attempt_at <= ?
          AND d.receiver NOT IN (SELECT value FROM json_each(?))
          AND d.id NOT IN (SELECT value FROM json_each(?))
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                           WHERE e.task_id = d.task_id AND e.state = 'pending' AND e.sequence < d.sequence)
        ORDER BY d.next_attempt_at LIMIT ?`,
    );
    this.mayGo = db.prepare(
      `SELECT d.state AS state,
              EXISTS (SELECT 1 FROM webhook_deliveries e
                       WHERE e.task_id = d.task_id AND e.state = 'pending' AND e.sequence < d.sequence) AS earlier
         FROM webhook_deliveries d WHERE d.id = ?`,
    );
    this.updateOutcome = db.prepare(
      `UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, attempts = ?, last_attempt_at = ?,
         last_status_code = ?, last_error = ?, gone = ? WHERE id = ?`,
    );
    this.stopPending = db.prepare(
      "UPDATE webhook_deliveries SET state = 'stopped', last_error = ? WHERE task_id = ? AND state = 'pending'",
    );
    this.ofTask = db.prepare(
      `SELECT ${RECORD_COLUMNS} FROM webhook_deliveries WHERE task_id = ? AND sequence > ? ORDER BY sequence LIMIT ?`,
    );
    this.deleteOfTask = db.prepare("DELETE FROM webhook_deliveries WHERE task_id = ?");
  }

  /** A task whose receiver answered 410 gets no more deliveries: this one is stored as stopped. */
  insert(delivery: WebhookDelivery): void {
    const gone = (this.goneBefore.get(delivery.taskId)?.n ?? 0) > 0;
    const doc = JSON.stringify(toDeliveryDocument(delivery));
    const when = delivery.nextAttemptAt.getTime();
    const receiver = receiverOf(delivery.url);
    if (gone) this.insertRow.run(delivery.id, delivery.taskId, delivery.sequence, receiver, "stopped", when, GONE_BEFORE, doc);
    else this.insertRow.run(delivery.id, delivery.taskId, delivery.sequence, receiver, delivery.state, when, null, doc);
  }

  /** Due deliveries, each held until now + leaseMs (in memory: see the top of this file). A read. */
  due(now: Date, limit: number, leaseMs: number, skipReceivers: string[]): WebhookDelivery[] {
    const at = now.getTime();
    for (const [id, until] of this.held) if (until <= at) this.held.delete(id);
    const until = at + leaseMs;
    // Held ones are still pending in the table: the query leaves them out, rather than
    // reading their documents only to skip them.
    const rows = this.dueRows.all(at, JSON.stringify(skipReceivers), JSON.stringify([...this.held.keys()]), limit);
    for (const row of rows) this.held.set(row.id, until);
    return rows.map((row) => parse({ ...row, next_attempt_at: until }));
  }

  /** A delivery just inserted, held as due() would hold it, unless it may not go now (see TaskStore.holdDelivery). A read. */
  hold(delivery: WebhookDelivery, now: Date, leaseMs: number): WebhookDelivery | undefined {
    if (this.held.has(delivery.id)) return undefined;
    const row = this.mayGo.get(delivery.id);
    if (row?.state !== "pending" || row.earlier) return undefined;
    const until = now.getTime() + leaseMs;
    this.held.set(delivery.id, until);
    return { ...delivery, nextAttemptAt: new Date(until) };
  }

  /** Stores an attempt's outcome; a 410 stops the task's other pending deliveries too. */
  record(d: WebhookDelivery): void {
    this.held.delete(d.id);
    const gone = d.state === "stopped" && d.lastStatusCode === 410;
    this.updateOutcome.run(
      d.state,
      d.nextAttemptAt.getTime(),
      d.attempts,
      d.lastAttemptAt ? d.lastAttemptAt.getTime() : null,
      d.lastStatusCode ?? null,
      d.lastError ?? null,
      gone ? 1 : 0,
      d.id,
    );
    if (gone) this.stopPending.run(GONE_BEFORE, d.taskId);
  }

  list(taskId: string, page: DeliveryPage): DeliveryRecord[] {
    return this.ofTask
      .all(taskId, page.afterSequence, page.limit)
      .map((row) => withAttempts(fromDeliveryRecordDocument(JSON.parse(row.doc) as DeliveryDocument), row));
  }

  deleteTask(taskId: string): void {
    this.deleteOfTask.run(taskId);
  }
}

/** The delivery as made (doc) with its attempts so far (columns). */
function parse(row: Row): WebhookDelivery {
  return withAttempts(fromDeliveryDocument(JSON.parse(row.doc) as DeliveryDocument), row);
}

/** The stored form's attempt fields are those of its creation; the columns hold the latest. */
function withAttempts<D extends DeliveryRecord>(made: D, row: Row): D {
  const { lastAttemptAt: _a, lastStatusCode: _s, lastError: _e, ...rest } = made;
  return {
    ...rest,
    state: row.state,
    nextAttemptAt: new Date(row.next_attempt_at),
    attempts: row.attempts,
    ...(row.last_attempt_at !== null ? { lastAttemptAt: new Date(row.last_attempt_at) } : {}),
    ...(row.last_status_code !== null ? { lastStatusCode: row.last_status_code } : {}),
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
  } as D;
}
