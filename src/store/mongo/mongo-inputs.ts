// A task's long inputs on MongoDB (see ../task-inputs.ts), apart from the task's
// documents, which every commit writes twice (the newest event's state and the
// tasks view): with a 250 KB prompt inside, FerretDB on PostgreSQL took ~100 ms
// more an iteration.
//
//   task_inputs  {_id "<task id>:<random>", task_id, prompt, system_prompt, tools,
//                written_at}: written before the document that names it
//                (`inputs_id`), never changed. The id is new for every writer, so
//                two creators racing on one request_id (or two writers moving a
//                task's inline inputs out) never write the same document; only
//                the one the stored task names is read, and the others are
//                deleted with the task. A Submit that died before storing its
//                task leaves its inputs with no task: the claim scan that finds
//                its queue entry abandoned removes them (mongo-queue.ts).
import { randomUUID } from "node:crypto";
import type { Collection } from "mongodb";
import type { Task } from "../../domain/task.js";
import { inputsOf, type TaskInputs } from "../task-inputs.js";
import { fromMongoTools, toMongoTools, type MongoTool } from "./mongo-document.js";

export interface InputsDocument {
  _id: string;
  task_id: string;
  prompt: string;
  system_prompt: string;
  tools: MongoTool[];
  written_at?: Date;
}

export class MongoTaskInputs {
  constructor(
    private readonly collection: Collection<InputsDocument>,
    private readonly now: () => Date,
  ) {}

  /** For deleting a task's inputs (every read is by _id). */
  async createIndexes(): Promise<void> {
    await this.collection.createIndex({ task_id: 1 }, { name: "inputs_by_task" });
  }

  /** Writes the task's inputs; returns the id its documents name them by. */
  async write(task: Task): Promise<string> {
    const { prompt, systemPrompt, tools } = inputsOf(task);
    const id = `${task.id}:${randomUUID()}`;
    await this.collection.insertOne({
      _id: id,
      task_id: task.id,
      prompt,
      system_prompt: systemPrompt,
      tools: toMongoTools(tools),
      written_at: this.now(),
    });
    return id;
  }

  /** The inputs named `id`, or undefined when they are gone (the task is being deleted). */
  async read(id: string): Promise<TaskInputs | undefined> {
    const doc = await this.collection.findOne({ _id: id });
    return doc ? { prompt: doc.prompt, systemPrompt: doc.system_prompt, tools: fromMongoTools(doc.tools) } : undefined;
  }

  async drop(id: string): Promise<void> {
    await this.collection.deleteOne({ _id: id });
  }

  /** Removes the inputs of a task never stored that were written before `before`; a retry's since stay. */
  async deleteAbandoned(taskId: string, before: Date): Promise<void> {
    await this.collection.deleteMany({ task_id: taskId, written_at: { $lt: before } });
  }

  async deleteTask(taskId: string): Promise<void> {
    await this.collection.deleteMany({ task_id: taskId });
  }
}
