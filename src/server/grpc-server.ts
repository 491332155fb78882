// The native gRPC listener: @grpc/grpc-js serving TaskService (its service
// definition built from the generated descriptor, protobuf-es doing the
// encoding), plus grpc.health.v1 and server reflection (v1 and v1alpha).
import { once, type EventEmitter } from "node:events";
import type { IncomingHttpHeaders } from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { readFileSync } from "node:fs";
import { fromBinary, toBinary, create, type DescMethod } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { InvalidArgumentError } from "../domain/errors.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { TaskService as TaskServiceDesc, type WatchResponse } from "../../gen/rookery/v1/task_service_pb.js";
import type { CallTrace, HandlerAdapter, UnaryMethod } from "./handler-adapter.js";
import { reflectionPackageDefinition } from "./reflection.js";
import { isUntimeable } from "./deadlines.js";
import { MAX_TIMER_MS } from "../timer-limit.js";
import { errorMessage } from "../logger.js";

export interface GrpcListenerOptions {
  adapter: HandlerAdapter;
  /** Largest request message accepted (the HTTP listener's limit too). */
  readMaxBytes: number;
  /** A Watch whose client has not drained a write for this long is ended (resumable by sequence). */
  watchStallMs: number;
  /** A connection with no call in progress for this long is closed (idle-connections.ts). */
  idleConnectionMs: number;
  health: HealthImplementation;
  host: string;
  port: number;
  tls?: { cert: string; key: string };
}

export interface GrpcListener {
  port: number;
  close(graceMs: number): Promise<void>;
}

export async function startGrpcListener(options: GrpcListenerOptions): Promise<GrpcListener> {
  // Rookery serves no channelz, so grpc-js need not keep its per-call and per-socket figures.
  const server = new grpc.Server({
    "grpc.enable_channelz": 0,
    "grpc.max_receive_message_length": options.readMaxBytes,
    "grpc.max_connection_idle_ms": options.idleConnectionMs,
  });
  server.addService(taskServiceDefinition(), taskServiceImplementation(options.adapter, options.watchStallMs));
  options.health.addToServer(server);
  new ReflectionService(reflectionPackageDefinition()).addToServer(server);

  const credentials = options.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(options.tls.cert), private_key: readFileSync(options.tls.key) }])
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  dropUntimeableDeadlines(server);
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        // tryShutdown's callback does not fire after a forced shutdown, so both paths resolve.
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/**
 * grpc-js reads a call's grpc-timeout from the headers of its HTTP/2 servers' "stream"
 * event, and does not expose those servers: each gets a listener ahead of grpc-js's own
 * that drops a timeout longer than a timer can wait (deadlines.ts), from the headers object
 * grpc-js then reads. test/e2e/deadlines.test.ts fails if a grpc-js release moves them.
 */
function dropUntimeableDeadlines(server: grpc.Server): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  for (const http2Server of http2Servers?.keys() ?? []) {
    http2Server.prependListener("stream", (_stream: unknown, headers: IncomingHttpHeaders) => {
      if (isUntimeable("grpc-timeout", headers["grpc-timeout"] as string | undefined)) delete headers["grpc-timeout"];
    });
  }
}

/** grpc-js method definitions from the protobuf-es descriptor. Requests stay raw bytes here and are
 *  decoded in the handler, so a malformed message is INVALID_ARGUMENT rather than grpc-js's INTERNAL. */
function taskServiceDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  // Watch responses are shared by all watchers of an event (task-service.ts): encode each once.
  const encoded = new WeakMap<object, Buffer>();
  const encodeShared = (method: DescMethod) => (message: unknown) => {
    let bytes = encoded.get(message as object);
    if (!bytes) {
      bytes = Buffer.from(toBinary(method.output, message as never));
      encoded.set(message as object, bytes);
    }
    return bytes;
  };
  for (const method of TaskServiceDesc.methods) {
    const encodeOutput =
      method.methodKind === "server_streaming"
        ? encodeShared(method)
        : (message: unknown) => Buffer.from(toBinary(method.output, message as never));
    definition[method.localName] = {
      path: `/${TaskServiceDesc.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (message) => Buffer.from(toBinary(method.input, message as never)),
      requestDeserialize: (bytes: Buffer): unknown => bytes,
      responseSerialize: encodeOutput,
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  return definition;
}

function taskServiceImplementation(adapter: HandlerAdapter, stallMs: number): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of TaskServiceDesc.methods) {
    implementation[method.localName] =
      method.methodKind === "server_streaming"
        ? (call: grpc.ServerWritableStream<Buffer, unknown>) => void serveStream(adapter, method, call, stallMs)
        : (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) =>
            void serveUnary(adapter, method, call, callback);
  }
  return implementation;
}

async function serveUnary(
  adapter: HandlerAdapter,
  method: DescMethod,
  call: grpc.ServerUnaryCall<Buffer, unknown>,
  callback: grpc.sendUnaryData<unknown>,
): Promise<void> {
  try {
    const request = decode(method, call.request);
    // Unary handlers are short store operations that never wait on the caller,
    // so they get the server's shutdown signal rather than a per-call one
    // (which cost an AbortController, a listener and a timer on every call).
    const response = await adapter.unary(
      method.localName as UnaryMethod,
      request,
      () => adapter.context(authorization(call.metadata), adapter.shutdown),
      callTrace(call.metadata),
    );
    callback(null, response);
  } catch (error) {
    callback(toServiceError(adapter.wireError(method.localName, error)));
  }
}

async function serveStream(
  adapter: HandlerAdapter,
  method: DescMethod,
  call: grpc.ServerWritableStream<Buffer, unknown>,
  stallMs: number,
): Promise<void> {
  const { signal, release } = callSignal(call);
  let lastSequence = 0n;
  try {
    const request = decode(method, call.request);
    const stream = await adapter.openWatch(request, () => adapter.context(authorization(call.metadata), signal), callTrace(call.metadata));
    for await (const response of stream) {
      lastSequence = (response as WatchResponse).event?.sequence ?? lastSequence;
      if (!call.write(response)) {
        // Back-pressure: wait until the client reads, so a slow reader never grows our
        // buffers; one that stops reading is let go with the sequence to resume from.
        const drained = await drainedWithin(call, [signal, adapter.shutdown], stallMs);
        if (!drained) {
          throw new ConnectError(
            `watcher stopped reading; reconnect with after_sequence=${lastSequence} to resume`,
            Code.ResourceExhausted,
          );
        }
      }
      if (signal.aborted) return;
      adapter.shutdown.throwIfAborted();
    }
    call.end();
  } catch (error) {
    if (call.cancelled) return;
    call.emit("error", toServiceError(adapter.wireError(method.localName, error)));
  } finally {
    release();
  }
}

/**
 * Waits for the client to drain the stream: true when it did (or the call or
 * server is ending), false after `stallMs`. Every listener and the timer are
 * removed afterwards, so a long, slow stream accumulates nothing.
 */
async function drainedWithin(call: grpc.ServerWritableStream<Buffer, unknown>, endings: AbortSignal[], stallMs: number): Promise<boolean> {
  if (endings.some((ending) => ending.aborted)) return true;
  const cleanup = new AbortController();
  const { signal } = cleanup;
  try {
    return await Promise.race([
      once(call, "drain", { signal }).then(() => true),
      ...endings.map((ending) => once(ending, "abort", { signal }).then(() => true)),
      sleep(stallMs, false, { signal }),
    ]);
  } catch (error) {
    if (signal.aborted) return true;
    throw error;
  } finally {
    cleanup.abort();
  }
}

function decode(method: DescMethod, bytes: Buffer): unknown {
  try {
    return fromBinary(method.input, bytes);
  } catch (error) {
    throw InvalidArgumentError.field("request", `is not a valid ${method.input.typeName}: ${errorMessage(error)}`);
  }
}

/** The caller's W3C trace context, from the call's metadata. */
function callTrace(metadata: grpc.Metadata): CallTrace {
  const text = (key: string) => {
    const value = metadata.get(key)[0];
    return typeof value === "string" ? value : undefined;
  };
  const traceparent = text("traceparent");
  const tracestate = text("tracestate");
  return { system: "grpc", ...(traceparent ? { traceparent } : {}), ...(tracestate ? { tracestate } : {}) };
}

function authorization(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get("authorization")[0];
  return typeof value === "string" ? value : undefined;
}

/**
 * A signal aborted when the client cancels or the deadline passes, and release()
 * for when the call is over: grpc-js reports every finished call as "cancelled"
 * too, which must no longer abort anything then.
 */
function callSignal(call: grpc.ServerWritableStream<Buffer, unknown>): {
  signal: AbortSignal;
  release: () => void;
} {
  const controller = new AbortController();
  const onCancelled = () => controller.abort(new ConnectError("cancelled by client", Code.Canceled));
  call.once("cancelled", onCancelled);
  const deadline = call.getDeadline(); // a Date, or epoch ms (Infinity when there is none)
  const ms = (deadline instanceof Date ? deadline.getTime() : Number(deadline)) - Date.now();
  const timer =
    Number.isFinite(ms) && ms <= MAX_TIMER_MS
      ? setTimeout(() => controller.abort(new ConnectError("deadline exceeded", Code.DeadlineExceeded)), Math.max(0, ms))
      : undefined;
  timer?.unref();
  return {
    signal: controller.signal,
    release: () => {
      call.off("cancelled", onCancelled);
      clearTimeout(timer);
    },
  };
}

/** The ConnectError as grpc-js sends it: same code and message, details in grpc-status-details-bin. */
function toServiceError(error: ConnectError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  const details = error.details.flatMap((d) => ("desc" in d ? [anyPack(d.desc, create(d.desc, d.value))] : []));
  if (details.length > 0) {
    const status = create(StatusSchema, { code: error.code, message: error.rawMessage, details });
    metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)));
  }
  return { code: error.code as number, details: error.rawMessage, metadata };
}
