// A checkpoint's conversation on MongoDB, kept apart from the task's documents.
// Every commit writes the task twice (the newest event's `state` and the tasks
// view); with the conversation inside, a commit cost grew with it (FerretDB on
// PostgreSQL: 22 ms added an iteration with a short conversation, 114 ms at
// ~300 KB), and a task's life with the square of it.
//
//   checkpoint_messages  {_id "<task id>:<random>", task_id, messages}: a run of
//                        consecutive messages of one conversation, written
//                        before the event whose state lists it, never changed.
//
// The task's documents list their conversation's parts in order with their
// message counts (`checkpoint_parts`) and keep `checkpoint.messages` empty.
//
// Fencing: a part's id is new for every attempt to commit, so two writers racing
// for a task's next sequence never write the same part; a part is only read
// through the state of an event that won its sequence. The loser's part is
// dropped (or deleted with the task).
//
// Few parts: a new part takes in the trailing parts no larger than it is with them
// (a binary counter, by characters), so a conversation is in a few parts, read in
// parallel (at most ~log2 of its size over its smallest part's, plus one), and
// each character is written ~that many times over the task's life, a long prompt
// in the first part only once or twice. The parts taken in are deleted after the
// commit; a reader that read the state before it finds one missing and reads the
// task again.
//
// Leftovers: a process killed between writing a part and inserting the event that
// names it (or before deleting the parts its commit took in) leaves parts no state
// names. The claim that takes its run over drops them (see the store's tryCommit);
// a task's delete drops any left.
import { randomUUID } from "node:crypto";
import type { Collection } from "mongodb";
import type { ChatMessage } from "../../domain/task.js";
import { toMessageDocument, type MessageDocument } from "../task-document.js";

export interface ConversationPart {
  id: string;
  /** Messages in the part. */
  count: number;
  /** Characters of their contents and tool calls (what the merging rule weighs). */
  chars: number;
}

export interface PartDocument {
  _id: string;
  task_id: string;
  messages: MessageDocument[];
}

/** What a commit wrote: the parts that hold the conversation, and those it no longer needs. */
export interface WrittenConversation {
  parts: ConversationPart[];
  /** The part this commit wrote, if any: to drop when the commit loses its sequence. */
  written?: string;
  /** Parts the new one took in: to delete once the commit is in. */
  replaced: string[];
}

export class MongoConversations {
  constructor(private readonly collection: Collection<PartDocument>) {}

  /** For deleting a task's parts (every read is by _id). */
  async createIndexes(): Promise<void> {
    await this.collection.createIndex({ task_id: 1 }, { name: "parts_by_task" });
  }

  /**
   * Stores `messages`, a conversation whose first messages `stored` holds (a
   * conversation only grows: the agent loop and Resume append to it); one that
   * shrank is written anew.
   */
  async write(taskId: string, messages: readonly ChatMessage[], stored: readonly ConversationPart[]): Promise<WrittenConversation> {
    let held = stored.reduce((n, p) => n + p.count, 0);
    const kept = [...stored];
    if (messages.length < held) {
      kept.length = 0;
      held = 0;
    }
    if (messages.length === held) return { parts: kept, replaced: stored.slice(kept.length).map((p) => p.id) };
    let start = held;
    let chars = charsOf(messages.slice(held));
    while (kept.length > 0 && kept.at(-1)!.chars <= chars) {
      const taken = kept.pop()!;
      start -= taken.count;
      chars += taken.chars;
    }
    const id = `${taskId}:${randomUUID()}`;
    await this.collection.insertOne({ _id: id, task_id: taskId, messages: messages.slice(start).map(toMessageDocument) });
    return {
      parts: [...kept, { id, count: messages.length - start, chars }],
      written: id,
      replaced: stored.slice(kept.length).map((p) => p.id),
    };
  }

  /** The conversation `parts` hold, or undefined when one of them is gone (replaced since they were read). */
  async read(parts: readonly ConversationPart[]): Promise<MessageDocument[] | undefined> {
    const docs = await Promise.all(parts.map((p) => this.collection.findOne({ _id: p.id })));
    if (docs.some((d) => d === null)) return undefined;
    return docs.flatMap((d) => d!.messages);
  }

  /** The ids of every part stored for the task, named by a state or not. */
  async idsOf(taskId: string): Promise<string[]> {
    const docs = await this.collection.find({ task_id: taskId }, { projection: { _id: 1 } }).toArray();
    return docs.map((d) => d._id);
  }

  /** Point deletes: FerretDB only finds by _id through an index. */
  async drop(ids: readonly string[]): Promise<void> {
    await Promise.all(ids.map((id) => this.collection.deleteOne({ _id: id })));
  }

  async deleteTask(taskId: string): Promise<void> {
    await this.collection.deleteMany({ task_id: taskId });
  }
}

function charsOf(messages: readonly ChatMessage[]): number {
  let chars = 0;
  for (const m of messages) {
    chars += m.content.length;
    for (const call of m.toolCalls ?? []) chars += call.name.length + call.arguments.length;
  }
  return chars;
}
