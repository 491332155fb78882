// The end of a task's life in the embedded store: deadlines that expire it and
// the purge that deletes it (columns expires_at and purge_at of migration 0004),
// and the delete itself, which runs in one transaction: a task is never half-deleted.
import type Database from "better-sqlite3";
import type { Task } from "../../domain/task.js";
import type { Hooks } from "../../hooks.js";

/** When the task expires if no run holds it: its deadline, or while PENDING its queue deadline if sooner. */
export function expiresAt(t: Task): number | null {
  const deadlines = t.status === "pending" ? [t.deadline, t.queueDeadline] : t.status === "input_required" ? [t.deadline] : [];
  const times = deadlines.flatMap((d) => (d ? [d.getTime()] : []));
  return times.length > 0 ? Math.min(...times) : null;
}

export function purgeAt(t: Task): number | null {
  return t.purgeAt ? t.purgeAt.getTime() : null;
}

export class SqliteLifetime {
  private readonly expiredIds: Database.Statement<[number, number], { id: string }>;
  private readonly purgeableIds: Database.Statement<[number, number], { id: string }>;
  private readonly taskNo: Database.Statement<[string], { task_no: number; purge_at: number | null }>;
  private readonly deleteEvents: Database.Statement<[number]>;
  private readonly deleteConversation: Database.Statement<[number]>;
  private readonly deleteInputs: Database.Statement<[number]>;
  private readonly deleteChunks: Database.Statement<[string]>;
  private readonly deleteDeliveries: Database.Statement<[string]>;
  private readonly deleteTask: Database.Statement<[number]>;

  constructor(
    db: Database.Database,
    private readonly hooks?: Hooks,
  ) {
    this.expiredIds = db.prepare("SELECT id FROM tasks WHERE expires_at <= ? ORDER BY expires_at LIMIT ?");
    this.purgeableIds = db.prepare("SELECT id FROM tasks WHERE purge_at <= ? ORDER BY purge_at LIMIT ?");
    this.taskNo = db.prepare("SELECT task_no, purge_at FROM tasks WHERE id = ?");
    this.deleteEvents = db.prepare("DELETE FROM task_events WHERE task_no = ?");
    this.deleteConversation = db.prepare("DELETE FROM checkpoint_messages WHERE task_no = ?");
    this.deleteInputs = db.prepare("DELETE FROM task_inputs WHERE task_no = ?");
    this.deleteChunks = db.prepare("DELETE FROM output_chunks WHERE task_id = ?");
    this.deleteDeliveries = db.prepare("DELETE FROM webhook_deliveries WHERE task_id = ?");
    this.deleteTask = db.prepare("DELETE FROM tasks WHERE task_no = ?");
  }

  expired(now: Date, limit: number): string[] {
    return this.expiredIds.all(now.getTime(), limit).map((r) => r.id);
  }

  purgeable(now: Date, limit: number): string[] {
    return this.purgeableIds.all(now.getTime(), limit).map((r) => r.id);
  }

  /** Call inside a transaction. False when there is no such task, or it is not due for purging at `ifPurgeDueAt`. */
  delete(id: string, ifPurgeDueAt?: Date): boolean {
    const row = this.taskNo.get(id);
    if (!row) return false;
    if (ifPurgeDueAt && !(row.purge_at !== null && row.purge_at <= ifPurgeDueAt.getTime())) return false;
    this.deleteEvents.run(row.task_no);
    this.hooks?.reached("store.during_delete"); // inside the transaction: a crash here rolls all of it back
    this.deleteConversation.run(row.task_no);
    this.deleteInputs.run(row.task_no);
    this.deleteChunks.run(id);
    this.deleteDeliveries.run(id);
    this.deleteTask.run(row.task_no);
    return true;
  }
}
