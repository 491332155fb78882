// Agent loop scenarios: the real openai SDK, streaming, against FakeOpenAI,
// driven through a real server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { collectEvents, expectDense, startHarness, waitForStatus, type Harness } from "../support/harness.js";

describe("agent runs against an OpenAI-compatible server", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it("should complete a one-shot task with the streamed answer as result", async () => {
    h.fake.respond((c) => (c.prompt === "one-shot" ? { content: "The answer is 42." } : { content: "?" }));
    const { task } = await h.grpc.submit({ prompt: "one-shot", systemPrompt: "be brief" });
    const events = await collectEvents(h.grpc, task!.id);
    expect(events.map((e) => TaskStatus[e.status])).toEqual(["PENDING", "RUNNING", "COMPLETED"]);
    expectDense(events);
    const { task: done } = await h.grpc.get({ id: task!.id });
    expect(done).toMatchObject({ status: TaskStatus.COMPLETED, result: "The answer is 42.", iterations: 1 });
    expect(done!.usage?.totalTokens).toBe(15n);
    const [call] = h.fake.callsFor("one-shot");
    expect(call!.body.stream).toBe(true);
    expect(call!.body.messages[0]).toMatchObject({ role: "system", content: "be brief" });
  });

  it("should run 3 iterations using the server-side calculator tool and checkpoint each", async () => {
    h.fake.respond((c) => {
      if (c.prompt !== "compute") return { content: "?" };
      if (c.turn === 0) return { toolCalls: [{ name: "calculator", arguments: '{"expression":"6*7"}' }] };
      if (c.turn === 1) return { toolCalls: [{ name: "calculator", arguments: '{"expression":"42+1"}' }] };
      return { content: "43" };
    });
    const { task } = await h.grpc.submit({ prompt: "compute" });
    const events = await collectEvents(h.grpc, task!.id);
    expectDense(events);
    expect(events.map((e) => [TaskStatus[e.status], e.iterations])).toEqual([
      ["PENDING", 0],
      ["RUNNING", 0],
      ["RUNNING", 1],
      ["RUNNING", 2],
      ["COMPLETED", 3],
    ]);
    const calls = h.fake.callsFor("compute");
    expect(calls).toHaveLength(3);
    const toolMessages = calls[2]!.body.messages.filter((m) => m.role === "tool").map((m) => m.content);
    expect(toolMessages).toEqual(["42", "43"]);
    // Each call sends the whole conversation so far: the previous call's messages, unchanged, then the new ones.
    expect(calls[1]!.body.messages.slice(0, calls[0]!.body.messages.length)).toEqual(calls[0]!.body.messages);
    expect(calls[2]!.body.messages.slice(0, calls[1]!.body.messages.length)).toEqual(calls[1]!.body.messages);
    expect(calls[2]!.body.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant", "tool"]);
    const { task: done } = await h.grpc.get({ id: task!.id });
    expect(done!.checkpoint?.iteration).toBe(3);
    expect(done!.checkpoint?.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant", "tool", "assistant"]);
    expect(calls[0]!.body.tools?.map((t) => t.function.name)).toEqual(["current_time", "calculator"]);
  });

  it("should pause in INPUT_REQUIRED on a client-declared tool and continue after Resume with its result", async () => {
    h.fake.respond((c) => {
      if (c.prompt !== "weather?") return { content: "?" };
      if (c.turn === 0) return { toolCalls: [{ id: "call_w", name: "get_weather", arguments: '{"city":"Oslo"}' }] };
      return { content: `It is ${c.body.messages.find((m) => m.role === "tool")?.content}` };
    });
    const { task } = await h.grpc.submit({
      prompt: "weather?",
      tools: [
        { name: "get_weather", description: "weather in a city", parameters: { type: "object", properties: { city: { type: "string" } } } },
      ],
    });
    await waitForStatus(h.grpc, task!.id, TaskStatus.INPUT_REQUIRED);
    const { task: paused } = await h.grpc.get({ id: task!.id });
    expect(paused!.pendingToolCalls).toEqual([
      expect.objectContaining({ id: "call_w", name: "get_weather", arguments: '{"city":"Oslo"}' }),
    ]);
    expect(h.fake.callsFor("weather?")[0]!.body.tools?.map((t) => t.function.name)).toContain("get_weather");

    const { task: resumed } = await h.grpc.resume({ id: task!.id, toolResults: [{ toolCallId: "call_w", content: "sunny" }] });
    const events = await collectEvents(h.grpc, task!.id, resumed!.lastEventSequence);
    expectDense(events, resumed!.lastEventSequence + 1n);
    const { task: done } = await h.grpc.get({ id: task!.id });
    expect(done).toMatchObject({ status: TaskStatus.COMPLETED, result: "It is sunny", iterations: 2 });
    expect(done!.pendingToolCalls).toEqual([]);
  });

  it("should fail at max_iterations with a clear error and continue after Resume with additional_iterations", async () => {
    h.fake.respond((c) => {
      if (c.prompt !== "loop") return { content: "?" };
      return c.turn < 3 ? { toolCalls: [{ name: "current_time", arguments: "{}" }] } : { content: "finally" };
    });
    const { task } = await h.grpc.submit({ prompt: "loop", maxIterations: 2 });
    await waitForStatus(h.grpc, task!.id, TaskStatus.FAILED);
    const { task: failed } = await h.grpc.get({ id: task!.id });
    expect(failed!.error).toMatch(/max_iterations \(2\).*additional_iterations/);
    expect(failed!.iterations).toBe(2);

    const { task: resumed } = await h.grpc.resume({ id: task!.id, additionalIterations: 3 });
    expect(resumed!.status).toBe(TaskStatus.PENDING);
    const after = await collectEvents(h.grpc, task!.id, resumed!.lastEventSequence);
    expect(after.map((e) => TaskStatus[e.status])).toEqual(["RUNNING", "RUNNING", "COMPLETED"]);
    expectDense(after, resumed!.lastEventSequence + 1n);
    const { task: done } = await h.grpc.get({ id: task!.id });
    expect(done).toMatchObject({ status: TaskStatus.COMPLETED, result: "finally", iterations: 4, maxIterations: 5 });
    expect(h.fake.callsFor("loop").map((c) => c.turn)).toEqual([0, 1, 2, 3]);
  });

  it("should retry a 429 from the provider and then complete", async () => {
    let attempts = 0;
    h.fake.respond((c) => {
      if (c.prompt !== "busy") return { content: "?" };
      attempts += 1;
      return attempts === 1 ? { status: 429, headers: { "retry-after-ms": "20" } } : { content: "ok after retry" };
    });
    const { task } = await h.grpc.submit({ prompt: "busy" });
    await collectEvents(h.grpc, task!.id);
    const { task: done } = await h.grpc.get({ id: task!.id });
    expect(done).toMatchObject({ status: TaskStatus.COMPLETED, result: "ok after retry", iterations: 1 });
    expect(attempts).toBe(2);
  });

  it("should abort a hanging model call on Cancel and record CANCELLED", async () => {
    h.fake.respond((c) => (c.prompt === "hang" ? { hang: true } : { content: "?" }));
    const { task } = await h.grpc.submit({ prompt: "hang" });
    await h.fake.waitForCall((c) => c.prompt === "hang");
    const { task: cancelled } = await h.grpc.cancel({ id: task!.id, reason: "user gave up" });
    expect(cancelled).toMatchObject({ status: TaskStatus.CANCELLED, error: "user gave up" });
    await expect.poll(() => h.rookery.supervisor.running).toBe(0);
    const events = await collectEvents(h.grpc, task!.id);
    expect(events.map((e) => TaskStatus[e.status])).toEqual(["PENDING", "RUNNING", "CANCELLED"]);
    expect(h.fake.callsFor("hang")).toHaveLength(1);
  });

  it("should fail a task with an error that says how to configure a provider when no API key is set", async () => {
    const bare = await startHarness({ OPENAI_API_KEY: "" }, h.fake);
    try {
      const { task } = await bare.grpc.submit({ prompt: "no key" });
      await waitForStatus(bare.grpc, task!.id, TaskStatus.FAILED);
      const { task: failed } = await bare.grpc.get({ id: task!.id });
      expect(failed!.error).toMatch(/no API key for provider "openai": set OPENAI_API_KEY/);
    } finally {
      await bare.close();
    }
  });
});
