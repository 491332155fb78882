// Malformed and hostile requests, with API keys on: each answers the right code
// and every row of the store stays as it was.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../src/auth/api-keys.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { collectEvents, startHarness, waitForStatus, type Harness, type TaskClient } from "../support/harness.js";

const keyA = createApiKey("key-a");
const keyB = createApiKey("key-b");
const MISSING = "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10";

let h: Harness;
let dir: string;
let dbPath: string;
const clients: Record<"a" | "b" | "none" | "wrong" | "basic", TaskClient> = {} as never;
const ids = { completed: "", running: "", paused: "", call: "", otherKeys: "", pageToken: "" };

function clientWith(authorization?: string): TaskClient {
  const auth: Interceptor = (next) => (req) => {
    if (authorization) req.header.set("authorization", authorization);
    return next(req);
  };
  return createClient(TaskService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${h.rookery.grpcPort}`, interceptors: [auth] }));
}

/** Every response of a Watch stream, read to its end. */
async function watchAll(
  client: TaskClient,
  request: { id: string; afterSequence?: bigint; includeOutput?: boolean; outputOffset?: bigint },
) {
  const responses = [];
  for await (const response of client.watch(request)) responses.push(response);
  return responses;
}

/**
 * Every row of every table of the store, read through a connection of its own. (Not
 * the files' bytes: the store's checkpointer thread copies the log into the database
 * file at any time, which changes bytes but no row.)
 */
function storeFingerprint(): string {
  const hash = createHash("sha256");
  const db = new Database(dbPath, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    for (const { name } of tables) {
      const rows = db
        .prepare(`SELECT * FROM "${name}"`)
        .all()
        .map((row) => JSON.stringify(row));
      hash.update(`${name}\n${rows.sort().join("\n")}\n`);
    }
  } finally {
    db.close();
  }
  return hash.digest("hex");
}

/** A SubmitRequest whose prompt (field 1) is not valid UTF-8, sent with raw grpc-js. */
function submitRawBytes(bytes: number[]): Promise<never> {
  const client = new grpc.Client(`127.0.0.1:${h.rookery.grpcPort}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${keyA.key}`);
  return new Promise((_, reject) =>
    client.makeUnaryRequest(
      "/rookery.v1.TaskService/Submit",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x0a, bytes.length, ...bytes]),
      metadata,
      (error) => {
        client.close();
        reject(error ? new ConnectError(error.details, error.code as number) : new Error("accepted"));
      },
    ),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "rookery-hostile-"));
  dbPath = join(dir, "rookery.db");
  h = await startHarness({
    ROOKERY_SQLITE_PATH: dbPath,
    ROOKERY_API_KEYS: [keyA.entry, keyB.entry].join(","),
    ROOKERY_MAX_ACTIVE_TASKS_PER_KEY: "2",
    ROOKERY_MAX_WATCHES_PER_KEY: "2",
    // Long leases: no renewal writes while the table runs.
    ROOKERY_LEASE_MS: "600000",
  });
  h.fake.respond((c) => {
    if (c.prompt === "hang") return { hang: true };
    if (c.prompt === "tool") return { toolCalls: [{ id: "call_1", name: "ask_user", arguments: "{}" }] };
    return { content: "done" };
  });
  clients.a = clientWith(`Bearer ${keyA.key}`);
  clients.b = clientWith(`Bearer ${keyB.key}`);
  clients.none = clientWith();
  clients.wrong = clientWith("Bearer rk_not_a_key");
  clients.basic = clientWith("Basic dXNlcjpwYXNz");

  ids.completed = (await clients.a.submit({ prompt: "finish" })).task!.id;
  await collectEvents(clients.a, ids.completed);
  ids.running = (await clients.a.submit({ prompt: "hang" })).task!.id;
  await waitForStatus(clients.a, ids.running, TaskStatus.RUNNING);
  ids.paused = (await clients.a.submit({ prompt: "tool", tools: [{ name: "ask_user", description: "asks" }] })).task!.id;
  await waitForStatus(clients.a, ids.paused, TaskStatus.INPUT_REQUIRED);
  ids.otherKeys = (await clients.b.submit({ prompt: "mine", requestId: "b-1" })).task!.id;
  await collectEvents(clients.b, ids.otherKeys);
  ids.pageToken = (await clients.a.list({ pageSize: 1 })).nextPageToken;
});

afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Case = [name: string, code: Code, call: () => Promise<unknown>];
const big = (n: number) => "x".repeat(n);

const cases: Case[] = [
  // Submit: bad input
  ["Submit with an empty prompt", Code.InvalidArgument, () => clients.b.submit({ prompt: "" })],
  ["Submit with a whitespace prompt", Code.InvalidArgument, () => clients.b.submit({ prompt: " \n\t " })],
  ["Submit with a 300 KB prompt", Code.InvalidArgument, () => clients.b.submit({ prompt: big(300_000) })],
  ["Submit with a 300 KB system prompt", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", systemPrompt: big(300_000) })],
  ["Submit with a NUL in the prompt", Code.InvalidArgument, () => clients.b.submit({ prompt: "a\u0000b" })],
  ["Submit with a prompt that is not UTF-8", Code.InvalidArgument, () => submitRawBytes([0xff, 0xfe, 0xfd])],
  ["Submit with an unknown provider", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", provider: "nope" })],
  ["Submit with an empty model", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", model: "" })],
  ["Submit with max_iterations 0", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", maxIterations: 0 })],
  ["Submit with max_iterations 100000", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", maxIterations: 100_000 })],
  [
    "Submit with 65 labels",
    Code.InvalidArgument,
    () => clients.b.submit({ prompt: "p", labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }),
  ],
  ["Submit with a label key that has spaces", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", labels: { "Bad Key": "v" } })],
  ["Submit with a 300-character label value", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", labels: { k: big(300) } })],
  ["Submit with a 200-character request_id", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", requestId: big(200) })],
  [
    "Submit with an invalid tool name",
    Code.InvalidArgument,
    () => clients.b.submit({ prompt: "p", tools: [{ name: "no spaces allowed", description: "" }] }),
  ],
  [
    "Submit declaring a server tool's name",
    Code.InvalidArgument,
    () => clients.b.submit({ prompt: "p", tools: [{ name: "calculator", description: "" }] }),
  ],
  [
    "Submit with a duplicate tool",
    Code.InvalidArgument,
    () =>
      clients.b.submit({
        prompt: "p",
        tools: [
          { name: "t", description: "" },
          { name: "t", description: "" },
        ],
      }),
  ],
  [
    "Submit with 65 tools",
    Code.InvalidArgument,
    () => clients.b.submit({ prompt: "p", tools: Array.from({ length: 65 }, (_, i) => ({ name: `t${i}`, description: "" })) }),
  ],
  ["Submit reusing a request_id for another prompt", Code.AlreadyExists, () => clients.b.submit({ prompt: "not mine", requestId: "b-1" })],
  ["Submit past the active-task limit", Code.ResourceExhausted, () => clients.a.submit({ prompt: "one too many" })],
  // Get
  ["Get with an empty id", Code.InvalidArgument, () => clients.a.get({ id: "" })],
  ["Get with an id that is not a UUID", Code.InvalidArgument, () => clients.a.get({ id: "../../etc/passwd" })],
  ["Get of an unknown task", Code.NotFound, () => clients.a.get({ id: MISSING })],
  ["Get of another key's task", Code.NotFound, () => clients.a.get({ id: ids.otherKeys })],
  // List
  ["List with page_size -1", Code.InvalidArgument, () => clients.a.list({ pageSize: -1 })],
  ["List with page_size 1001", Code.InvalidArgument, () => clients.a.list({ pageSize: 1001 })],
  ["List with a garbage page_token", Code.InvalidArgument, () => clients.a.list({ pageToken: "%%%not-a-token" })],
  [
    "List with a page_token issued for other filters",
    Code.InvalidArgument,
    () => clients.a.list({ pageToken: ids.pageToken, statuses: [TaskStatus.RUNNING] }),
  ],
  ["List with an unknown status number", Code.InvalidArgument, () => clients.a.list({ statuses: [99 as TaskStatus] })],
  ["List with status UNSPECIFIED", Code.InvalidArgument, () => clients.a.list({ statuses: [TaskStatus.UNSPECIFIED] })],
  // Watch
  ["Watch with an id that is not a UUID", Code.InvalidArgument, () => collectEvents(clients.a, "zzz")],
  ["Watch of an unknown task", Code.NotFound, () => collectEvents(clients.a, MISSING)],
  ["Watch of another key's task", Code.NotFound, () => collectEvents(clients.a, ids.otherKeys)],
  ["Watch after a sequence the task has not reached", Code.InvalidArgument, () => collectEvents(clients.a, ids.completed, 99n)],
  [
    "Watch with an output_offset but without include_output",
    Code.InvalidArgument,
    () => watchAll(clients.a, { id: ids.completed, afterSequence: 2n, outputOffset: 5n }),
  ],
  [
    "Watch with an output_offset after sequence 0",
    Code.InvalidArgument,
    () => watchAll(clients.a, { id: ids.completed, includeOutput: true, outputOffset: 5n }),
  ],
  // Resume
  ["Resume of a running task", Code.FailedPrecondition, () => clients.a.resume({ id: ids.running, message: "more" })],
  [
    "Resume with a result for an unknown call id",
    Code.InvalidArgument,
    () => clients.a.resume({ id: ids.paused, toolResults: [{ toolCallId: "call_404", content: "x" }] }),
  ],
  [
    "Resume with duplicate tool results",
    Code.InvalidArgument,
    () =>
      clients.a.resume({
        id: ids.paused,
        toolResults: [
          { toolCallId: "call_1", content: "x" },
          { toolCallId: "call_1", content: "y" },
        ],
      }),
  ],
  ["Resume without the pending tool results", Code.InvalidArgument, () => clients.a.resume({ id: ids.paused, message: "hi" })],
  [
    "Resume with tool results for a completed task",
    Code.InvalidArgument,
    () => clients.a.resume({ id: ids.completed, message: "m", toolResults: [{ toolCallId: "call_1", content: "x" }] }),
  ],
  ["Resume of a completed task without a message", Code.InvalidArgument, () => clients.a.resume({ id: ids.completed })],
  [
    "Resume with additional_iterations 0",
    Code.InvalidArgument,
    () => clients.a.resume({ id: ids.completed, message: "m", additionalIterations: 0 }),
  ],
  ["Resume with an empty message", Code.InvalidArgument, () => clients.a.resume({ id: ids.completed, message: "" })],
  ["Resume of another key's task", Code.NotFound, () => clients.a.resume({ id: ids.otherKeys, message: "m" })],
  // Cancel
  ["Cancel of a completed task", Code.FailedPrecondition, () => clients.a.cancel({ id: ids.completed })],
  ["Cancel with a 2000-character reason", Code.InvalidArgument, () => clients.a.cancel({ id: ids.running, reason: big(2000) })],
  ["Cancel of another key's task", Code.NotFound, () => clients.a.cancel({ id: ids.otherKeys })],
  // Delete
  ["Delete with an id that is not a UUID", Code.InvalidArgument, () => clients.a.delete({ id: "x" })],
  ["Delete of an unknown task", Code.NotFound, () => clients.a.delete({ id: MISSING })],
  ["Delete of another key's task", Code.NotFound, () => clients.a.delete({ id: ids.otherKeys })],
  ["Delete without an API key", Code.Unauthenticated, () => clients.none.delete({ id: ids.completed })],
  // Bounds
  ["Submit with a zero timeout", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", timeout: { seconds: 0n, nanos: 0 } })],
  [
    "Submit with a negative queue_timeout",
    Code.InvalidArgument,
    () => clients.b.submit({ prompt: "p", queueTimeout: { seconds: -5n, nanos: 0 } }),
  ],
  ["Submit with max_total_tokens 0", Code.InvalidArgument, () => clients.b.submit({ prompt: "p", maxTotalTokens: 0n })],
  [
    "Resume with additional_tokens 0",
    Code.InvalidArgument,
    () => clients.a.resume({ id: ids.completed, message: "m", additionalTokens: 0n }),
  ],
  // Auth
  ["Submit without an API key", Code.Unauthenticated, () => clients.none.submit({ prompt: "p" })],
  ["Get with a wrong API key", Code.Unauthenticated, () => clients.wrong.get({ id: ids.completed })],
  ["Cancel with Basic instead of Bearer", Code.Unauthenticated, () => clients.basic.cancel({ id: ids.running })],
  ["Watch without an API key", Code.Unauthenticated, () => collectEvents(clients.none, ids.completed)],
];

describe("hostile and malformed requests", () => {
  it.each(cases)("%s: should answer %s and write nothing", async (_name, code, call) => {
    const before = storeFingerprint();
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, "the call should fail").toBeInstanceOf(ConnectError);
    expect(Code[(error as ConnectError).code]).toBe(Code[code]);
    expect(storeFingerprint()).toBe(before);
  });

  it("should refuse a third open Watch of one key with RESOURCE_EXHAUSTED, free streams whose clients left, and write nothing", async () => {
    const before = storeFingerprint();
    const controller = new AbortController();
    const open = [0, 1].map(async () => {
      for await (const _ of clients.a.watch({ id: ids.running }, { signal: controller.signal })) void _;
    });
    await expect.poll(() => h.rookery.watchers()).toBe(2);
    const third = await collectEvents(clients.a, ids.running).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((third as ConnectError).code).toBe(Code.ResourceExhausted);
    const otherKey = clients.b.watch({ id: ids.otherKeys });
    expect((await otherKey[Symbol.asyncIterator]().next()).done).toBe(false);
    controller.abort();
    await Promise.allSettled(open);
    // Clients that went away free their streams on the server.
    await expect.poll(() => h.rookery.watchers()).toBe(0);
    expect(storeFingerprint()).toBe(before);
  });

  it("should List to each key only the tasks it submitted", async () => {
    const listed = async (client: TaskClient) => (await client.list({ pageSize: 100 })).tasks.map((t) => t.id).sort();
    expect(await listed(clients.a)).toEqual([ids.completed, ids.running, ids.paused].sort());
    expect(await listed(clients.b)).toEqual([ids.otherKeys]);
  });

  it("should keep reflection and health open without a key", async () => {
    const { Health } = await import("../../gen/health/v1/health_pb.js");
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${h.rookery.grpcPort}` }));
    expect((await health.check({ service: "" })).status).toBe(1);
    expect(await reflectedServices(`127.0.0.1:${h.rookery.grpcPort}`)).toContain("rookery.v1.TaskService");
  });

  it("should see a write in the store's fingerprint (a Cancel that succeeds changes it), so the checks above can fail", async () => {
    // A task that never finishes, so the Cancel cannot race its completion.
    const { task } = await clients.b.submit({ prompt: "hang" });
    const before = storeFingerprint();
    await clients.b.cancel({ id: task!.id });
    expect(storeFingerprint()).not.toBe(before);
  });
});

/** The services a gRPC server lists through reflection (v1), asked with no credentials. */
async function reflectedServices(address: string): Promise<string[]> {
  const definition = protoLoader.loadSync("grpc/reflection/v1/reflection.proto", {
    includeDirs: ["node_modules/@grpc/reflection/build/proto"],
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const { ServerReflection } = loaded.grpc.reflection.v1;
  const client = new ServerReflection(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    ServerReflectionInfo(): grpc.ClientDuplexStream<object, { listServicesResponse?: { service: { name: string }[] } }>;
  };
  try {
    const call = client.ServerReflectionInfo();
    const answer = new Promise<string[]>((resolve, reject) => {
      call.on("data", (r: { listServicesResponse?: { service: { name: string }[] } }) =>
        resolve(r.listServicesResponse?.service.map((s) => s.name) ?? []),
      );
      call.on("error", reject);
    });
    call.write({ listServices: "" });
    const names = await answer;
    call.end();
    return names;
  } finally {
    client.close();
  }
}
