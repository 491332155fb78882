// A provider's reply is untrusted input: nothing it sends may take the server
// down. Odd or hostile streams fail the task with a clear error, the process
// stays up, and a task whose runs keep dying is failed instead of claimed forever.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskErrorCode, TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { childServersOnOneFile } from "../support/child-server.js";
import type { FakeOpenAI, FakeReply } from "../support/fake-openai.js";
import { collectEvents, expectDense, startHarness, type Harness } from "../support/harness.js";

const chunk = (choices: unknown, extra: object = {}) => ({
  id: "c",
  object: "chat.completion.chunk",
  created: 1,
  model: "m",
  choices,
  ...extra,
});
const NO_CHOICES: FakeReply = {
  chunks: [chunk([]), chunk([], { usage: { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 } })],
};

describe("a provider that sends no choices", () => {
  const servers = childServersOnOneFile("hostile-provider", { ROOKERY_MODEL_MAX_RETRIES: "1" });
  const { start } = servers;
  let fake: FakeOpenAI;
  beforeAll(async () => {
    await servers.setUp();
    fake = servers.fake;
  });
  afterAll(() => servers.tearDown());

  it("should fail the task with a clear error and keep the server process running", async () => {
    fake.respond((c) => (c.prompt === "no choices" ? NO_CHOICES : { content: "fine" }));
    const server = await start();
    const { task } = await server.client.submit({ prompt: "no choices" });
    expectDense(await collectEvents(server.client, task!.id));
    const { task: failed } = await server.client.get({ id: task!.id });
    expect(failed?.status).toBe(TaskStatus.FAILED);
    expect(failed?.error).toMatch(/malformed response: the stream ended without any choice/);
    expect(fake.callsFor("no choices")).toHaveLength(2); // retried once, like any malformed reply

    // Still alive and serving: the next task completes on the same process.
    const { task: next } = await server.client.submit({ prompt: "after that" });
    await collectEvents(server.client, next!.id);
    expect((await server.client.get({ id: next!.id })).task?.status).toBe(TaskStatus.COMPLETED);
    expect(server.process.exitCode).toBeNull();
    // Each Submit got a log line naming its task and key (auth is off: the key is ""); lines are written in blocks.
    await expect
      .poll(() => server.logs.join("\n"), { timeout: 10_000 })
      .toContain(`"method":"submit","taskId":"${next!.id}","key":"","msg":"submit done"`);
    server.process.kill("SIGKILL");
    await server.exited;
  });

  it("should FAIL a task whose run was taken over from a dead holder ROOKERY_MAX_TAKEOVERS times in a row", async () => {
    fake.respond((c) => (c.prompt === "kills its server" ? { content: "boom" } : { content: "?" }));
    // Each process dies right after the model answers: a reply that kills its server, every time.
    const crashing = { ROOKERY_LEASE_MS: "1000", ROOKERY_TEST_CRASH_AT: "agent_loop.after_model_answer", ROOKERY_MAX_TAKEOVERS: "2" };
    const first = await start(crashing);
    const { task } = await first.client.submit({ prompt: "kills its server" });
    expect(await first.exited).toBe("SIGKILL");
    const second = await start(crashing); // takeover 1: runs, dies again
    expect(await second.exited).toBe("SIGKILL");
    const third = await start(crashing); // takeover 2: the limit; failed without a model call
    const events = await collectEvents(third.client, task!.id);
    expectDense(events);
    const { task: failed } = await third.client.get({ id: task!.id });
    expect(failed?.status).toBe(TaskStatus.FAILED);
    expect(failed?.error).toMatch(/taken over 2 times in a row .*ROOKERY_MAX_TAKEOVERS=2.*Resume/);
    expect(fake.callsFor("kills its server")).toHaveLength(2);
    expect(third.process.exitCode).toBeNull();
  });
});

describe("odd and hostile streamed replies", () => {
  let h: Harness;
  /** Each prompt's replies, by turn. */
  const replies = new Map<string, FakeReply[]>();
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_MODEL_MAX_RETRIES: "0", ROOKERY_MAX_REPLY_BYTES: "1000" });
    h.fake.respond((c) => replies.get(c.prompt)?.[c.turn] ?? { content: "?" });
  });
  afterAll(async () => {
    await h.close();
  });

  const runWithEvents = async (prompt: string, ...turns: FakeReply[]) => {
    replies.set(prompt, turns);
    const { task } = await h.grpc.submit({ prompt });
    const events = await collectEvents(h.grpc, task!.id);
    return { task: (await h.grpc.get({ id: task!.id })).task!, events };
  };
  const run = async (prompt: string, reply: FakeReply) => (await runWithEvents(prompt, reply)).task;

  const failures: [string, unknown[], RegExp][] = [
    ["a chunk that is not an object", ["text"], /a chunk is not a JSON object/],
    ["choices that are not an array", [chunk({ 0: {} })], /`choices` is not an array/],
    ["content that is not a string", [chunk([{ index: 0, delta: { content: 42 } }])], /`delta.content` is not a string/],
    [
      "a tool call index far out of range",
      [chunk([{ index: 0, delta: { tool_calls: [{ index: 1e9, id: "a", function: { name: "x" } }] } }])],
      /tool call index/,
    ],
    [
      "a tool call without an id",
      [chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: "calculator", arguments: "{}" } }] } }])],
      /tool call 0 has no id/,
    ],
    [
      "two tool calls under one id",
      [
        chunk([
          {
            index: 0,
            delta: {
              tool_calls: [
                { index: 0, id: "same", function: { name: "calculator", arguments: '{"expression":"1+1"}' } },
                { index: 1, id: "same", function: { name: "calculator", arguments: '{"expression":"2+2"}' } },
              ],
            },
          },
        ]),
      ],
      /two tool calls have the id "same"/,
    ],
    [
      "tool arguments that are not a string",
      [chunk([{ index: 0, delta: { tool_calls: [{ index: 0, id: "a", function: { name: "x", arguments: {} } }] } }])],
      /arguments are not a string/,
    ],
    [
      "a reply past ROOKERY_MAX_REPLY_BYTES",
      [chunk([{ index: 0, delta: { content: "x".repeat(600) } }]), chunk([{ index: 0, delta: { content: "y".repeat(600) } }])],
      /passed 1000 bytes \(ROOKERY_MAX_REPLY_BYTES\)/,
    ],
  ];
  it.each(failures)("should fail the task, not the server, on %s", async (what, chunks, error) => {
    const task = await run(what, { chunks });
    expect(task.status).toBe(TaskStatus.FAILED);
    expect(task.error).toMatch(error);
    expect(task.result).toBeUndefined();
  });

  it("should call a tool by its own name when the provider repeats the call's id and name in every chunk", async () => {
    // As some OpenAI-compatible providers do (and others send an empty name after the first):
    // appending them made "calculatorcalculator", an unknown tool.
    const piece = (id: string, name: string, args: string) =>
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: args } }] } }]);
    const { task, events } = await runWithEvents(
      "repeated tool name",
      { chunks: [piece("call_1", "calculator", '{"expression":'), piece("call_1", "calculator", '"6*7"}'), piece("", "", "")] },
      { content: "It is 42." },
    );
    expect(task).toMatchObject({ status: TaskStatus.COMPLETED, result: "It is 42." });
    const added = events.flatMap((e) => e.messages);
    const assistant = added.find((m) => m.toolCalls.length > 0);
    expect(assistant?.toolCalls.map((c) => [c.id, c.name, c.arguments])).toEqual([["call_1", "calculator", '{"expression":"6*7"}']]);
    expect(added.find((m) => m.role === "tool")).toMatchObject({ toolCallId: "call_1", content: expect.stringContaining("42") });
  });

  it("should read a reply whose usage fields are garbage as zero tokens and complete", async () => {
    const task = await run("garbage usage", {
      chunks: [
        chunk([{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: "stop" }]),
        chunk([], { usage: { prompt_tokens: "many", total_tokens: -5 } }),
      ],
    });
    expect(task).toMatchObject({ status: TaskStatus.COMPLETED, result: "ok" });
    expect(task.usage?.totalTokens).toBe(0n);
  });
});

describe("a provider whose reply stalls after it started", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_MODEL_MAX_RETRIES: "1", ROOKERY_MODEL_TIMEOUT_MS: "500" });
    // Headers and one piece, then nothing: the SDK's own timeout has ended by then.
    h.fake.respond(() => ({ content: "never finished", pieceSize: 5, pauseAt: 1, resume: new Promise(() => undefined) }));
  });
  afterAll(async () => {
    await h.close();
  });

  it("should retry the call once, then fail the task with PROVIDER_ERROR saying it stalled, instead of running for good", async () => {
    const { task } = await h.grpc.submit({ prompt: "stalls" });
    await collectEvents(h.grpc, task!.id);
    const failed = (await h.grpc.get({ id: task!.id })).task!;
    expect(failed).toMatchObject({ status: TaskStatus.FAILED, errorCode: TaskErrorCode.PROVIDER_ERROR });
    expect(failed.error).toMatch(/stalled: no chunk of its reply for 500 ms/);
    expect(h.fake.callsFor("stalls")).toHaveLength(2);
  });
});

describe("a provider that keeps its reply, or its error reply, coming without ever ending it", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_MODEL_MAX_RETRIES: "0", ROOKERY_MODEL_TIMEOUT_MS: "500", ROOKERY_MAX_REPLY_MS: "2000" });
    // A chunk that adds nothing, every 100 ms: never a stall, never a byte of reply, never an end.
    h.fake.respond(() => ({ keepAlive: chunk([{ index: 0, delta: {} }]), everyMs: 100 }));
  });
  afterAll(async () => {
    await h.close();
  });

  it("should stop the call after ROOKERY_MAX_REPLY_MS and fail the task with PROVIDER_ERROR saying so, instead of running for good", async () => {
    const { task } = await h.grpc.submit({ prompt: "keeps alive" });
    await collectEvents(h.grpc, task!.id);
    const failed = (await h.grpc.get({ id: task!.id })).task!;
    expect(failed).toMatchObject({ status: TaskStatus.FAILED, errorCode: TaskErrorCode.PROVIDER_ERROR });
    expect(failed.error).toMatch(/did not finish within 2000 ms \(ROOKERY_MAX_REPLY_MS\); it was stopped/);
    await h.fake.waitForAbort((c) => c.prompt === "keeps alive");
  });

  it("should stop reading an error reply whose body never ends after ROOKERY_MODEL_TIMEOUT_MS, and fail the task with its status", async () => {
    h.fake.respond(() => ({ errorStatus: 400, everyMs: 100 }));
    const { task } = await h.grpc.submit({ prompt: "endless error" });
    await collectEvents(h.grpc, task!.id);
    const failed = (await h.grpc.get({ id: task!.id })).task!;
    expect(failed).toMatchObject({ status: TaskStatus.FAILED, errorCode: TaskErrorCode.PROVIDER_REFUSED });
    expect(failed.error).toMatch(/failed with HTTP 400: .*error reply did not end within 500 ms/);
    await h.fake.waitForAbort((c) => c.prompt === "endless error");
  });
});
