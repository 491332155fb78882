// The messages between the main thread's ModelWorkerPool and its model workers.
import type { ErrorCode } from "../domain/task.js";
import type { ChatCall, ProviderSettings, SdkSettings } from "./chat-stream.js";
import type { ModelReply, ReplyDelta } from "./reply-assembler.js";

export interface WorkerSettings {
  providers: Record<string, ProviderSettings>;
  sdk: SdkSettings;
}

export type ToWorker = { type: "call"; id: number; call: ChatCall } | { type: "abort"; id: number };

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
