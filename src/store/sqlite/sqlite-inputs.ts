// A task's long inputs in the embedded store (the task_inputs table of migration
// 0007): its prompt, system prompt and client tool definitions (each up to 256 KiB),
// written once, when the task is created (or at the first write of a task stored
// before the migration), and read back only when the whole task is read. None of
// them changes after creation, so the doc that every transition rewrites carries
// only the prompt's head. The same goes for its checkpoint's initial prompt and
// system prompt: the agent loop makes them from the task's own (agent-loop.ts,
// initialCheckpoint) and Resume keeps them.
import type Database from "better-sqlite3";
import { BASIC_PROMPT_CHARS, promptHead, type Task, type ToolDefinition } from "../../domain/task.js";

interface InputsDocument {
  prompt: string;
  system_prompt: string;
  tools: ToolDefinition[];
}

/**
 * Whether to keep the task's inputs out of its doc: a prompt or system prompt longer
 * than the BASIC view's cut (in UTF-16 units), or any client tool (whose schemas are
 * not measured on every write: few tasks declare them).
 */
export function hasLongInputs(task: Task): boolean {
  return task.prompt.length > BASIC_PROMPT_CHARS || task.systemPrompt.length > BASIC_PROMPT_CHARS || task.tools.length > 0;
}

/**
 * The task as its doc holds it when its inputs are apart: the prompt's head, marked
 * truncated when cut (as a BASIC view is), no system prompt or tools, and its
 * checkpoint's copies of the prompts cut the same way. A task read without its inputs
 * is already in this form, and stays so.
 */
export function withoutInputs(task: Task): Task {
  const cut = promptHead(task.prompt);
  const apart: Task = { ...task, systemPrompt: "", tools: [], ...(cut === undefined ? {} : { prompt: cut, promptTruncated: true }) };
  if (task.checkpoint) {
    const initialPrompt = promptHead(task.checkpoint.initialPrompt) ?? task.checkpoint.initialPrompt;
    apart.checkpoint = { ...task.checkpoint, initialPrompt, systemPrompt: "" };
  }
  return apart;
}

export class SqliteTaskInputs {
  private readonly insert: Database.Statement<[number, string]>;
  private readonly select: Database.Statement<[number], { doc: string }>;

  constructor(db: Database.Database) {
    this.insert = db.prepare("INSERT OR REPLACE INTO task_inputs (task_no, doc) VALUES (?, ?)");
    this.select = db.prepare("SELECT doc FROM task_inputs WHERE task_no = ?");
  }

  store(taskNo: number, task: Task): void {
    const doc: InputsDocument = { prompt: task.prompt, system_prompt: task.systemPrompt, tools: task.tools };
    this.insert.run(taskNo, JSON.stringify(doc));
  }

  /** The task read from its doc (withoutInputs' form) with its inputs put back, in its checkpoint too. */
  restore(taskNo: number, task: Task): Task {
    const row = this.select.get(taskNo);
    if (!row) throw new Error(`task ${task.id}: its inputs are missing from task_inputs`);
    const inputs = JSON.parse(row.doc) as InputsDocument;
    const { promptTruncated: _cut, ...whole } = task;
    const restored: Task = { ...whole, prompt: inputs.prompt, systemPrompt: inputs.system_prompt, tools: inputs.tools };
    if (task.checkpoint) restored.checkpoint = { ...task.checkpoint, initialPrompt: inputs.prompt, systemPrompt: inputs.system_prompt };
    return restored;
  }
}
