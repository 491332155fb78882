import { describe, expect, it } from "vitest";
import type { TaskEvent, TaskStatus } from "./domain/task.js";
import { createTask } from "./domain/transitions.js";
import { createMetrics } from "./metrics.js";

const t0 = new Date("2026-01-01T00:00:00Z");
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

/** A status change of task `id` at `seconds`, its task on its `runs`-th run. */
function changed(id: string, status: TaskStatus, previousStatus: TaskStatus | undefined, seconds: number, runs: number): TaskEvent {
  const { task } = createTask({ prompt: "p", systemPrompt: "", maxIterations: 3, labels: {}, tools: [], owner: "" }, t0, id);
  return {
    taskId: id,
    sequence: 1,
    time: at(seconds),
    kind: "status_changed",
    status,
    ...(previousStatus ? { previousStatus } : {}),
    iterations: 0,
    task: { ...task, status, runs },
  };
}

function metricsKeeping(timedTasksKept: number) {
  const metrics = createMetrics({ running: () => 0, watchers: () => 0, statusCounts: async () => ({}) }, { timedTasksKept });
  const pending = async () => {
    // A histogram's values name their series (_bucket, _sum, _count); the declared type leaves that out.
    const values = (await metrics.registry.getSingleMetric("rookery_task_pending_seconds")!.get()).values as {
      metricName?: string;
      value: number;
    }[];
    const of = (name: string) => values.find((v) => v.metricName === name)?.value;
    return { count: of("rookery_task_pending_seconds_count"), sum: of("rookery_task_pending_seconds_sum") };
  };
  return { metrics, pending };
}

describe("metrics: the time a task waits in PENDING", () => {
  it("should time a first wait from the task's creation, so that a Submit takes none of the tasks being timed", async () => {
    const { metrics, pending } = metricsKeeping(1);
    metrics.observe(changed("resumed", "pending", "input_required", 10, 1));
    // Submits through this replica: none may push the resumed task out.
    for (const id of ["a", "b", "c"]) metrics.observe(changed(id, "pending", undefined, 0, 0));
    metrics.observe(changed("resumed", "running", "pending", 14, 2));
    expect(await pending()).toEqual({ count: 1, sum: 4 });
    // A first run, claimed here: timed from its creation (t0).
    metrics.observe(changed("a", "running", "pending", 3, 1));
    expect(await pending()).toEqual({ count: 2, sum: 7 });
  });

  it("should forget the oldest of the waits it times past the number it keeps, so that a replica that never sees their claims stays bounded", async () => {
    const { metrics, pending } = metricsKeeping(2);
    // Resumed here, claimed elsewhere: this replica never sees the end of these waits.
    metrics.observe(changed("first", "pending", "input_required", 1, 1));
    metrics.observe(changed("second", "pending", "input_required", 2, 1));
    metrics.observe(changed("third", "pending", "input_required", 3, 1));
    metrics.observe(changed("first", "running", "pending", 5, 2));
    expect(await pending()).toEqual({ count: 0, sum: 0 });
    metrics.observe(changed("third", "running", "pending", 5, 2));
    metrics.observe(changed("second", "running", "pending", 6, 2));
    expect(await pending()).toEqual({ count: 2, sum: 6 });
  });
});
