// Provider faults through the real openai SDK: retried with capped, jittered
// backoff, then FAILED with an error that says what happened; the checkpoint
// stays intact and Resume continues the task.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import type { FakeReply } from "../support/fake-openai.js";
import { collectEvents, startHarness, waitForStatus, type Harness } from "../support/harness.js";

describe("provider faults", () => {
  let h: Harness;
  const scripts = new Map<string, (attempt: number, turn: number) => FakeReply>();
  const attempts = new Map<string, number>();
  /** When each attempt of a prompt reached the provider. */
  const arrivals = new Map<string, number[]>();
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_MODEL_MAX_RETRIES: "2", ROOKERY_MODEL_TIMEOUT_MS: "1500" });
    h.fake.respond((c) => {
      const n = (attempts.get(c.prompt) ?? 0) + 1;
      attempts.set(c.prompt, n);
      arrivals.set(c.prompt, [...(arrivals.get(c.prompt) ?? []), Date.now()]);
      return scripts.get(c.prompt)?.(n, c.turn) ?? { content: "?" };
    });
  });
  afterAll(async () => {
    await h.close();
  });

  const run = async (prompt: string, script: (attempt: number, turn: number) => FakeReply) => {
    scripts.set(prompt, script);
    const { task } = await h.grpc.submit({ prompt });
    await collectEvents(h.grpc, task!.id);
    return (await h.grpc.get({ id: task!.id })).task!;
  };

  it("should wait out a 429 with Retry-After and then complete", async () => {
    const task = await run("429", (n) => (n === 1 ? { status: 429, headers: { "retry-after": "1" } } : { content: "after 429" }));
    expect(task).toMatchObject({ status: TaskStatus.COMPLETED, result: "after 429" });
    expect(attempts.get("429")).toBe(2);
    // The second attempt came no sooner than the second Retry-After asked for (less a little clock skew).
    const [first, second] = arrivals.get("429")!;
    expect(second! - first!).toBeGreaterThanOrEqual(950);
  });

  it("should retry 500s and a reset connection, then complete", async () => {
    const task = await run("flaky", (n) => (n === 1 ? { status: 500 } : n === 2 ? { reset: true } : { content: "recovered" }));
    expect(task).toMatchObject({ status: TaskStatus.COMPLETED, result: "recovered" });
    expect(attempts.get("flaky")).toBe(3);
  });

  it("should retry a malformed streamed response, then complete", async () => {
    const task = await run("garbled", (n) => (n === 1 ? { malformed: true } : { content: "readable now" }));
    expect(task).toMatchObject({ status: TaskStatus.COMPLETED, result: "readable now" });
    expect(attempts.get("garbled")).toBe(2);
  });

  it("should FAIL after the retries with an error naming the status, keep the checkpoint, and Resume to completion", async () => {
    let healthy = false;
    const task = await run("down", (_n, turn) => {
      if (turn === 0) return { toolCalls: [{ name: "current_time", arguments: "{}" }] };
      return healthy ? { content: "back up" } : { status: 503, error: "overloaded" };
    });
    expect(task.status).toBe(TaskStatus.FAILED);
    expect(task.error).toMatch(/HTTP 503.*overloaded/);
    expect(attempts.get("down")).toBe(1 + 3); // turn 0 once, then 1 + 2 retries of turn 1
    expect(task.iterations).toBe(1);
    expect(task.checkpoint?.iteration).toBe(1);

    healthy = true;
    const { task: resumed } = await h.grpc.resume({ id: task.id });
    await collectEvents(h.grpc, task.id, resumed!.lastEventSequence);
    const done = (await h.grpc.get({ id: task.id })).task!;
    expect(done).toMatchObject({ status: TaskStatus.COMPLETED, result: "back up", iterations: 2 });
  });

  it("should not follow a provider's redirect: the task FAILS saying so, and the address redirected to gets no request", async () => {
    let elsewhereRequests = 0;
    const elsewhere = createServer((_req, res) => {
      elsewhereRequests += 1;
      res.end();
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
    const { port } = elsewhere.address() as AddressInfo;
    try {
      const task = await run("redirect", () => ({ status: 307, headers: { location: `http://127.0.0.1:${port}/v1/chat/completions` } }));
      expect(task.status).toBe(TaskStatus.FAILED);
      expect(task.error).toMatch(/answered with a redirect \(HTTP 307\), which Rookery does not follow/);
      expect(elsewhereRequests).toBe(0);
    } finally {
      elsewhere.close();
    }
  });

  it("should FAIL a call that hangs past its timeout on every attempt, saying it timed out", async () => {
    const task = await run("stuck", () => ({ hang: true }));
    expect(task.status).toBe(TaskStatus.FAILED);
    expect(task.error).toMatch(/timed out/);
    expect(attempts.get("stuck")).toBe(3);
  });

  it("should FAIL after malformed responses on every attempt, saying so", async () => {
    const task = await run("always garbled", () => ({ malformed: true }));
    expect(task.status).toBe(TaskStatus.FAILED);
    expect(task.error).toMatch(/malformed response/);
    expect(attempts.get("always garbled")).toBe(3);
  });

  it("should keep Watch and the task state intact while a call is being retried", async () => {
    scripts.set("slow retry", (n) => (n < 3 ? { status: 500 } : { content: "fine" }));
    const { task } = await h.grpc.submit({ prompt: "slow retry" });
    await waitForStatus(h.grpc, task!.id, TaskStatus.RUNNING);
    expect((await h.grpc.get({ id: task!.id })).task!.status).toBe(TaskStatus.RUNNING);
    const events = await collectEvents(h.grpc, task!.id);
    expect(events.map((e) => TaskStatus[e.status])).toEqual(["PENDING", "RUNNING", "COMPLETED"]);
  });
});
