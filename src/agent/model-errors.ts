// Why a model call failed. Retryability is data on the error (`retryable`),
// not a match on its message, and so is the task's failure code (`code`).
import type { ErrorCode } from "../domain/task.js";

/** The model call failed for good (after the SDK's retries); `message` says why. */
export class ModelCallError extends Error {
  override readonly name: string = "ModelCallError";
  readonly retryable: boolean = false;

  constructor(
    message: string,
    readonly code: ErrorCode = "provider_error",
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The endpoint answered, but not with a chat completion we could read. Retried like an HTTP failure. */
export class MalformedResponseError extends ModelCallError {
  override readonly name: string = "MalformedResponseError";
  override readonly retryable = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "malformed_reply", options);
  }
}

/** The reply started, then no chunk of it came for the call's timeout. Retried, like a timed-out request. */
export class StalledReplyError extends ModelCallError {
  override readonly name: string = "StalledReplyError";
  override readonly retryable = true;

  constructor(message: string) {
    super(message, "provider_error");
  }
}

/** The reply grew past ROOKERY_MAX_REPLY_BYTES. Not retried: the same prompt would do it again. */
export class ReplyTooLargeError extends ModelCallError {
  override readonly name: string = "ReplyTooLargeError";

  constructor(message: string) {
    super(message, "output_limit");
  }
}

/** The model worker thread making the call stopped. Retried (on a worker that replaced it), like a dropped connection. */
export class ModelWorkerLostError extends ModelCallError {
  override readonly name: string = "ModelWorkerLostError";
  override readonly retryable = true;

  constructor(message: string) {
    super(message, "internal");
  }
}
