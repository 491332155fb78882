// The one place that maps errors to gRPC codes. Handlers throw domain errors;
// both listeners send what toConnectError makes of them, so a case answers
// with the same code and message on either. Anything unexpected is INTERNAL
// with a generic message (the details go to the log, never to the wire).
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  ResourceExhaustedError,
  StoreUnavailableError,
  TaskNotFoundError,
  UnauthenticatedError,
} from "../domain/errors.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";

export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof InvalidArgumentError) {
    // Field violations travel as google.rpc.BadRequest, as the API design guide asks.
    const detail = {
      desc: BadRequestSchema,
      value: create(BadRequestSchema, { fieldViolations: error.violations }),
    };
    return new ConnectError(error.message, Code.InvalidArgument, undefined, [detail], error);
  }
  if (error instanceof TaskNotFoundError) return new ConnectError(error.message, Code.NotFound, undefined, undefined, error);
  if (error instanceof FailedPreconditionError) {
    return new ConnectError(error.message, Code.FailedPrecondition, undefined, undefined, error);
  }
  if (error instanceof AlreadyExistsError) return new ConnectError(error.message, Code.AlreadyExists, undefined, undefined, error);
  if (error instanceof ResourceExhaustedError) {
    return new ConnectError(error.message, Code.ResourceExhausted, undefined, undefined, error);
  }
  if (error instanceof UnauthenticatedError) {
    return new ConnectError(error.message, Code.Unauthenticated, undefined, undefined, error);
  }
  // The store is down or unreachable: the client may retry the same call later.
  if (error instanceof StoreUnavailableError) {
    return new ConnectError("the task store is unavailable; retry later", Code.Unavailable, undefined, undefined, error);
  }
  if (error instanceof Error && error.name === "AbortError") {
    return new ConnectError("the call was cancelled", Code.Canceled, undefined, undefined, error);
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}

/** True for errors whose details belong in the server log (the client only sees "internal error"). */
export function isUnexpected(error: ConnectError): boolean {
  return error.code === Code.Internal || error.code === Code.Unknown;
}
