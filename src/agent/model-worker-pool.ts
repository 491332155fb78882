// Model calls on worker threads (ROOKERY_MODEL_WORKERS of them): the main
// thread keeps the store, leases, Watch and the agent loop's decisions; each
// call's SDK work runs in the least busy worker. A worker that dies fails only
// its own calls (with a ModelWorkerLostError, which is retried) and is replaced.
// A run's calls go to the worker that keeps its conversation, which is sent
// only the messages it does not hold yet (model-worker-protocol.ts).
import { Worker } from "node:worker_threads";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import type { Logger } from "../logger.js";
import type { ChatCall } from "./chat-stream.js";
import { MalformedResponseError, ModelCallError, ModelWorkerLostError, ReplyTooLargeError, StalledReplyError } from "./model-errors.js";
import type { Failure, FromWorker, ToWorker, WorkerCall, WorkerSettings } from "./model-worker-protocol.js";
import type { ModelReply, ReplyDelta } from "./reply-assembler.js";

// A worker thread loads JavaScript: the build's worker starts from its compiled module;
// run from source, from a small file that registers tsx first (tools/build.ts).
const ENTRY = import.meta.url.endsWith(".ts")
  ? new URL("./model-worker-entry.js", import.meta.url)
  : new URL("./model-worker.js", import.meta.url);

interface Pending {
  onDelta: (delta: ReplyDelta) => void;
  resolve: (reply: ModelReply) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  startedAt: number;
  calls: Map<number, Pending>;
  /** Conversations this worker may drop, told with its next call (or within FORGET_MS). */
  forget: number[];
  forgetTimer: NodeJS.Timeout | undefined;
}

/** A run's conversation as its worker holds it: the first `length` messages of `sent`, the run's last call's. */
interface Conversation {
  slot: Slot;
  id: number;
  sent: readonly ChatCompletionMessageParam[];
  /** Counted when handed over: the caller may append to `sent` afterwards. */
  length: number;
}

/** Conversations kept in the workers at most; past it the least recently used is dropped (and sent whole if it calls again). */
const MAX_CONVERSATIONS = 1024;
/** Ended conversations are dropped with a worker's next call, or at the latest after this long. */
const FORGET_MS = 1_000;
/**
 * A worker that stops sooner than this after it started is taken to have failed to start
 * (no file descriptors left, a broken install): its replacement waits, 100 ms after the
 * first such failure, doubling up to 5 s, rather than failing again at once, in a loop.
 */
const SHORT_LIFE_MS = 1_000;
const FIRST_RESPAWN_DELAY_MS = 100;
const MAX_RESPAWN_DELAY_MS = 5_000;

export class ModelWorkerPool {
  private readonly slots: Slot[] = [];
  /** By the run's conversation key, least recently used first. */
  private readonly conversations = new Map<string, Conversation>();
  private nextId = 1;
  private nextConversation = 1;
  private closing = false;
  /** How long the next replacement of a worker that failed to start waits (0: none failed so). */
  private respawnDelayMs = 0;

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

  /**
   * One streamed call in a worker; rejects at once when `signal` aborts (the worker is told to stop).
   * `conversation` is the run's key: its calls go to the worker that keeps its messages.
   */
  call(call: ChatCall, signal: AbortSignal, onDelta: (delta: ReplyDelta) => void, conversation?: string): Promise<ModelReply> {
    signal.throwIfAborted();
    if (this.slots.length === 0) {
      return Promise.reject(
        new ModelWorkerLostError("no model worker is running: they stop as they start; their replacements are on the way"),
      );
    }
    const known = conversation === undefined ? undefined : this.conversations.get(conversation);
    const slot = known && this.slots.includes(known.slot) ? known.slot : this.slots.reduce((a, b) => (b.calls.size < a.calls.size ? b : a));
    const workerCall = this.handOver(slot, call, conversation, known);
    const id = this.nextId++;
    return new Promise<ModelReply>((resolve, reject) => {
      const onAbort = () => {
        slot.calls.delete(id);
        this.send(slot, { type: "abort", id });
        if (conversation !== undefined) this.endConversation(conversation);
        reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => signal.removeEventListener("abort", onAbort);
      slot.calls.set(id, {
        onDelta,
        resolve: (reply) => (done(), resolve(reply)),
        reject: (error) => {
          done();
          // A failed call's conversation is sent whole next time: nothing to trust about what the worker kept.
          if (conversation !== undefined) this.endConversation(conversation);
          reject(error);
        },
      });
      this.send(slot, { type: "call", id, call: workerCall });
    });
  }

  /** The run is over: its worker may drop the conversation it keeps for it. */
  endConversation(conversation: string): void {
    const known = this.conversations.get(conversation);
    if (!known) return;
    this.conversations.delete(conversation);
    this.forget(known);
  }

  /**
   * The call as `slot` is sent it: only the messages past those it keeps for the conversation,
   * when this call's messages begin with exactly those (the same objects: chat-stream.ts converts
   * each message once). Otherwise the messages go whole, under a new id.
   */
  private handOver(slot: Slot, call: ChatCall, conversation: string | undefined, known: Conversation | undefined): WorkerCall {
    const { messages, ...rest } = call;
    const kept = known && known.slot === slot && startsWith(messages, known.sent, known.length) ? known.length : 0;
    let id = 0;
    if (conversation !== undefined) {
      if (known && kept === 0) this.forget(known);
      id = kept > 0 ? known!.id : this.nextConversation++;
      this.conversations.delete(conversation); // re-inserted last: the most recently used
      this.conversations.set(conversation, { slot, id, sent: messages, length: messages.length });
      if (this.conversations.size > MAX_CONVERSATIONS) {
        const [oldest, dropped] = this.conversations.entries().next().value!;
        this.conversations.delete(oldest);
        this.forget(dropped);
      }
    }
    const forget = slot.forget;
    slot.forget = [];
    return { ...rest, conversation: id, kept, added: kept > 0 ? messages.slice(kept) : messages, forget };
  }

  private forget(conversation: Conversation): void {
    const { slot } = conversation;
    if (!this.slots.includes(slot)) return; // a dead worker's conversations went with it
    slot.forget.push(conversation.id);
    slot.forgetTimer ??= setTimeout(() => {
      slot.forgetTimer = undefined;
      if (slot.forget.length === 0 || !this.slots.includes(slot)) return;
      this.send(slot, { type: "forget", forget: slot.forget });
      slot.forget = [];
    }, FORGET_MS).unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const slot of this.slots) clearTimeout(slot.forgetTimer);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private send(slot: Slot, message: ToWorker): void {
    slot.worker.postMessage(message);
  }

  private spawn(): Slot {
    const slot: Slot = {
      worker: new Worker(ENTRY, { workerData: this.settings }),
      startedAt: Date.now(),
      calls: new Map(),
      forget: [],
      forgetTimer: undefined,
    };
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
      this.replace(slot);
      clearTimeout(slot.forgetTimer);
      for (const [key, c] of this.conversations) if (c.slot === slot) this.conversations.delete(key);
      for (const pending of slot.calls.values()) pending.reject(lost);
      slot.calls.clear();
    });
    // Idle workers must not keep the process alive on their own.
    slot.worker.unref();
    return slot;
  }

  /** A new worker in a stopped one's place: at once, or after a delay when workers keep failing to start. */
  private replace(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    const failedToStart = Date.now() - slot.startedAt < SHORT_LIFE_MS;
    this.respawnDelayMs = failedToStart ? Math.min(MAX_RESPAWN_DELAY_MS, Math.max(FIRST_RESPAWN_DELAY_MS, 2 * this.respawnDelayMs)) : 0;
    if (this.respawnDelayMs === 0) {
      this.slots[index] = this.spawn();
      return;
    }
    // Out of the rotation meanwhile: calls go to the other workers (or fail retryably when none is left).
    this.slots.splice(index, 1);
    this.logger.warn({ inMs: this.respawnDelayMs }, "model worker stopped soon after it started; replacing it after a delay");
    setTimeout(() => {
      if (!this.closing) this.slots.push(this.spawn());
    }, this.respawnDelayMs).unref();
  }
}

/** Whether `messages` begins with exactly the first `length` objects of `prefix`. */
function startsWith(
  messages: readonly ChatCompletionMessageParam[],
  prefix: readonly ChatCompletionMessageParam[],
  length: number,
): boolean {
  if (length === 0 || messages.length < length || prefix.length < length) return false;
  for (let i = 0; i < length; i++) if (messages[i] !== prefix[i]) return false;
  return true;
}

function errorFrom(failure: Failure): ModelCallError {
  if (failure.name === "MalformedResponseError") return new MalformedResponseError(failure.message);
  if (failure.name === "ReplyTooLargeError") return new ReplyTooLargeError(failure.message);
  if (failure.name === "StalledReplyError") return new StalledReplyError(failure.message);
  if (failure.name === "ModelWorkerLostError") return new ModelWorkerLostError(failure.message);
  return new ModelCallError(failure.message, failure.code);
}
