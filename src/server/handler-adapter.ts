// What both listeners share: run one handler with a CallContext and turn
// whatever it throws into the one wire error (ConnectError), logging the
// unexpected ones. Nothing here knows which transport is calling.
import { Code, ConnectError } from "@connectrpc/connect";
import { SpanKind, contextFrom, inSpan } from "../telemetry/spans.js";
import type { CallContext } from "../api/call-context.js";
import { isUnexpected, toConnectError } from "../api/error-codes.js";
import type { TaskService } from "../api/task-service.js";
import type { Logger } from "../logger.js";

export type UnaryMethod = "submit" | "get" | "list" | "resume" | "cancel" | "delete" | "listWebhookDeliveries";

/** The calls that change a task: each is logged, done or refused. */
const CHANGES = new Set<UnaryMethod>(["submit", "resume", "cancel", "delete"]);

/** The task a call was about: the one it answered with, else the id it named. */
function taskIdOf(response: unknown, request: unknown): string | undefined {
  const fromResponse = (response as { task?: { id?: string } } | undefined)?.task?.id;
  return fromResponse ?? ((request as { id?: string } | undefined)?.id || undefined);
}

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
  constructor(private readonly options: HandlerAdapterOptions) {}

  /** Aborted when the server shuts down. */
  get shutdown(): AbortSignal {
    return this.options.shutdown;
  }

  context(authorization: string | undefined, signal: AbortSignal): CallContext {
    const { shutdown } = this.options;
    return {
      principal: this.options.authenticate(authorization),
      signal: signal === shutdown ? shutdown : AbortSignal.any([signal, shutdown]),
    };
  }

  /**
   * Runs a unary handler in an RPC server span (a child of the caller's `trace` context
   * when it sent one).
   */
  async unary(method: UnaryMethod, request: unknown, context: () => CallContext, trace?: CallTrace): Promise<unknown> {
    return rpcSpan(method, trace, () => this.runUnary(method, request, context));
  }

  private async runUnary(method: UnaryMethod, request: unknown, context: () => CallContext): Promise<unknown> {
    let key: string | undefined;
    try {
      const handler = this.options.service[method].bind(this.options.service) as (r: unknown, c: CallContext) => Promise<unknown>;
      const ctx = context();
      key = ctx.principal;
      const response = await handler(request, ctx);
      // A line per change a caller makes, with the task and the key that made it.
      if (CHANGES.has(method)) this.options.logger.info({ method, taskId: taskIdOf(response, request), key }, `${method} done`);
      return response;
    } catch (error) {
      const wire = this.wireError(method, error);
      if (CHANGES.has(method)) {
        this.options.logger.info(
          { method, taskId: taskIdOf(undefined, request), key, code: Code[wire.code], why: wire.rawMessage },
          `${method} refused`,
        );
      }
      throw wire;
    }
  }

  /**
   * Starts a Watch: the call's span covers its start (auth); the stream may last hours.
   * Returns the service's own stream, with no generator of ours around it (each layer
   * costs every watcher a promise turn per message): the caller maps its errors with
   * wireError, as serveStream (grpc-server.ts) and watch() below do.
   */
  async openWatch(request: unknown, context: () => CallContext, trace?: CallTrace): Promise<AsyncGenerator<unknown>> {
    const ctx = await rpcSpan("watch", trace, async () => context());
    return this.options.service.watch(request as never, ctx);
  }

  /** openWatch as one generator with errors mapped, for the HTTP listener (connect takes a generator). */
  async *watch(request: unknown, context: () => CallContext, trace?: CallTrace): AsyncGenerator<unknown> {
    try {
      yield* await this.openWatch(request, context, trace);
    } catch (error) {
      throw this.wireError("watch", error);
    }
  }

  wireError(method: string, error: unknown): ConnectError {
    const wire = toConnectError(error);
    if (isUnexpected(wire)) this.options.logger.error({ method, err: error }, "unexpected error");
    return wire;
  }
}

/** What a call carries of its caller's trace, and which listener served it. */
export interface CallTrace {
  /** "grpc" (the grpc-js listener) or "connect_rpc" (the HTTP listener, all three protocols). */
  system: "grpc" | "connect_rpc";
  traceparent?: string;
  tracestate?: string;
}

/** A server span named after the RPC, with the code it ended with. */
function rpcSpan<T>(method: string, trace: CallTrace | undefined, work: () => Promise<T>): Promise<T> {
  const name = method.charAt(0).toUpperCase() + method.slice(1);
  const attributes = { "rpc.system": trace?.system ?? "grpc", "rpc.service": "rookery.v1.TaskService", "rpc.method": name };
  return inSpan(
    `rookery.v1.TaskService/${name}`,
    { kind: SpanKind.SERVER, attributes, parent: contextFrom(trace?.traceparent, trace?.tracestate) },
    async (span) => {
      try {
        const result = await work();
        span.setAttribute("rpc.grpc.status_code", 0);
        return result;
      } catch (error) {
        const code = error instanceof ConnectError ? error.code : Code.Unknown;
        span.setAttribute("rpc.grpc.status_code", code);
        throw error;
      }
    },
  );
}
