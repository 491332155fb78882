// What an operator pages on, read from GET /metrics after real tasks ran.
import { afterAll, beforeAll, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { startHarness, waitForStatus, type Harness } from "../support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  h.fake.respond((c) => (c.prompt === "refused" ? { status: 400, error: "bad request" } : { content: "measured" }));
});
afterAll(async () => {
  await h.close();
});

/** The value of one sample line of the exposition, 0 when absent. */
async function sample(line: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${h.rookery.httpPort}/metrics`)).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(" ").at(-1)) : 0;
}

it("should count model tokens by model, time model calls by outcome, and time runs and the wait in PENDING", async () => {
  const { task } = await h.grpc.submit({ prompt: "measure me" });
  await waitForStatus(h.grpc, task!.id, TaskStatus.COMPLETED);
  const refused = await h.grpc.submit({ prompt: "refused" });
  await waitForStatus(h.grpc, refused.task!.id, TaskStatus.FAILED);
  const usage = (await h.grpc.get({ id: task!.id })).task!.usage!;

  const labels = 'provider="openai",model="fake-model"';
  await expect.poll(() => sample(`rookery_model_tokens_total{${labels},kind="input"}`)).toBe(Number(usage.promptTokens));
  expect(await sample(`rookery_model_tokens_total{${labels},kind="output"}`)).toBe(Number(usage.completionTokens));
  expect(await sample(`rookery_model_call_seconds_count{${labels},outcome="ok"}`)).toBe(1);
  expect(await sample(`rookery_model_call_seconds_count{${labels},outcome="provider_refused"}`)).toBe(1);
  expect(await sample('rookery_task_run_seconds_count{status="completed"}')).toBe(1);
  expect(await sample('rookery_task_run_seconds_count{status="failed"}')).toBe(1);
  expect(await sample("rookery_task_pending_seconds_count")).toBe(2);
  expect(await sample('rookery_tasks{status="completed"}')).toBe(1);
  expect(await sample('rookery_tasks{status="failed"}')).toBe(1);
  expect(await sample('rookery_tasks{status="pending"}')).toBe(0);
});
