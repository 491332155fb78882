// Domain errors: small named classes with typed fields, one guard each.
// src/api/error-codes.ts maps them to gRPC codes.
import type { TaskStatus } from "./task.js";

export interface FieldViolation {
  field: string;
  description: string;
}

export class TaskNotFoundError extends Error {
  override readonly name = "TaskNotFoundError";
  constructor(readonly taskId: string) {
    super(`task ${taskId} not found`);
  }
}

export class InvalidArgumentError extends Error {
  override readonly name = "InvalidArgumentError";
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "));
  }
  static field(field: string, description: string): InvalidArgumentError {
    return new InvalidArgumentError([{ field, description }]);
  }
}

/** The task is not in a status that allows the operation. */
export class FailedPreconditionError extends Error {
  override readonly name = "FailedPreconditionError";
  constructor(
    readonly taskId: string,
    readonly status: TaskStatus,
    message: string,
  ) {
    super(message);
  }
}

/** An idempotency key was reused for a different request. */
export class AlreadyExistsError extends Error {
  override readonly name = "AlreadyExistsError";
}

/** A worker's write was refused because its lease is no longer the task's lease. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
  constructor(readonly taskId: string) {
    super(`lease on task ${taskId} was lost`);
  }
}

/** A configured limit would be exceeded. */
export class ResourceExhaustedError extends Error {
  override readonly name = "ResourceExhaustedError";
}

/** The owner already has `max` PENDING, RUNNING or INPUT_REQUIRED tasks. */
export class ActiveTaskQuotaError extends ResourceExhaustedError {
  constructor(readonly max: number) {
    super(`at most ${max} pending, running or input_required tasks per caller; wait for some to finish or cancel them`);
  }
}

export class UnauthenticatedError extends Error {
  override readonly name = "UnauthenticatedError";
}

/** The store cannot be reached; the caller may retry. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const isLeaseLost = (e: unknown): e is LeaseLostError => e instanceof LeaseLostError;
