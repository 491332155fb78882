// The task and event documents as MongoDB stores them: the shared
// BackgroundTask-shaped documents (../task-document.ts) with the changes the
// wire protocol forces, since field names may not contain "." or start with "$":
//   - labels become [{key, value}], plus label_pairs ["key=value"] for $all queries;
//   - a client tool's JSON schema is kept as text (parameters_json);
//   - a checkpoint's messages are kept apart (mongo-conversation.ts): its
//     `messages` stay empty and `checkpoint_parts` lists where they are;
//   - long inputs may be kept apart (mongo-inputs.ts): `inputs_id` names them.
// The newest event of a task also carries `state`: the whole task after it.
import type { ToolDefinition } from "../../domain/task.js";
import type { EventDocument, TaskDocument } from "../task-document.js";
import type { ConversationPart } from "./mongo-conversation.js";

interface MongoLabel {
  key: string;
  value: string;
}

export interface MongoTool {
  name: string;
  description: string;
  parameters_json: string;
}

export type MongoTaskDocument = Omit<TaskDocument, "labels" | "tools"> & {
  labels: MongoLabel[];
  label_pairs: string[];
  tools: MongoTool[];
  /** The parts of checkpoint_messages that hold the checkpoint's conversation, in order. */
  checkpoint_parts?: ConversationPart[];
  /** The task_inputs document that holds the prompt, system prompt and tools; the prompt here is its head. */
  inputs_id?: string;
};

export interface MongoEventDocument extends Omit<EventDocument, "task"> {
  /** "<task id>:<sequence, zero-padded to 10 digits>". */
  _id: string;
  task: MongoTaskDocument;
  /** The full task (checkpoint and lease included) after this event; kept on the newest event only. */
  state?: MongoTaskDocument;
  /** Set on a tombstone: the task is being deleted (see MongoTaskStore.delete). */
  deleted?: true;
  /** The webhook delivery this event causes (see mongo-webhooks.ts). */
  delivery_id?: string;
}

/** An event's _id. Events sort by _id within a task: the sequence is zero-padded. */
export function eventId(taskId: string, sequence: number): string {
  return `${taskId}:${String(sequence).padStart(10, "0")}`;
}

export const labelPair = (key: string, value: string) => `${key}=${value}`;

export function toMongoTask(doc: TaskDocument): MongoTaskDocument {
  const entries = Object.entries(doc.labels);
  return {
    ...doc,
    labels: entries.map(([key, value]) => ({ key, value })),
    label_pairs: entries.map(([key, value]) => labelPair(key, value)),
    tools: toMongoTools(doc.tools),
  };
}

export function fromMongoTask(doc: MongoTaskDocument): TaskDocument {
  const { label_pairs: _pairs, checkpoint_parts: _parts, inputs_id: _inputs, ...rest } = doc;
  return {
    ...rest,
    labels: Object.fromEntries((doc.labels ?? []).map((l) => [l.key, l.value])),
    tools: fromMongoTools(doc.tools ?? []),
  };
}

export function toMongoTools(tools: readonly ToolDefinition[]): MongoTool[] {
  return tools.map((t) => ({ name: t.name, description: t.description, parameters_json: JSON.stringify(t.parameters) }));
}

export function fromMongoTools(tools: readonly MongoTool[]): ToolDefinition[] {
  return tools.map((t) => ({
    name: t.name,
    description: t.description,
    parameters: JSON.parse(t.parameters_json) as Record<string, unknown>,
  }));
}

export function toMongoEvent(id: string, doc: EventDocument): MongoEventDocument {
  return { _id: id, ...doc, task: toMongoTask(doc.task) };
}

export function fromMongoEvent(doc: MongoEventDocument): EventDocument {
  const { _id: _ignored, state: _state, delivery_id: _delivery, ...rest } = doc;
  return { ...rest, task: fromMongoTask(doc.task) };
}
