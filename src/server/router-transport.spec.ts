// The handlers as both listeners serve them (taskServiceImpl over the
// HandlerAdapter), called through Connect's in-memory router transport: the
// request and response (de)serialization, the error mapping to codes and the
// authentication, with no socket.
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService as TaskServiceDesc } from "../../gen/rookery/v1/task_service_pb.js";
import { apiKeyAuthenticator, createApiKey, parseApiKeys } from "../auth/api-keys.js";
import { createLogger } from "../logger.js";
import { SqliteTaskStore } from "../store/sqlite/sqlite-task-store.js";
import { serviceForTests } from "../testing/service-for-tests.js";
import { HandlerAdapter } from "./handler-adapter.js";
import { taskServiceImpl } from "./http-listener.js";

describe("the handlers through createRouterTransport", () => {
  let store: SqliteTaskStore;
  const { key, entry } = createApiKey("team");
  const shutdown = new AbortController();

  const client = () => {
    const service = serviceForTests(store, true);
    const authenticate = apiKeyAuthenticator(parseApiKeys([entry], () => "test"));
    const adapter = new HandlerAdapter({ service, authenticate, logger: createLogger("silent"), shutdown: shutdown.signal });
    const transport = createRouterTransport(({ service: serve }) => serve(TaskServiceDesc, taskServiceImpl(adapter)));
    return createClient(TaskServiceDesc, transport);
  };
  beforeEach(() => {
    store = new SqliteTaskStore({ path: ":memory:" });
  });
  afterEach(async () => {
    await store.close();
  });

  it("should submit, get and watch a task with a valid key", async () => {
    const tasks = client();
    const headers = { authorization: `Bearer ${key}` };
    const { task } = await tasks.submit({ prompt: "p" }, { headers });
    expect(task?.status).toBe(TaskStatus.PENDING);
    expect((await tasks.get({ id: task!.id }, { headers })).task?.prompt).toBe("p");
    await tasks.cancel({ id: task!.id }, { headers });
    const seen: TaskStatus[] = [];
    for await (const { event } of tasks.watch({ id: task!.id }, { headers })) seen.push(event!.status);
    expect(seen).toEqual([TaskStatus.PENDING, TaskStatus.CANCELLED]);
  });

  it("should answer UNAUTHENTICATED without a key and INVALID_ARGUMENT with the field for a bad request", async () => {
    const tasks = client();
    await expect(tasks.list({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    const refused = await tasks.submit({ prompt: "" }, { headers: { authorization: `Bearer ${key}` } }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(refused?.code).toBe(Code.InvalidArgument);
    expect(refused?.rawMessage).toMatch(/prompt/);
  });

  it("should answer NOT_FOUND for a task that does not exist", async () => {
    const tasks = client();
    const missing = tasks.get({ id: "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10" }, { headers: { authorization: `Bearer ${key}` } });
    await expect(missing).rejects.toMatchObject({ code: Code.NotFound });
  });
});
