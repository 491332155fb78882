// Starts a real Rookery in this process on loopback ports (port 0), pointed at
// a FakeOpenAI, with clients for both listeners.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { loadConfig } from "../../src/config.js";
import type { Hooks } from "../../src/hooks.js";
import { createLogger } from "../../src/logger.js";
import { startRookery, type Rookery } from "../../src/server/rookery.js";
import { TaskStatus, type TaskEvent } from "../../gen/rookery/v1/task_pb.js";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { FakeOpenAI } from "./fake-openai.js";

export type { TaskClient } from "../../src/cli/client.js";
import type { TaskClient } from "../../src/cli/client.js";

export interface Harness {
  rookery: Rookery;
  fake: FakeOpenAI;
  /** Connect's gRPC transport to the grpc-js listener. */
  grpc: TaskClient;
  /** The Connect protocol (JSON) over HTTP/1.1 to the connect-node listener. */
  connect: TaskClient;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** `hooks`: an in-process test's hooks (see src/hooks.ts). */
export async function startHarness(env: Record<string, string> = {}, fake?: FakeOpenAI, hooks?: Hooks): Promise<Harness> {
  const model = fake ?? (await FakeOpenAI.start());
  const fullEnv = {
    ROOKERY_PORT: "0",
    ROOKERY_HTTP_PORT: "0",
    ROOKERY_SQLITE_PATH: ":memory:",
    OPENAI_BASE_URL: model.baseURL,
    OPENAI_API_KEY: "test-key",
    ROOKERY_MODEL: "fake-model",
    ROOKERY_MODEL_MAX_RETRIES: "3",
    ROOKERY_LEASE_MS: "2000",
    ROOKERY_POLL_MS: "50",
    ROOKERY_WATCH_POLL_MS: "50",
    ROOKERY_LOG_LEVEL: "silent",
    ...env,
  };
  const config = loadConfig(fullEnv);
  const rookery = await startRookery(config, createLogger(config.logLevel), hooks);
  return {
    rookery,
    fake: model,
    env: fullEnv,
    grpc: createClient(TaskService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${rookery.grpcPort}` })),
    connect: createClient(
      TaskService,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${rookery.httpPort}`, httpVersion: "1.1", useBinaryFormat: false }),
    ),
    async close() {
      await rookery.close();
      if (!fake) await model.close();
    },
  };
}

/** Every event of a Watch until the stream ends. */
export async function collectEvents(client: TaskClient, id: string, afterSequence = 0n): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  for await (const { event } of client.watch({ id, afterSequence })) if (event) events.push(event);
  return events;
}

/** Watches until the task reaches `status` (terminal or not) and returns the events up to it. */
export async function waitForStatus(client: TaskClient, id: string, status: TaskStatus): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  const controller = new AbortController();
  try {
    for await (const { event } of client.watch({ id, afterSequence: 0n }, { signal: controller.signal })) {
      if (!event) continue;
      events.push(event);
      if (event.status === status && event.previousStatus !== status) return events;
    }
  } finally {
    controller.abort();
  }
  throw new Error(`task ${id} ended ${TaskStatus[events.at(-1)?.status ?? 0]} without reaching ${TaskStatus[status]}`);
}

export function expectDense(events: TaskEvent[], from = 1n): void {
  events.forEach((e, i) => {
    if (e.sequence !== from + BigInt(i)) {
      throw new Error(`sequence gap or duplicate: got ${events.map((x) => x.sequence).join(",")}`);
    }
  });
}
