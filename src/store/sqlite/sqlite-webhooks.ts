// The webhook outbox of the embedded store (table of migration 0005). Every
// method runs inside the caller's transaction: a delivery is inserted with the
// event that causes it, in the same group commit.
import type Database from "better-sqlite3";
import type { WebhookDelivery } from "../../domain/webhooks.js";
import { fromDeliveryDocument, GONE_BEFORE, toDeliveryDocument, type DeliveryDocument } from "../delivery-document.js";

interface Row {
  doc: string;
}

export class SqliteWebhookDeliveries {
  private readonly insertRow: Database.Statement<[string, string, number, string, number, number, string]>;
  private readonly goneBefore: Database.Statement<[string], { n: number }>;
  private readonly dueRows: Database.Statement<[number, number], Row>;
  private readonly updateRow: Database.Statement<[string, number, number, string, string]>;
  private readonly pendingOfTask: Database.Statement<[string], Row>;
  private readonly ofTask: Database.Statement<[string], Row>;
  private readonly deleteOfTask: Database.Statement<[string]>;

  constructor(db: Database.Database) {
    this.insertRow = db.prepare(
      "INSERT INTO webhook_deliveries (id, task_id, sequence, state, next_attempt_at, gone, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.goneBefore = db.prepare("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE task_id = ? AND gone = 1");
    // Of each task only its lowest pending delivery: a task's deliveries go out in sequence order.
    this.dueRows = db.prepare(
      `SELECT doc FROM webhook_deliveries d
        WHERE d.state = 'pending' AND d.next_attempt_at <= ?
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                           WHERE e.task_id = d.task_id AND e.state = 'pending' AND e.sequence < d.sequence)
        ORDER BY d.next_attempt_at LIMIT ?`,
    );
    this.updateRow = db.prepare("UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, gone = ?, doc = ? WHERE id = ?");
    this.pendingOfTask = db.prepare("SELECT doc FROM webhook_deliveries WHERE task_id = ? AND state = 'pending'");
    this.ofTask = db.prepare("SELECT doc FROM webhook_deliveries WHERE task_id = ? ORDER BY sequence");
    this.deleteOfTask = db.prepare("DELETE FROM webhook_deliveries WHERE task_id = ?");
  }

  /** A task whose receiver answered 410 gets no more deliveries: this one is stored as stopped. */
  insert(delivery: WebhookDelivery): void {
    const gone = (this.goneBefore.get(delivery.taskId)?.n ?? 0) > 0;
    const stored: WebhookDelivery = gone ? { ...delivery, state: "stopped", lastError: GONE_BEFORE } : delivery;
    this.insertRow.run(stored.id, stored.taskId, stored.sequence, stored.state, stored.nextAttemptAt.getTime(), 0, serialize(stored));
  }

  /** Due deliveries, each held until now + leaseMs (a sender that dies lets it fall due again). */
  due(now: Date, limit: number, leaseMs: number): WebhookDelivery[] {
    const held = new Date(now.getTime() + leaseMs);
    return this.dueRows.all(now.getTime(), limit).map((row) => {
      const delivery = { ...parse(row), nextAttemptAt: held };
      this.update(delivery, false);
      return delivery;
    });
  }

  /** Stores an attempt's outcome; a 410 stops the task's other pending deliveries too. */
  record(delivery: WebhookDelivery): void {
    const gone = delivery.state === "stopped" && delivery.lastStatusCode === 410;
    this.update(delivery, gone);
    if (!gone) return;
    for (const row of this.pendingOfTask.all(delivery.taskId)) {
      this.update({ ...parse(row), state: "stopped", lastError: GONE_BEFORE }, false);
    }
  }

  list(taskId: string): WebhookDelivery[] {
    return this.ofTask.all(taskId).map(parse);
  }

  deleteTask(taskId: string): void {
    this.deleteOfTask.run(taskId);
  }

  private update(delivery: WebhookDelivery, gone: boolean): void {
    this.updateRow.run(delivery.state, delivery.nextAttemptAt.getTime(), gone ? 1 : 0, serialize(delivery), delivery.id);
  }
}

function serialize(delivery: WebhookDelivery): string {
  return JSON.stringify(toDeliveryDocument(delivery));
}

function parse(row: Row): WebhookDelivery {
  return fromDeliveryDocument(JSON.parse(row.doc) as DeliveryDocument);
}
