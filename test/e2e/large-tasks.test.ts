// Tasks that hold a lot (a huge model answer, big prompts and tool schemas)
// stay readable by every gRPC client, whose default receive limit is 4 MiB:
// what a task stores from the model is capped, List rows are BASIC by
// default, FULL pages stop at a byte budget, and events carry small snapshots.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus, TaskView } from "../../gen/rookery/v1/task_pb.js";
import { grpcJsTaskClient } from "../support/grpc-js-client.js";
import { collectEvents, startHarness, type Harness, type TaskClient } from "../support/harness.js";

describe("large tasks", () => {
  let h: Harness;
  let grpcJs: TaskClient & { close(): void }; // @grpc/grpc-js: 4 MiB receive limit by default
  beforeAll(async () => {
    h = await startHarness();
    h.fake.respond((c) => {
      if (c.prompt === "answer 5 MB") return { content: "x".repeat(5 * 1000 * 1000) };
      if (c.prompt.startsWith("big")) return { content: "y".repeat(900 * 1024) };
      return { content: "?" };
    });
    grpcJs = grpcJsTaskClient(`127.0.0.1:${h.rookery.grpcPort}`);
  });
  afterAll(async () => {
    grpcJs.close();
    await h.close();
  });

  it("should FAIL a task whose model answer is 5 MB, saying why, and keep Get, List and Watch readable", async () => {
    const { task } = await grpcJs.submit({ prompt: "answer 5 MB" });
    const events = await collectEvents(grpcJs, task!.id);
    expect(events.at(-1)?.status).toBe(TaskStatus.FAILED);
    const { task: failed } = await grpcJs.get({ id: task!.id });
    expect(failed?.error).toMatch(/passed 1048576 bytes \(ROOKERY_MAX_REPLY_BYTES\)/);
    expect(failed?.result).toBeUndefined();
    expect((await grpcJs.list({ pageSize: 1000 })).tasks.map((t) => t.id)).toContain(task!.id);
  });

  it("should keep List rows and events small and FULL pages under the budget when every task is near the limits", async () => {
    const prompt = (i: number) => `big ${i} ${"p".repeat(250 * 1024)}`;
    const tools = [{ name: "wide", description: "d".repeat(4000), parameters: { type: "object", description: "s".repeat(60 * 1024) } }];
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const { task } = await h.grpc.submit({ prompt: prompt(i), systemPrompt: "s".repeat(250 * 1024), tools, labels: { batch: "big" } });
      ids.push(task!.id);
    }
    for (const id of ids) {
      const events = await collectEvents(grpcJs, id);
      expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
      // Each event is a small BASIC snapshot: no result, system prompt or tools; prompt cut short.
      for (const e of events) {
        expect(e.task?.result).toBeUndefined();
        expect(e.task?.systemPrompt).toBe("");
        expect(e.task?.tools).toEqual([]);
        expect(e.task?.promptTruncated).toBe(true);
        expect([...e.task!.prompt].length).toBe(1000);
      }
      const { task } = await grpcJs.get({ id });
      expect(task?.result?.length).toBe(900 * 1024);
      expect(task?.promptTruncated).toBe(false);
    }

    const basic = await grpcJs.list({ pageSize: 100, labels: { batch: "big" } });
    expect(basic.tasks).toHaveLength(8);
    expect(basic.tasks.every((t) => t.result === undefined && t.promptTruncated)).toBe(true);

    // FULL rows carry results (~1.5 MiB a task here): pages end early, and paging reaches every task.
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await grpcJs.list({ pageSize: 100, labels: { batch: "big" }, view: TaskView.FULL, pageToken });
      expect(page.tasks.length).toBeGreaterThan(0);
      expect(page.tasks.length).toBeLessThan(8);
      for (const t of page.tasks) expect(t.result?.length).toBe(900 * 1024);
      seen.push(...page.tasks.map((t) => t.id));
      pageToken = page.nextPageToken;
      pages += 1;
    } while (pageToken && pages < 20);
    expect(seen.sort()).toEqual([...ids].sort());
  });

  it("should refuse tools whose descriptions and schemas together pass 256 KiB", async () => {
    const tools = Array.from({ length: 5 }, (_, i) => ({
      name: `t${i}`,
      description: "d",
      parameters: { description: "s".repeat(60 * 1024) },
    }));
    await expect(h.grpc.submit({ prompt: "too many schemas", tools })).rejects.toThrow(/together/);
  });
});
