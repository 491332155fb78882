// Output chunks in the embedded store (the output_chunks table of migration 0003).
import type Database from "better-sqlite3";
import type { OutputBefore, OutputChunk, OutputPart } from "../../domain/output.js";

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
  private readonly deleteIterations: Database.Statement<[string, number]>;
  private readonly deleteAttempts: Database.Statement<[string, number]>;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      "INSERT OR REPLACE INTO output_chunks (task_id, iteration, attempt, offset, end_offset, parts) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.select = db.prepare(
      `SELECT * FROM output_chunks WHERE task_id = ? AND iteration = ? AND attempt >= ? AND end_offset > ?
       ORDER BY attempt, offset`,
    );
    this.deleteIterations = db.prepare("DELETE FROM output_chunks WHERE task_id = ? AND iteration < ?");
    this.deleteAttempts = db.prepare("DELETE FROM output_chunks WHERE task_id = ? AND attempt < ?");
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

  delete(taskId: string, before: OutputBefore): void {
    if ("iteration" in before) this.deleteIterations.run(taskId, before.iteration);
    else this.deleteAttempts.run(taskId, before.attempt);
  }
}
