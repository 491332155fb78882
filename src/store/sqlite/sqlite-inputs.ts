// A task's long inputs in the embedded store (the task_inputs table of migration
// 0007; see ../task-inputs.ts): written once, when the task is created (or at the
// first write of a task stored before the migration), and read back only when the
// whole task is read.
import type Database from "better-sqlite3";
import type { Task, ToolDefinition } from "../../domain/task.js";
import { inputsOf, withInputs } from "../task-inputs.js";

interface InputsDocument {
  prompt: string;
  system_prompt: string;
  tools: ToolDefinition[];
}

export class SqliteTaskInputs {
  private readonly insert: Database.Statement<[number, string]>;
  private readonly select: Database.Statement<[number], { doc: string }>;

  constructor(db: Database.Database) {
    this.insert = db.prepare("INSERT OR REPLACE INTO task_inputs (task_no, doc) VALUES (?, ?)");
    this.select = db.prepare("SELECT doc FROM task_inputs WHERE task_no = ?");
  }

  store(taskNo: number, task: Task): void {
    const { prompt, systemPrompt, tools } = inputsOf(task);
    const doc: InputsDocument = { prompt, system_prompt: systemPrompt, tools };
    this.insert.run(taskNo, JSON.stringify(doc));
  }

  /** The task read from its doc (withoutInputs' form) with its inputs put back. */
  restore(taskNo: number, task: Task): Task {
    const row = this.select.get(taskNo);
    if (!row) throw new Error(`task ${task.id}: its inputs are missing from task_inputs`);
    const doc = JSON.parse(row.doc) as InputsDocument;
    return withInputs(task, { prompt: doc.prompt, systemPrompt: doc.system_prompt, tools: doc.tools });
  }
}
