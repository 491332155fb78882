// Many Watch streams from this process, on either listener, spread over a few
// connections; each event is handed over with its arrival time.
import { setMaxListeners } from "node:events";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { TaskEvent } from "../../gen/rookery/v1/task_pb.js";
import { TaskService, WatchRequestSchema, WatchResponseSchema } from "../../gen/rookery/v1/task_service_pb.js";
import { grpcJsClient, grpcJsStream } from "./grpc-js-calls.js";

export type Listener = "grpc-js" | "connect-node";

/** Wall-clock time in ms with sub-ms precision, comparable with event.time. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** How long ago (ms) the event was stamped at its commit. */
export const ageMs = (event: TaskEvent): number => nowMs() - timestampMs(event.time!);

export interface Watchers {
  /** Resolves when every stream has ended. */
  ended: Promise<void>;
  close(): void;
}

export function openWatchers(
  listener: Listener,
  port: number,
  count: number,
  connections: number,
  request: { id: string; afterSequence: bigint; includeOutput?: boolean },
  onEvent: (event: TaskEvent) => void,
): Watchers {
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per stream
  const streams: Promise<void>[] = [];
  if (listener === "grpc-js") {
    const clients = Array.from({ length: connections }, () => grpcJsClient(`127.0.0.1:${port}`));
    for (let i = 0; i < count; i++) {
      streams.push(
        grpcJsStream(
          clients[i % connections]!,
          "/rookery.v1.TaskService/Watch",
          WatchRequestSchema,
          WatchResponseSchema,
          request,
          (m) => m.event && onEvent(m.event),
          abort.signal,
        ),
      );
    }
    void Promise.allSettled(streams).then(() => clients.forEach((c) => c.close()));
  } else {
    const clients = Array.from({ length: connections }, () =>
      createClient(TaskService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "2", useBinaryFormat: true })),
    );
    for (let i = 0; i < count; i++) {
      streams.push(
        (async () => {
          try {
            for await (const m of clients[i % connections]!.watch(request, { signal: abort.signal })) if (m.event) onEvent(m.event);
          } catch (error) {
            if (!abort.signal.aborted) throw error;
          }
        })(),
      );
    }
  }
  return { ended: Promise.all(streams).then(() => undefined), close: () => abort.abort() };
}

/** Watch streams open on a Rookery server, from its /metrics. */
export async function rookeryWatchStreams(httpPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return Number(/^rookery_watch_streams (\d+)/m.exec(text)?.[1] ?? 0);
}
