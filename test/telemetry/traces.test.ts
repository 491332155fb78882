// Traces in a real Jaeger: a server exporting over OTLP (the standard OTEL_*
// variables) puts a task's whole life in the trace of the Submit that made it,
// across a Resume and a takeover after SIGKILL; without those variables it
// sends nothing.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { childServersOnOneFile } from "../support/child-server.js";
import { waitForStatus } from "../support/harness.js";
import { ensureJaeger, startJaeger, tag, traceSpans, type Jaeger, type JaegerSpan } from "../support/jaeger.js";
import { itWith, toolchain } from "../support/toolchains.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

const jaegerBin = toolchain("Jaeger (Go toolchain)", ensureJaeger);
const it_ = itWith(jaegerBin);

/** A caller's trace context: a fresh trace id and the caller's own span. */
function callerContext() {
  const traceId = randomBytes(16).toString("hex");
  const parentId = randomBytes(8).toString("hex");
  return { traceId, parentId, traceparent: `00-${traceId}-${parentId}-01` };
}

const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === "CHILD_OF")?.spanID;
const named = (spans: JaegerSpan[], prefix: string) => spans.filter((s) => s.operationName.startsWith(prefix));

describe("traces in Jaeger", () => {
  let jaeger: Jaeger | undefined;
  const servers = childServersOnOneFile("traces", { ROOKERY_LEASE_MS: "1000" });
  const exporting = () => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: jaeger!.otlpEndpoint,
    OTEL_SERVICE_NAME: "rookery-test",
    OTEL_TRACES_SAMPLER: "always_on",
    OTEL_BSP_SCHEDULE_DELAY: "100",
  });
  beforeAll(async () => {
    await servers.setUp();
    if (jaegerBin.value) jaeger = await startJaeger(jaegerBin.value);
  }, 1_500_000);
  afterAll(async () => {
    await servers.tearDown();
    await jaeger?.stop();
  });

  it_(
    "should put a task's runs, model calls, tool call and Resume in the caller's trace, with token attributes equal to its usage",
    async () => {
      // Iteration 1 calls the server's calculator, iteration 2 a client tool; after the Resume, iteration 3 answers.
      servers.fake.respond((c) =>
        c.turn === 0
          ? { toolCalls: [{ name: "calculator", arguments: '{"expression":"6*7"}' }] }
          : c.turn === 1
            ? { toolCalls: [{ name: "lookup", arguments: "{}" }] }
            : { content: "traced" },
      );
      const receiver = await WebhookReceiver.start();
      const server = await servers.start({
        ...exporting(),
        ROOKERY_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ROOKERY_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
      });
      const caller = callerContext();
      const headers = { traceparent: caller.traceparent };
      const tools = [{ name: "lookup", description: "a client tool", parameters: { type: "object", properties: {} } }];
      const webhook = { url: receiver.url };
      const { task } = await server.client.submit({ prompt: "trace me", tools, maxIterations: 5, webhook }, { headers });
      const paused = (await waitForStatus(server.client, task!.id, TaskStatus.INPUT_REQUIRED)).at(-1)!.task!;
      const resumeCaller = `00-${caller.traceId}-${randomBytes(8).toString("hex")}-01`;
      await server.client.resume(
        { id: task!.id, toolResults: [{ toolCallId: paused.pendingToolCalls[0]!.id, content: "42" }] },
        { headers: { traceparent: resumeCaller } },
      );
      await waitForStatus(server.client, task!.id, TaskStatus.COMPLETED);
      const done = (await server.client.get({ id: task!.id })).task!;

      let spans: JaegerSpan[] = [];
      await expect
        .poll(async () => named((spans = await traceSpans(jaeger!, caller.traceId)), "chat").length, { timeout: 30_000, interval: 250 })
        .toBe(3);
      await expect
        .poll(async () => named((spans = await traceSpans(jaeger!, caller.traceId)), "invoke_agent").length, { timeout: 30_000 })
        .toBe(2);
      expect(new Set(spans.map((s) => s.traceID))).toEqual(new Set([caller.traceId]));

      const [submit] = named(spans, "rookery.v1.TaskService/Submit");
      expect(parentOf(submit!)).toBe(caller.parentId);
      const runs = named(spans, "invoke_agent");
      for (const run of runs) expect(parentOf(run)).toBe(submit!.spanID);
      expect(runs.map((r) => tag(r, "rookery.task.id"))).toEqual([task!.id, task!.id]);

      const chats = named(spans, "chat");
      const runIds = new Set(runs.map((r) => r.spanID));
      for (const chat of chats) {
        expect(runIds.has(parentOf(chat)!)).toBe(true);
        expect(tag(chat, "gen_ai.operation.name")).toBe("chat");
        expect(tag(chat, "gen_ai.provider.name")).toBe("openai");
        expect(tag(chat, "gen_ai.request.model")).toBe(done.model);
        expect(tag(chat, "gen_ai.response.model")).toBeTruthy();
      }
      const sum = (key: string) => chats.reduce((n, c) => n + Number(tag(c, key)), 0);
      expect(sum("gen_ai.usage.input_tokens")).toBe(Number(done.usage!.promptTokens));
      expect(sum("gen_ai.usage.output_tokens")).toBe(Number(done.usage!.completionTokens));

      const [tool] = named(spans, "execute_tool");
      expect(tag(tool!, "gen_ai.tool.name")).toBe("calculator");
      expect(runIds.has(parentOf(tool!)!)).toBe(true);
      const [resume] = named(spans, "rookery.v1.TaskService/Resume");
      expect(resume).toBeDefined();
      // Store writes are short spans: each run's claim under it, commits under the runs and RPCs.
      const claims = named(spans, "rookery.store claim");
      expect(claims.map((c) => runIds.has(parentOf(c)!))).toEqual([true, true]);
      expect(named(spans, "rookery.store commit").length).toBeGreaterThan(0);
      // Prompt and completion text are not recorded unless ROOKERY_TRACE_CONTENT says so.
      expect(chats.every((c) => tag(c, "gen_ai.input.messages") === undefined && tag(c, "gen_ai.output.messages") === undefined)).toBe(
        true,
      );
      // Log lines written inside the run's span carry its trace (lines are written in blocks: wait for them).
      const runsEnded = () =>
        server.logs
          .map((l) => JSON.parse(l.startsWith("{") ? l : "{}") as { msg?: string; trace_id?: string; taskId?: string })
          .filter((l) => l.msg === "task run ended" && l.taskId === task!.id)
          .map((l) => l.trace_id);
      await expect.poll(runsEnded, { timeout: 10_000 }).toEqual([caller.traceId, caller.traceId]);
      // The webhook deliveries (INPUT_REQUIRED, COMPLETED) are children of the Submit too, and carry the trace on.
      await expect
        .poll(async () => named((spans = await traceSpans(jaeger!, caller.traceId)), "webhook POST").length, { timeout: 30_000 })
        .toBe(2);
      for (const post of named(spans, "webhook POST")) expect(parentOf(post)).toBe(submit!.spanID);
      expect(receiver.received.map((r) => r.headers.traceparent?.split("-")[1])).toEqual([caller.traceId, caller.traceId]);
      await receiver.close();
      // The model calls carried the trace on to the provider.
      const calls = servers.fake.calls.filter((c) => c.prompt === "trace me");
      expect(calls.every((c) => c.traceparent?.split("-")[1] === caller.traceId)).toBe(true);
      server.process.kill("SIGTERM");
      await server.exited;
    },
    120_000,
  );

  it_(
    "should put the run a restarted server takes over after a SIGKILL in the same trace",
    async () => {
      let first = true;
      servers.fake.respond(() => (first ? { hang: true } : { content: "survived" }));
      const caller = callerContext();
      const dying = await servers.start(exporting());
      const { task } = await dying.client.submit({ prompt: "kill me" }, { headers: { traceparent: caller.traceparent } });
      await servers.fake.waitForCall((c) => c.prompt === "kill me");
      // The Submit span has been exported (the run's own span dies with the process).
      await expect
        .poll(async () => named(await traceSpans(jaeger!, caller.traceId), "rookery.v1.TaskService/Submit").length, { timeout: 30_000 })
        .toBe(1);
      dying.process.kill("SIGKILL");
      await dying.exited;
      first = false;
      const second = await servers.start(exporting());
      await waitForStatus(second.client, task!.id, TaskStatus.COMPLETED);
      let spans: JaegerSpan[] = [];
      await expect
        .poll(async () => named((spans = await traceSpans(jaeger!, caller.traceId)), "invoke_agent").length, {
          timeout: 30_000,
          interval: 250,
        })
        .toBeGreaterThanOrEqual(1);
      const [submit] = named(spans, "rookery.v1.TaskService/Submit");
      const takeover = named(spans, "invoke_agent").find((s) => Number(tag(s, "rookery.task.run")) === 2);
      expect(takeover, "the second run's span").toBeDefined();
      expect(parentOf(takeover!)).toBe(submit!.spanID);
      second.process.kill("SIGTERM");
      await second.exited;
    },
    120_000,
  );
});

describe("tracing with ROOKERY_TRACE_CONTENT", () => {
  let jaeger: Jaeger | undefined;
  const servers = childServersOnOneFile("trace-content");
  beforeAll(async () => {
    await servers.setUp();
    if (jaegerBin.value) jaeger = await startJaeger(jaegerBin.value);
  });
  afterAll(async () => {
    await servers.tearDown();
    await jaeger?.stop();
  });

  it_("should record the messages sent and the reply on the chat span when the setting turns it on", async () => {
    servers.fake.respond(() => ({ content: "recorded answer" }));
    const server = await servers.start({
      OTEL_EXPORTER_OTLP_ENDPOINT: jaeger!.otlpEndpoint,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      ROOKERY_TRACE_CONTENT: "true",
    });
    const caller = callerContext();
    const { task } = await server.client.submit({ prompt: "record me" }, { headers: { traceparent: caller.traceparent } });
    await waitForStatus(server.client, task!.id, TaskStatus.COMPLETED);
    let chats: JaegerSpan[] = [];
    await expect.poll(async () => (chats = named(await traceSpans(jaeger!, caller.traceId), "chat")).length, { timeout: 30_000 }).toBe(1);
    expect(String(tag(chats[0]!, "gen_ai.input.messages"))).toContain("record me");
    expect(String(tag(chats[0]!, "gen_ai.output.messages"))).toContain("recorded answer");
    server.process.kill("SIGTERM");
    await server.exited;
  });
});

describe("tracing off", () => {
  const servers = childServersOnOneFile("no-traces");
  beforeAll(() => servers.setUp());
  afterAll(() => servers.tearDown());

  it("should create no exporter and send nothing to an OTLP receiver when no OTEL endpoint is set", async () => {
    // A receiver where an exporter created without settings would send (OTLP/HTTP's default port).
    let received = 0;
    const receiver = http.createServer((req, res) => {
      received += 1;
      res.writeHead(200).end();
    });
    const listening = await new Promise<boolean>((resolve) => {
      receiver.once("error", () => resolve(false));
      receiver.listen(4318, "127.0.0.1", () => resolve(true));
    });
    try {
      servers.fake.respond(() => ({ content: "untraced" }));
      const server = await servers.start({ OTEL_SERVICE_NAME: "rookery-untraced" });
      const { task } = await server.client.submit({ prompt: "no traces" }, { headers: { traceparent: callerContext().traceparent } });
      await waitForStatus(server.client, task!.id, TaskStatus.COMPLETED);
      // Shutting down flushes any exporter there is: after it, nothing can still be on its way.
      server.process.kill("SIGTERM");
      await server.exited;
      expect(server.logs.join("\n")).not.toContain("exporting traces");
      if (listening) expect(received).toBe(0);
      expect(servers.fake.calls.find((c) => c.prompt === "no traces")?.traceparent).toBeUndefined();
    } finally {
      receiver.close();
    }
  });
});
