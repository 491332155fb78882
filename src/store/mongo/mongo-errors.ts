// Which driver errors mean "the database cannot be reached now" (UNAVAILABLE,
// retry later) rather than a bug or a refused write.
import { MongoNetworkError, MongoNotConnectedError, MongoServerSelectionError, MongoTopologyClosedError, MongoError } from "mongodb";

export function isUnavailable(error: unknown): boolean {
  return (
    // No server answered within serverSelectionTimeoutMS.
    error instanceof MongoServerSelectionError ||
    // A connection broke or timed out mid-operation.
    error instanceof MongoNetworkError ||
    // The client was closed or never connected (shutdown races).
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoNotConnectedError ||
    // The driver marks transient failures it knows about.
    (error instanceof MongoError && (error.hasErrorLabel("RetryableWriteError") || error.hasErrorLabel("TransientTransactionError")))
  );
}
