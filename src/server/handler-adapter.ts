// What both listeners share: run one handler with a CallContext and turn
// whatever it throws into the one wire error (ConnectError), logging the
// unexpected ones. Nothing here knows which transport is calling.
import type { ConnectError } from "@connectrpc/connect";
import type { CallContext } from "../api/call-context.js";
import { isUnexpected, toConnectError } from "../api/error-codes.js";
import type { TaskService } from "../api/task-service.js";
import type { Logger } from "../logger.js";

export type UnaryMethod = "submit" | "get" | "list" | "resume" | "cancel" | "delete";

/** Authenticates the `authorization` header; returns the principal or throws UnauthenticatedError. */
export type Authenticate = (authorization: string | undefined) => string;

export interface HandlerAdapterOptions {
  service: TaskService;
  authenticate: Authenticate;
  logger: Logger;
  /** Aborted when the server shuts down: ends every open call. */
  shutdown: AbortSignal;
}

export class HandlerAdapter {
  constructor(private readonly o: HandlerAdapterOptions) {}

  /** Aborted when the server shuts down. */
  get shutdown(): AbortSignal {
    return this.o.shutdown;
  }

  context(authorization: string | undefined, signal: AbortSignal): CallContext {
    const { shutdown } = this.o;
    return { principal: this.o.authenticate(authorization), signal: signal === shutdown ? shutdown : AbortSignal.any([signal, shutdown]) };
  }

  async unary(method: UnaryMethod, request: unknown, context: () => CallContext): Promise<unknown> {
    try {
      const handler = this.o.service[method].bind(this.o.service) as (r: unknown, c: CallContext) => Promise<unknown>;
      return await handler(request, context());
    } catch (error) {
      throw this.wireError(method, error);
    }
  }

  async *watch(request: unknown, context: () => CallContext): AsyncGenerator<unknown> {
    try {
      yield* this.o.service.watch(request as never, context());
    } catch (error) {
      throw this.wireError("watch", error);
    }
  }

  wireError(method: string, error: unknown): ConnectError {
    const wire = toConnectError(error);
    if (isUnexpected(wire)) this.o.logger.error({ method, err: error }, "unexpected error");
    return wire;
  }
}
