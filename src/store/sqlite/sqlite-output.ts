// Output chunks in the embedded store (the output_chunks table of migration 0003).
import type Database from "better-sqlite3";
import type { OutputChunk, OutputPart } from "../../domain/output.js";

interface ChunkRow {
  task_id: string;
  iteration: number;
  attempt: number;
  offset: number;
  end_offset: number;
  parts: string;
}

export class SqliteOutputChunks {
  private readonly insert: Database.Statement<[string, number, number, number, number, string]>;
  private readonly select: Database.Statement<[string, number, number, number], ChunkRow>;
  private readonly deleteBefore: Database.Statement<[string, number]>;
  private readonly deleteAll: Database.Statement<[string]>;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      "INSERT OR REPLACE INTO output_chunks (task_id, iteration, attempt, offset, end_offset, parts) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.select = db.prepare(
      `SELECT * FROM output_chunks WHERE task_id = ? AND iteration = ? AND attempt >= ? AND end_offset > ?
       ORDER BY attempt, offset`,
    );
    this.deleteBefore = db.prepare("DELETE FROM output_chunks WHERE task_id = ? AND iteration < ?");
    this.deleteAll = db.prepare("DELETE FROM output_chunks WHERE task_id = ?");
  }

  append(c: OutputChunk): void {
    this.insert.run(c.taskId, c.iteration, c.attempt, c.offset, c.endOffset, JSON.stringify(c.parts));
  }

  read(taskId: string, iteration: number, minAttempt: number, from: number): OutputChunk[] {
    return this.select.all(taskId, iteration, minAttempt, from).map((r) => ({
      taskId: r.task_id,
      iteration: r.iteration,
      attempt: r.attempt,
      offset: r.offset,
      endOffset: r.end_offset,
      parts: JSON.parse(r.parts) as OutputPart[],
    }));
  }

  delete(taskId: string, beforeIteration?: number): void {
    if (beforeIteration === undefined) this.deleteAll.run(taskId);
    else this.deleteBefore.run(taskId, beforeIteration);
  }
}
