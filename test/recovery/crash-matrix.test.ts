// SIGKILL at each step of a task's life, then restart on the same data file:
// every acknowledged task reaches a terminal state, no iteration is committed
// twice, and event sequences stay dense. The crash is placed exactly, by the
// ROOKERY_TEST_CRASH_AT hook (src/hooks.ts, src/testing/crash-points.ts) or, for a model call
// in flight, by killing the process when the fake provider receives the call.
import type { HookPoint } from "../../src/hooks.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskEventKind, TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { startChildServer, type ChildServer } from "../support/child-server.js";
import { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, expectDense, waitForStatus, type TaskClient } from "../support/harness.js";

type Point =
  "before_claim" | "after_claim" | "during_model_call" | "after_model_answer" | "after_checkpoint" | "during_tool_call" | "during_cancel";

/** Where each step of the matrix crashes (src/hooks.ts); a model call is crashed from outside. */
const HOOK_POINT: Record<Point, HookPoint | undefined> = {
  before_claim: "supervisor.before_claim",
  after_claim: "supervisor.after_claim",
  during_model_call: undefined,
  after_model_answer: "agent_loop.after_model_answer",
  after_checkpoint: "supervisor.after_checkpoint",
  during_tool_call: "tool_registry.before_tool_run",
  during_cancel: "task_service.after_cancel_commit",
};

describe("crash matrix", () => {
  let fake: FakeOpenAI;
  let root: string;
  const hangOnce = new Set<string>();

  beforeAll(async () => {
    fake = await FakeOpenAI.start();
    root = mkdtempSync(join(tmpdir(), "rookery-crash-"));
    fake.respond((c) => {
      if (c.prompt === "crash during_cancel") return { hang: true };
      if (c.turn === 1 && hangOnce.delete(c.prompt)) return { hang: true };
      return c.turn === 0 ? { toolCalls: [{ name: "calculator", arguments: '{"expression":"20+22"}' }] } : { content: "survived" };
    });
  });
  afterAll(async () => {
    await fake.close();
    rmSync(root, { recursive: true, force: true });
  });

  const server = (point: Point, crash: boolean): Promise<ChildServer> =>
    startChildServer({
      ROOKERY_SQLITE_PATH: join(root, `${point}.db`),
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_API_KEY: "test-key",
      ROOKERY_LEASE_MS: "1000",
      ROOKERY_POLL_MS: "50",
      ROOKERY_WATCH_POLL_MS: "50",
      ...(crash ? { ROOKERY_TEST_CRASH_AT: HOOK_POINT[point]! } : {}),
    });

  /** Drives the task until the first server dies; returns the task id if the Submit was acknowledged. */
  async function untilCrash(point: Point, first: ChildServer, prompt: string): Promise<string | undefined> {
    // Armed before the Submit: armed after it, the run could finish first and the kill land too late.
    if (point === "during_model_call") hangOnce.add(prompt);
    const submitted = await first.client.submit({ prompt, requestId: `req-${point}` }).then(
      (r) => r.task!.id,
      () => undefined, // the crash cut the Submit off: not acknowledged
    );
    if (point === "during_model_call") {
      await fake.waitForCall((c) => c.prompt === prompt && c.turn === 1);
      first.process.kill("SIGKILL");
    }
    if (point === "during_cancel") {
      await waitForStatus(first.client, submitted!, TaskStatus.RUNNING);
      await expect(first.client.cancel({ id: submitted! })).rejects.toThrow();
    }
    expect(await first.exited).toBe("SIGKILL");
    return submitted;
  }

  const points: [Point, "COMPLETED" | "CANCELLED"][] = [
    ["before_claim", "COMPLETED"],
    ["after_claim", "COMPLETED"],
    ["during_model_call", "COMPLETED"],
    ["after_model_answer", "COMPLETED"],
    ["after_checkpoint", "COMPLETED"],
    ["during_tool_call", "COMPLETED"],
    ["during_cancel", "CANCELLED"],
  ];

  it.each(points)(
    "SIGKILL %s: the task should end %s after a restart, with dense events and no iteration committed twice",
    async (point, terminalName) => {
      const terminal = TaskStatus[terminalName];
      const prompt = `crash ${point}`;
      const first = await server(point, point !== "during_model_call");
      const acknowledged = await untilCrash(point, first, prompt);

      const second = await server(point, false);
      try {
        const client: TaskClient = second.client;
        // A client whose Submit was cut off retries it with the same request_id: one task, never two.
        const id = acknowledged ?? (await client.submit({ prompt, requestId: `req-${point}` })).task!.id;
        if (acknowledged) expect((await client.submit({ prompt, requestId: `req-${point}` })).task!.id).toBe(acknowledged);
        const events = await collectEvents(client, id);
        expectDense(events);
        expect(events.at(-1)?.status).toBe(terminal);
        const checkpointed = events.filter((e) => e.kind === TaskEventKind.ITERATION_CHECKPOINTED).map((e) => e.iterations);
        expect(new Set(checkpointed).size, `iterations checkpointed: ${checkpointed.join(", ")}`).toBe(checkpointed.length);
        const task = (await client.get({ id })).task!;
        if (terminal === TaskStatus.COMPLETED) expect(task).toMatchObject({ result: "survived", iterations: 2 });
        expect((await client.list({ pageSize: 10 })).tasks).toHaveLength(1);
      } finally {
        second.process.kill("SIGTERM");
        await second.exited;
      }
    },
  );
});
