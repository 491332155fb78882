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

export type FromWorker =
  | { type: "delta"; id: number; delta: ReplyDelta }
  | { type: "reply"; id: number; reply: ModelReply }
  | { type: "failure"; id: number; failure: Failure };
