// Model calls on worker threads (ROOKERY_MODEL_WORKERS of them): the main
// thread keeps the store, leases, Watch and the agent loop's decisions; each
// call's SDK work runs in the least busy worker. A worker that dies fails only
// its own calls (with a ModelWorkerLostError, which is retried) and is replaced.
import { Worker } from "node:worker_threads";
import type { Logger } from "../logger.js";
import type { ChatCall } from "./chat-stream.js";
import { MalformedResponseError, ModelCallError, ModelWorkerLostError, ReplyTooLargeError } from "./model-errors.js";
import type { Failure, FromWorker, ToWorker, WorkerSettings } from "./model-worker-protocol.js";
import type { ModelReply, ReplyDelta } from "./reply-assembler.js";

const ENTRY = new URL("./model-worker-entry.js", import.meta.url);

interface Pending {
  onDelta: (delta: ReplyDelta) => void;
  resolve: (reply: ModelReply) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  calls: Map<number, Pending>;
}

export class ModelWorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;

  constructor(
    size: number,
    private readonly settings: WorkerSettings,
    private readonly logger: Logger,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  /** One streamed call in a worker; rejects at once when `signal` aborts (the worker is told to stop). */
  call(call: ChatCall, signal: AbortSignal, onDelta: (delta: ReplyDelta) => void): Promise<ModelReply> {
    signal.throwIfAborted();
    const slot = this.slots.reduce((a, b) => (b.calls.size < a.calls.size ? b : a));
    const id = this.nextId++;
    return new Promise<ModelReply>((resolve, reject) => {
      const onAbort = () => {
        slot.calls.delete(id);
        this.send(slot, { type: "abort", id });
        reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => signal.removeEventListener("abort", onAbort);
      slot.calls.set(id, {
        onDelta,
        resolve: (reply) => (done(), resolve(reply)),
        reject: (error) => (done(), reject(error)),
      });
      this.send(slot, { type: "call", id, call });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private send(slot: Slot, message: ToWorker): void {
    slot.worker.postMessage(message);
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(ENTRY, { workerData: this.settings }), calls: new Map() };
    slot.worker.on("message", (message: FromWorker) => {
      const pending = slot.calls.get(message.id);
      if (!pending) return; // aborted meanwhile
      for (const delta of message.deltas) pending.onDelta(delta);
      if (message.type === "deltas") return;
      slot.calls.delete(message.id);
      if (message.type === "reply") pending.resolve(message.reply);
      else pending.reject(errorFrom(message.failure));
    });
    // Not expected (the worker catches what a provider sends), but a worker that dies
    // must fail its calls rather than leave them waiting, and be replaced.
    slot.worker.on("error", (error) => this.logger.error({ err: error }, "model worker failed"));
    slot.worker.on("exit", (code) => {
      if (this.closing) return;
      const lost = new ModelWorkerLostError(`the model worker running this call stopped (exit code ${code})`);
      for (const pending of slot.calls.values()) pending.reject(lost);
      slot.calls.clear();
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots[index] = this.spawn();
    });
    // Idle workers must not keep the process alive on their own.
    slot.worker.unref();
    return slot;
  }
}

function errorFrom(failure: Failure): ModelCallError {
  if (failure.name === "MalformedResponseError") return new MalformedResponseError(failure.message);
  if (failure.name === "ReplyTooLargeError") return new ReplyTooLargeError(failure.message);
  return new ModelCallError(failure.message, failure.code);
}
