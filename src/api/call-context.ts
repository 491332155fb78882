/** What a handler knows about the call, whichever listener it came through. */
export interface CallContext {
  /** The authenticated caller's key id; "" when auth is off. */
  principal: string;
  /** Aborted when the client goes away, the deadline passes or the server shuts down. */
  signal: AbortSignal;
}
