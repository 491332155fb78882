// Which driver errors mean "the database cannot be reached now" (UNAVAILABLE,
// retry later) rather than a bug or a refused write, and which mean a unique key
// was taken (the one atomic check every MongoDB-wire server has).
import {
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoError,
} from "mongodb";

/** An insert (or upsert) found a document with the same unique key. */
export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === 11000;
}

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
