// A task's long inputs: its prompt, system prompt and client tool definitions (each
// up to 256 KiB). None of them changes after creation, so both stores write them
// once, apart, and the document every transition rewrites carries only the prompt's
// head. The same goes for its checkpoint's initial prompt and system prompt: the
// agent loop makes them from the task's own (agent-loop.ts, initialCheckpoint) and
// Resume keeps them. Where each store keeps them: sqlite-inputs.ts, mongo-inputs.ts.
import { BASIC_PROMPT_CHARS, promptHead, type Task, type ToolDefinition } from "../domain/task.js";

export interface TaskInputs {
  prompt: string;
  systemPrompt: string;
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

export function inputsOf(task: Task): TaskInputs {
  return { prompt: task.prompt, systemPrompt: task.systemPrompt, tools: task.tools };
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

/** The task read from its doc (withoutInputs' form) with its inputs put back, in its checkpoint too. */
export function withInputs(task: Task, inputs: TaskInputs): Task {
  const { promptTruncated: _cut, ...whole } = task;
  const restored: Task = { ...whole, prompt: inputs.prompt, systemPrompt: inputs.systemPrompt, tools: inputs.tools };
  if (task.checkpoint) restored.checkpoint = { ...task.checkpoint, initialPrompt: inputs.prompt, systemPrompt: inputs.systemPrompt };
  return restored;
}
