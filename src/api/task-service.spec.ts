// TaskService on its own: the handlers called directly with a CallContext, over
// an in-memory store, with no listener and no model (nothing claims the tasks).
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CancelRequestSchema,
  GetRequestSchema,
  ListRequestSchema,
  ResumeRequestSchema,
  SubmitRequestSchema,
  WatchRequestSchema,
} from "../../gen/rookery/v1/task_service_pb.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, TaskNotFoundError } from "../domain/errors.js";
import { SqliteTaskStore } from "../store/sqlite/sqlite-task-store.js";
import { serviceForTests } from "../testing/service-for-tests.js";
import type { TaskService } from "./task-service.js";

describe("TaskService without a listener", () => {
  let store: SqliteTaskStore;
  let service: TaskService;
  const ctx = (principal = "") => ({ principal, signal: new AbortController().signal });

  const open = (authEnabled: boolean) => {
    store = new SqliteTaskStore({ path: ":memory:" });
    service = serviceForTests(store, authEnabled);
  };
  beforeEach(() => open(false));
  afterEach(async () => {
    await store.close();
  });

  it("should store a submitted task in PENDING with the server's defaults, and Get it back", async () => {
    const { task } = await service.submit(create(SubmitRequestSchema, { prompt: "p" }), ctx());
    expect(task).toMatchObject({ status: TaskStatus.PENDING, model: "m", provider: "openai", maxIterations: 5 });
    const got = await service.get(create(GetRequestSchema, { id: task!.id }), ctx());
    expect(got.task?.id).toBe(task!.id);
  });

  it("should refuse an empty prompt with InvalidArgumentError naming the field, and store nothing", async () => {
    const refused = await service.submit(create(SubmitRequestSchema, { prompt: " " }), ctx()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidArgumentError);
    expect((refused as InvalidArgumentError).violations.map((v) => v.field)).toContain("prompt");
    expect(await store.list({ statuses: [], labels: {}, limit: 10 })).toEqual([]);
  });

  it("should return the first task for a repeated request_id, and refuse it for a different prompt", async () => {
    const first = await service.submit(create(SubmitRequestSchema, { prompt: "p", requestId: "r" }), ctx());
    const again = await service.submit(create(SubmitRequestSchema, { prompt: "p", requestId: "r" }), ctx());
    expect(again.task!.id).toBe(first.task!.id);
    await expect(service.submit(create(SubmitRequestSchema, { prompt: "other", requestId: "r" }), ctx())).rejects.toBeInstanceOf(
      AlreadyExistsError,
    );
  });

  it("should cancel a pending task, answer a second Cancel alike, and refuse to Resume a pending one", async () => {
    const { task } = await service.submit(create(SubmitRequestSchema, { prompt: "p" }), ctx());
    const id = task!.id;
    await expect(service.resume(create(ResumeRequestSchema, { id }), ctx())).rejects.toBeInstanceOf(FailedPreconditionError);
    const cancelled = await service.cancel(create(CancelRequestSchema, { id, reason: "no" }), ctx());
    const twice = await service.cancel(create(CancelRequestSchema, { id, reason: "no" }), ctx());
    expect(cancelled.task).toMatchObject({ status: TaskStatus.CANCELLED, error: "no" });
    expect(twice.task?.lastEventSequence).toBe(cancelled.task?.lastEventSequence);
  });

  it("should replay a task's events through Watch and end after its terminal one", async () => {
    const { task } = await service.submit(create(SubmitRequestSchema, { prompt: "p" }), ctx());
    await service.cancel(create(CancelRequestSchema, { id: task!.id, reason: "" }), ctx());
    const statuses: TaskStatus[] = [];
    for await (const response of service.watch(create(WatchRequestSchema, { id: task!.id, afterSequence: 0n }), ctx())) {
      statuses.push(response.event!.status);
    }
    expect(statuses).toEqual([TaskStatus.PENDING, TaskStatus.CANCELLED]);
  });

  it("should hide each key's tasks from other keys when auth is on (NOT_FOUND, not forbidden)", async () => {
    open(true);
    const { task } = await service.submit(create(SubmitRequestSchema, { prompt: "mine" }), ctx("a"));
    await expect(service.get(create(GetRequestSchema, { id: task!.id }), ctx("b"))).rejects.toBeInstanceOf(TaskNotFoundError);
    expect((await service.list(create(ListRequestSchema, { pageSize: 10 }), ctx("b"))).tasks).toEqual([]);
  });
});
