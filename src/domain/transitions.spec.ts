import { describe, expect, it } from "vitest";
import { FailedPreconditionError, InvalidArgumentError, LeaseLostError } from "./errors.js";
import type { Task } from "./task.js";
import {
  allows,
  cancel,
  canTransition,
  checkpoint,
  claim,
  commitTransition,
  complete,
  createTask,
  passedDeadline,
  release,
  requireInput,
  resume,
  type Decide,
} from "./transitions.js";

const t0 = new Date("2026-01-01T00:00:00Z");
const apply = (task: Task, decide: Decide, now = t0) => commitTransition(task, decide, now).task;
const fresh = () => createTask({ prompt: "p", systemPrompt: "", maxIterations: 3, labels: {}, tools: [], owner: "" }, t0).task;
const progress = (task: Task, iterations: number) => ({
  iterations,
  usage: task.usage,
  checkpoint: {
    sessionId: "s",
    iteration: iterations,
    maxIterations: task.maxIterations,
    messages: [],
    initialPrompt: "p",
    systemPrompt: "",
    provider: "openai",
    model: "m",
    toolsEnabled: [],
    lastCheckpointAt: t0,
  },
  added: [],
});

describe("canTransition()", () => {
  it("should allow only the documented edges", () => {
    expect(canTransition("pending", "running")).toBe(true);
    expect(canTransition("pending", "completed")).toBe(false);
    expect(canTransition("completed", "running")).toBe(false);
    expect(canTransition("input_required", "pending")).toBe(true);
    expect(canTransition("cancelled", "cancelled")).toBe(false);
  });
});

describe("commitTransition()", () => {
  it("should advance the sequence by one and stamp the update time", () => {
    const later = new Date(t0.getTime() + 1000);
    const { task, event } = commitTransition(fresh(), claim("w", 1000), later);
    expect(task.sequence).toBe(2);
    expect(task.updatedAt).toEqual(later);
    expect(event).toMatchObject({ sequence: 2, status: "running", previousStatus: "pending", kind: "status_changed" });
    expect(event.task.lease).toBeUndefined();
  });
});

describe("claim()", () => {
  it("should refuse a running task whose lease has not expired", () => {
    const running = apply(fresh(), claim("w1", 1000));
    expect(() => apply(running, claim("w2", 1000), new Date(t0.getTime() + 999))).toThrow(FailedPreconditionError);
    expect(apply(running, claim("w2", 1000), new Date(t0.getTime() + 1000)).lease?.owner).toBe("w2");
  });
});

describe("fenced transitions", () => {
  it("should refuse a write whose lease token is not the task's", () => {
    const running = apply(fresh(), claim("w1", 1000, "token-1"));
    expect(() => apply(running, complete("token-2", "r", progress(running, 1)))).toThrow(LeaseLostError);
    expect(() => apply(running, release("token-2"))).toThrow(LeaseLostError);
    expect(apply(running, complete("token-1", "r", progress(running, 1)))).toMatchObject({ status: "completed", result: "r" });
  });
});

describe("cancel()", () => {
  it("should cancel pending, running and input_required tasks but not finished ones", () => {
    expect(apply(fresh(), cancel("")).error).toBe("cancelled by caller");
    const running = apply(fresh(), claim("w", 1000, "k"));
    expect(apply(running, cancel("stop"))).toMatchObject({ status: "cancelled", error: "stop" });
    expect(apply(running, cancel("stop")).lease).toBeUndefined();
    const paused = apply(running, requireInput("k", [{ id: "c", name: "t", arguments: "{}" }], progress(running, 1)));
    expect(apply(paused, cancel("")).status).toBe("cancelled");
    const done = apply(running, complete("k", "r", progress(fresh(), 1)));
    expect(() => apply(done, cancel("x"))).toThrow(FailedPreconditionError);
    expect(() => apply(apply(fresh(), cancel("")), cancel(""))).toThrow(/is cancelled and cannot be cancelled/);
  });
});

describe("the transition table", () => {
  it("should check an iteration_checkpointed event too: a checkpoint of a task that left RUNNING is refused", () => {
    const running = apply(fresh(), claim("w", 1000, "k"));
    const cancelled = apply(running, cancel(""));
    expect(() => apply(cancelled, checkpoint("k", progress(running, 1)))).toThrow(LeaseLostError);
    expect(commitTransition(running, checkpoint("k", progress(running, 1)), t0).event.kind).toBe("iteration_checkpointed");
  });

  it("should answer allows() from the same table commitTransition checks", () => {
    expect(allows("cancel", "running")).toBe(true);
    expect(allows("cancel", "completed")).toBe(false);
    expect(allows("resume", "pending")).toBe(false);
    expect(allows("claim", "input_required")).toBe(false);
  });
});

describe("passedDeadline()", () => {
  const later = (ms: number) => new Date(t0.getTime() + ms);
  const queued = () =>
    createTask(
      { prompt: "p", systemPrompt: "", maxIterations: 3, labels: {}, tools: [], owner: "", queueTimeoutMs: 1_000, timeoutMs: 5_000 },
      t0,
    ).task;

  it("should see a queue deadline pass while PENDING, and the deadline in any status", () => {
    expect(passedDeadline(queued(), later(999))).toBeUndefined();
    expect(passedDeadline(queued(), later(1_000))?.code).toBe("queue_timeout");
    expect(passedDeadline(queued(), later(5_000))?.code).toBe("timeout");
  });

  it("should judge a claimed task's queue deadline at the time of its claim, not later", () => {
    const inTime = apply(queued(), claim("w", 60_000), later(500));
    expect(passedDeadline(inTime, later(3_000))).toBeUndefined();
    const tooLate = apply(queued(), claim("w", 60_000), later(2_000)); // e.g. claimed on restart after a downtime
    expect(passedDeadline(tooLate, later(2_000))?.code).toBe("queue_timeout");
  });
});

describe("takeovers", () => {
  it("should count claims of a RUNNING task with an expired lease and reset when the run makes progress", () => {
    const running = apply(fresh(), claim("w1", 1000, "k1"));
    expect(running.takeovers).toBeUndefined();
    const later = (ms: number) => new Date(t0.getTime() + ms);
    const once = apply(running, claim("w2", 1000, "k2"), later(1000));
    const twice = apply(once, claim("w3", 1000, "k3"), later(2000));
    expect([once.takeovers, twice.takeovers]).toEqual([1, 2]);
    expect(apply(twice, checkpoint("k3", progress(twice, 1)), later(2500)).takeovers).toBeUndefined();
    expect(apply(twice, release("k3"), later(2500)).takeovers).toBeUndefined();
  });
});

describe("resume()", () => {
  const paused = (): Task => {
    const running = apply(fresh(), claim("w", 1000, "k"));
    return {
      ...running,
      status: "input_required",
      lease: undefined,
      checkpoint: progress(running, 1).checkpoint,
      iterations: 1,
      pendingToolCalls: [
        { id: "a", name: "t", arguments: "{}" },
        { id: "b", name: "t", arguments: "{}" },
      ],
    };
  };

  it("should append tool results in the order of the pending calls and go to pending", () => {
    const next = apply(
      paused(),
      resume({
        toolResults: [
          { toolCallId: "b", content: "B", isError: true },
          { toolCallId: "a", content: "A", isError: false },
        ],
      }),
    );
    expect(next.status).toBe("pending");
    expect(next.pendingToolCalls).toEqual([]);
    expect(next.checkpoint?.messages).toEqual([
      { role: "tool", toolCallId: "a", content: "A" },
      { role: "tool", toolCallId: "b", content: "error: B" },
    ]);
  });

  it("should list every unknown, duplicate and missing tool result", () => {
    const error = (() => {
      try {
        apply(
          paused(),
          resume({
            toolResults: [
              { toolCallId: "a", content: "", isError: false },
              { toolCallId: "a", content: "", isError: false },
              { toolCallId: "zz", content: "", isError: false },
            ],
          }),
        );
      } catch (e) {
        return e;
      }
    })() as InvalidArgumentError;
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.violations.map((v) => v.description)).toEqual([
      'duplicate result for "a"',
      'no pending tool call has id "zz"',
      "missing results for pending tool calls: b",
    ]);
  });

  it("should require additional_iterations when the task used all its iterations", () => {
    const exhausted = { ...paused(), status: "failed", pendingToolCalls: [], iterations: 3 } as Task;
    expect(() => apply(exhausted, resume({ toolResults: [] }))).toThrow(/additional_iterations/);
    expect(apply(exhausted, resume({ toolResults: [], additionalIterations: 2 })).maxIterations).toBe(5);
  });

  it("should refuse pending and running tasks with FAILED_PRECONDITION", () => {
    expect(() => apply(fresh(), resume({ toolResults: [] }))).toThrow(FailedPreconditionError);
    expect(() => apply(apply(fresh(), claim("w", 1000)), resume({ toolResults: [] }))).toThrow(FailedPreconditionError);
  });

  it("should keep the prompt of a task that never ran and carry the message as a follow-up", () => {
    const next = apply(apply(fresh(), cancel("")), resume({ toolResults: [], message: "more" }));
    expect(next).toMatchObject({ status: "pending", prompt: "p", followUps: ["more"] });
  });
});

describe("createTask()", () => {
  it("should give UUID v7 ids in the order the tasks were created, also within one millisecond", () => {
    const make = (at: Date) =>
      createTask({ prompt: "p", systemPrompt: "", maxIterations: 3, labels: {}, tools: [], owner: "" }, at).task.id;
    const sameMs = Array.from({ length: 300 }, () => make(t0));
    const later = [make(new Date(t0.getTime() + 1)), make(new Date(t0.getTime() + 60_000)), make(new Date(t0.getTime() + 86_400_000))];
    for (const id of [...sameMs, ...later]) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...later].sort()).toEqual(later);
    expect([...sameMs].sort()).toEqual(sameMs);
    expect(sameMs.at(-1)! < later[0]!).toBe(true);
    // 300 ids take the pool of random bytes past a refill; none repeats.
    expect(new Set(sameMs).size).toBe(sameMs.length);
  });
});
