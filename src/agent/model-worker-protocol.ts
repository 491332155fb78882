// The messages between the main thread's ModelWorkerPool and its model workers.
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import type { ErrorCode } from "../domain/task.js";
import type { ChatCall, ProviderSettings, SdkSettings } from "./chat-stream.js";
import type { ModelReply, ReplyDelta } from "./reply-assembler.js";

export interface WorkerSettings {
  providers: Record<string, ProviderSettings>;
  sdk: SdkSettings;
}

/**
 * A call as a worker receives it. A run's calls only ever append to its conversation, so the
 * worker keeps the messages of each run's last call: it holds `kept` of this call's messages
 * under `conversation` already and is sent the rest (`added`). Without it, every call copied
 * the whole conversation between the threads: O(n) per call and O(n²) over a run (see
 * bench/RESULTS.md, issue 16). `conversation` 0 is a call to keep nothing of; `forget` names
 * conversations whose runs have ended.
 */
export interface WorkerCall extends Omit<ChatCall, "messages"> {
  conversation: number;
  kept: number;
  added: ChatCompletionMessageParam[];
  forget: number[];
}

export type ToWorker =
  { type: "call"; id: number; call: WorkerCall } | { type: "abort"; id: number } | { type: "forget"; forget: number[] };

/** A ModelCallError as data: its class name (which says whether it is retried), message and code. */
export interface Failure {
  name: string;
  message: string;
  code: ErrorCode;
}

/**
 * Each message carries the deltas the call's stream produced since the last one, in order;
 * the main thread hands them on before it settles the call. A reply that arrives whole in
 * one read (a short answer) is then one message back instead of one per chunk plus one.
 */
export type FromWorker =
  | { type: "deltas"; id: number; deltas: ReplyDelta[] }
  | { type: "reply"; id: number; deltas: ReplyDelta[]; reply: ModelReply }
  | { type: "failure"; id: number; deltas: ReplyDelta[]; failure: Failure };
