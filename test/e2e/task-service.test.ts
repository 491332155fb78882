// Every RPC and every error code, through real sockets, identically on both
// listeners: grpc-js (native gRPC, raw @grpc/grpc-js client) and connect-node
// (Connect protocol, JSON over HTTP/1.1).
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { grpcJsTaskClient } from "../support/grpc-js-client.js";
import { collectEvents, expectDense, startHarness, waitForStatus, type Harness, type TaskClient } from "../support/harness.js";

let h: Harness;
let grpcJs: ReturnType<typeof grpcJsTaskClient>;
beforeAll(async () => {
  h = await startHarness();
  grpcJs = grpcJsTaskClient(`127.0.0.1:${h.rookery.grpcPort}`);
  h.fake.respond((c) => {
    if (c.prompt.startsWith("hang")) return { hang: true };
    if (c.prompt.startsWith("three"))
      return c.turn < 2 ? { toolCalls: [{ name: "current_time", arguments: "{}" }] } : { content: "three done" };
    return { content: `echo: ${c.prompt}` };
  });
});
afterAll(async () => {
  grpcJs.close();
  await h.close();
});

async function rpcError(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "the call should have failed").toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

const MISSING = "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10";

const listeners: [string, () => TaskClient][] = [
  ["grpc-js listener, @grpc/grpc-js client", () => grpcJs],
  ["connect-node listener, Connect JSON over HTTP/1.1", () => h.connect],
];

describe.each(listeners)("TaskService on the %s", (name, clientOf) => {
  const tag = name.split(" ")[0];

  it("should Submit a task that Get returns and that completes", async () => {
    const client = clientOf();
    const { task } = await client.submit({ prompt: `hello ${tag}`, labels: { suite: "e2e" }, model: "m1" });
    expect(task).toMatchObject({
      prompt: `hello ${tag}`,
      status: TaskStatus.PENDING,
      model: "m1",
      provider: "openai",
      labels: { suite: "e2e" },
    });
    expect(task!.id).toMatch(/^[0-9a-f-]{36}$/);
    const events = await collectEvents(client, task!.id);
    expect(events[0]).toMatchObject({ sequence: 1n, status: TaskStatus.PENDING });
    const { task: got } = await client.get({ id: task!.id });
    expect(got).toMatchObject({ id: task!.id, status: TaskStatus.COMPLETED, result: `echo: hello ${tag}`, iterations: 1 });
    expect(got!.checkpoint?.messages.at(-1)).toMatchObject({ role: "assistant", content: `echo: hello ${tag}` });
  });

  it("should Watch from 0 and from a middle sequence with dense, identical events", async () => {
    const client = clientOf();
    const { task } = await client.submit({ prompt: `three ${tag}` });
    const all = await collectEvents(client, task!.id);
    expectDense(all);
    expect(all.map((e) => TaskStatus[e.status])).toEqual(["PENDING", "RUNNING", "RUNNING", "RUNNING", "COMPLETED"]);
    const tail = await collectEvents(client, task!.id, 2n);
    expect(tail.map((e) => e.sequence)).toEqual([3n, 4n, 5n]);
    expect(tail.map((e) => e.task?.iterations)).toEqual([1, 2, 3]);
    expect(await collectEvents(client, task!.id, 5n)).toEqual([]);
  });

  it("should give two concurrent watchers the identical sequence of events", async () => {
    const client = clientOf();
    const { task } = await client.submit({ prompt: `three concurrent ${tag}` });
    const [a, b] = await Promise.all([collectEvents(client, task!.id), collectEvents(client, task!.id)]);
    expectDense(a);
    expect(b.map((e) => [e.sequence, e.status])).toEqual(a.map((e) => [e.sequence, e.status]));
    expect(a.at(-1)?.status).toBe(TaskStatus.COMPLETED);
  });

  it("should create one task for 20 concurrent Submits with the same request_id", async () => {
    const client = clientOf();
    const requestId = `idem-${tag}`;
    const responses = await Promise.all(Array.from({ length: 20 }, () => client.submit({ prompt: "idempotent", requestId })));
    expect(new Set(responses.map((r) => r.task!.id)).size).toBe(1);
    const listed = await client.list({ pageSize: 1000 });
    expect(listed.tasks.filter((t) => t.requestId === requestId)).toHaveLength(1);
  });

  it("should List newest first in pages, filtered by status and labels", async () => {
    const client = clientOf();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.submit({ prompt: `list ${i}`, labels: { batch: `list-${tag}` } })).task!.id);
    await Promise.all(ids.map((id) => collectEvents(client, id)));
    const first = await client.list({ pageSize: 3, labels: { batch: `list-${tag}` }, statuses: [TaskStatus.COMPLETED] });
    expect(first.tasks).toHaveLength(3);
    expect(first.nextPageToken).not.toBe("");
    const second = await client.list({
      pageSize: 3,
      pageToken: first.nextPageToken,
      labels: { batch: `list-${tag}` },
      statuses: [TaskStatus.COMPLETED],
    });
    expect(second.nextPageToken).toBe("");
    expect([...first.tasks, ...second.tasks].map((t) => t.id)).toEqual([...ids].reverse());
    expect(first.tasks[0]!.checkpoint).toBeUndefined();
    const none = await client.list({ labels: { batch: `list-${tag}` }, statuses: [TaskStatus.RUNNING] });
    expect(none.tasks).toEqual([]);
  });

  it("should Cancel a running task and refuse to Resume a running one with FAILED_PRECONDITION", async () => {
    const client = clientOf();
    const { task } = await client.submit({ prompt: `hang ${tag}` });
    await waitForStatus(client, task!.id, TaskStatus.RUNNING);
    const resumeRunning = await rpcError(client.resume({ id: task!.id, message: "more" }));
    expect(resumeRunning.code).toBe(Code.FailedPrecondition);
    expect(resumeRunning.rawMessage).toMatch(/is running; only input_required, completed, failed or cancelled/);
    const { task: cancelled } = await client.cancel({ id: task!.id });
    expect(cancelled!.status).toBe(TaskStatus.CANCELLED);
    const again = await client.cancel({ id: task!.id });
    expect(again.task!.status).toBe(TaskStatus.CANCELLED);
    const events = await collectEvents(client, task!.id);
    expect(events.at(-1)).toMatchObject({ status: TaskStatus.CANCELLED, previousStatus: TaskStatus.RUNNING });
  });

  it("should Resume a completed task with a follow-up message", async () => {
    const client = clientOf();
    const { task } = await client.submit({ prompt: `follow ${tag}` });
    await collectEvents(client, task!.id);
    const { task: resumed } = await client.resume({ id: task!.id, message: "and then?" });
    expect(resumed!.status).toBe(TaskStatus.PENDING);
    expect(resumed!.result).toBeUndefined();
    const after = await collectEvents(client, task!.id, resumed!.lastEventSequence);
    expect(after.at(-1)?.status).toBe(TaskStatus.COMPLETED);
    const { task: done } = await client.get({ id: task!.id });
    expect(done!.iterations).toBe(2);
    expect(done!.checkpoint?.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });

  it("should answer INVALID_ARGUMENT naming the field, with google.rpc.BadRequest details", async () => {
    const error = await rpcError(clientOf().submit({ prompt: "  " }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("prompt: is required");
    expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations).toEqual([
      expect.objectContaining({ field: "prompt", description: "is required" }),
    ]);
    const badId = await rpcError(clientOf().get({ id: "not-a-uuid" }));
    expect(badId.code).toBe(Code.InvalidArgument);
    expect(badId.rawMessage).toBe("id: must be a task id (a UUID)");
  });

  it("should answer NOT_FOUND for an unknown task on Get, Watch, Resume and Cancel", async () => {
    const client = clientOf();
    for (const call of [
      client.get({ id: MISSING }),
      collectEvents(client, MISSING),
      client.resume({ id: MISSING, message: "x" }),
      client.cancel({ id: MISSING }),
    ]) {
      const error = await rpcError(call);
      expect(error.code).toBe(Code.NotFound);
      expect(error.rawMessage).toBe(`task ${MISSING} not found`);
    }
  });

  it("should answer ALREADY_EXISTS when a request_id is reused for a different prompt", async () => {
    const client = clientOf();
    const { task } = await client.submit({ prompt: "original", requestId: `reuse-${tag}` });
    const error = await rpcError(client.submit({ prompt: "different", requestId: `reuse-${tag}` }));
    expect(error.code).toBe(Code.AlreadyExists);
    expect(error.rawMessage).toContain(task!.id);
  });

  it("should end a Watch at its deadline with DEADLINE_EXCEEDED", async () => {
    const client = clientOf();
    const { task } = await client.submit({ prompt: `hang deadline ${tag}` });
    const error = await rpcError(
      (async () => {
        for await (const _ of client.watch({ id: task!.id, afterSequence: 0n }, { timeoutMs: 300 })) void _;
      })(),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    await client.cancel({ id: task!.id });
  });
});

describe("the HTTP listener over h2c (HTTP/2 without TLS)", () => {
  it.each([
    ["gRPC", () => createGrpcTransport({ baseUrl: `http://127.0.0.1:${h.rookery.httpPort}` })],
    ["the Connect protocol", () => createConnectTransport({ baseUrl: `http://127.0.0.1:${h.rookery.httpPort}`, httpVersion: "2" })],
  ])("should serve %s for many calls, sequential and concurrent, on one connection", async (_name, transport) => {
    const client = createClient(TaskService, transport());
    const first = await client.submit({ prompt: "over h2c" });
    for (let i = 0; i < 3; i++) expect((await client.get({ id: first.task!.id })).task?.prompt).toBe("over h2c");
    const many = await Promise.all(Array.from({ length: 50 }, () => client.get({ id: first.task!.id })));
    expect(many.every((r) => r.task?.id === first.task!.id)).toBe(true);
    const events = await collectEvents(client, first.task!.id);
    expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
  });
});

describe("both listeners", () => {
  it("should answer the same code and message for the same bad request", async () => {
    const cases = [
      (c: TaskClient) => c.submit({ prompt: "" }),
      (c: TaskClient) => c.submit({ prompt: "x", labels: { "Bad Key": "v" } }),
      (c: TaskClient) => c.list({ pageSize: -1 }),
      (c: TaskClient) => c.list({ pageToken: "garbage" }),
      (c: TaskClient) => c.get({ id: MISSING }),
      (c: TaskClient) => c.resume({ id: MISSING, additionalIterations: 0 }),
    ];
    for (const make of cases) {
      const [a, b] = await Promise.all([rpcError(make(grpcJs)), rpcError(make(h.connect))]);
      expect([b.code, b.rawMessage]).toEqual([a.code, a.rawMessage]);
    }
  });
});
