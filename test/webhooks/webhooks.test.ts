// Webhooks end to end: a real server posts to a real HTTP receiver on
// loopback, which verifies every delivery with the official standardwebhooks
// library (TypeScript here, Python below).
import { execFileSync } from "node:child_process";
import { fromJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus, WebhookDeliveryState, WebhookPayloadSchema } from "../../gen/rookery/v1/task_pb.js";
import { createApiKey } from "../../src/auth/api-keys.js";
import { webhookSecretFor } from "../../src/webhooks/secrets.js";
import { CLI } from "../support/child-server.js";
import { startHarness, waitForStatus, type Harness } from "../support/harness.js";
import { itWith, pythonVenv, toolchain } from "../support/toolchains.js";
import { WebhookReceiver, type Received } from "../support/webhook-receiver.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const RETRY = { ROOKERY_WEBHOOK_RETRY_BASE_MS: "400", ROOKERY_WEBHOOK_RETRY_MAX_MS: "3000", ROOKERY_WEBHOOK_POLL_MS: "100" };
const ON = { ROOKERY_WEBHOOK_SECRET: SECRET, ROOKERY_WEBHOOK_ALLOW_HOSTS: "127.0.0.1", ...RETRY };

let receiver: WebhookReceiver;
let h: Harness | undefined;
beforeAll(async () => {
  receiver = await WebhookReceiver.start();
});
afterAll(async () => {
  await receiver.close();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
  receiver.answer(() => ({ status: 200 }));
});

const headersOf = (r: Received) => ({ "webhook-id": r.id, "webhook-timestamp": r.timestamp, "webhook-signature": r.signature });

async function deliveries(taskId: string, count: number): Promise<Received[]> {
  await expect.poll(() => receiver.ofTask(taskId).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(count);
  return receiver.ofTask(taskId);
}

describe("signed deliveries", () => {
  it("should post a completed task's transition signed to the Standard Webhooks spec, verified by the standardwebhooks library", async () => {
    h = await startHarness(ON);
    h.fake.respond(() => ({ content: "the answer" }));
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
    const [delivered] = await deliveries(task!.id, 1);
    const verified = new Webhook(SECRET).verify(delivered!.body, headersOf(delivered!)) as { type: string };
    expect(verified.type).toBe("task.status_changed");
    expect(delivered!.id).toMatch(/^msg_[0-9a-f]{32}$/);
    const payload = fromJsonString(WebhookPayloadSchema, delivered!.body);
    expect(payload.data).toMatchObject({ taskId: task!.id, status: TaskStatus.COMPLETED, previousStatus: TaskStatus.RUNNING });
    expect(payload.data!.task).toMatchObject({ id: task!.id, result: "the answer", status: TaskStatus.COMPLETED });
    expect(payload.data!.task!.checkpoint).toBeUndefined();
    expect(payload.data!.sequence).toBe(payload.data!.task!.lastEventSequence);
  });

  it("should send a transition's delivery right after its commit, without waiting for the sender's next look", async () => {
    h = await startHarness({ ...ON, ROOKERY_WEBHOOK_POLL_MS: "600000" }); // no look for due deliveries during the test
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
    const [delivered] = await deliveries(task!.id, 1);
    expect(fromJsonString(WebhookPayloadSchema, delivered!.body).data!.status).toBe(TaskStatus.COMPLETED);
  });

  it("should have a tampered body, id or signature rejected by the standardwebhooks library", async () => {
    h = await startHarness(ON);
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
    const [delivered] = await deliveries(task!.id, 1);
    const verifier = new Webhook(SECRET);
    expect(() => verifier.verify(delivered!.body.replace("COMPLETED", "FAILED"), headersOf(delivered!))).toThrow(/signature/i);
    expect(() => verifier.verify(delivered!.body, { ...headersOf(delivered!), "webhook-id": "msg_other" })).toThrow(/signature/i);
    expect(() => new Webhook("whsec_" + Buffer.alloc(24, 7).toString("base64")).verify(delivered!.body, headersOf(delivered!))).toThrow(
      /signature/i,
    );
  });

  // Set up while the file is collected, not inside the test: on a fresh machine the venv's
  // pip install takes longer than a test's timeout.
  const python = toolchain("Python standardwebhooks", () => pythonVenv());
  itWith(python)("should have every delivery verified by Python's standardwebhooks package, and a tampered one refused", async () => {
    h = await startHarness(ON);
    const { task } = await h.grpc.submit({
      prompt: "p",
      webhook: { url: receiver.url, statuses: [TaskStatus.RUNNING, TaskStatus.COMPLETED] },
    });
    const received = await deliveries(task!.id, 2);
    const script = `
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
cases = json.load(sys.stdin)
hook = Webhook(cases["secret"])
out = []
for c in cases["deliveries"]:
    try:
        out.append(hook.verify(c["body"], c["headers"])["data"]["status"])
    except WebhookVerificationError as e:
        out.append("refused: " + str(e))
print(json.dumps(out))
`;
    const tampered = {
      body: received[1]!.body.replace("TASK_STATUS_COMPLETED", "TASK_STATUS_CANCELLED"),
      headers: headersOf(received[1]!),
    };
    const input = JSON.stringify({
      secret: SECRET,
      deliveries: [...received.map((r) => ({ body: r.body, headers: headersOf(r) })), tampered],
    });
    const out = JSON.parse(execFileSync(python.value!, ["-c", script], { input, encoding: "utf8" })) as string[];
    expect(out.slice(0, 2)).toEqual(["TASK_STATUS_RUNNING", "TASK_STATUS_COMPLETED"]);
    expect(out[2]).toMatch(/^refused: /);
  });

  it("should sign each API key's deliveries with that key's own secret, the one `rookery keys webhook-secret` prints", async () => {
    const { key, entry } = createApiKey("team-a");
    h = await startHarness({ ...ON, ROOKERY_API_KEYS: entry });
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } }, { headers: { authorization: `Bearer ${key}` } });
    const [delivered] = await deliveries(task!.id, 1);
    const keySecret = webhookSecretFor(SECRET, "team-a");
    expect(keySecret).not.toBe(SECRET);
    expect(() => new Webhook(keySecret).verify(delivered!.body, headersOf(delivered!))).not.toThrow();
    expect(() => new Webhook(SECRET).verify(delivered!.body, headersOf(delivered!))).toThrow(/signature/i);
    const printed = execFileSync(process.execPath, [CLI, "keys", "webhook-secret", "team-a"], {
      env: { ...process.env, ROOKERY_WEBHOOK_SECRET: SECRET },
      encoding: "utf8",
    });
    expect(printed.trim()).toBe(keySecret);
  });

  it("should post only the statuses asked for, one delivery per transition, in sequence order", async () => {
    h = await startHarness(ON);
    h.fake.respond((call) =>
      call.body.messages.some((m) => m.role === "tool") ? { content: "done" } : { toolCalls: [{ name: "lookup", arguments: "{}" }] },
    );
    const statuses = [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.INPUT_REQUIRED, TaskStatus.COMPLETED];
    const tools = [{ name: "lookup", description: "client tool", parameters: { type: "object", properties: {} } }];
    const { task } = await h.grpc.submit({ prompt: "p", tools, webhook: { url: receiver.url, statuses } });
    const paused = (await waitForStatus(h.grpc, task!.id, TaskStatus.INPUT_REQUIRED)).at(-1)!.task!;
    const call = paused.pendingToolCalls[0]!;
    await h.grpc.resume({ id: task!.id, toolResults: [{ toolCallId: call.id, content: "42" }] });
    const received = await deliveries(task!.id, 6);
    const posted = received.map((r) => fromJsonString(WebhookPayloadSchema, r.body).data!);
    // Resume puts the task back in PENDING before it runs again.
    expect(posted.map((d) => TaskStatus[d.status])).toEqual(["PENDING", "RUNNING", "INPUT_REQUIRED", "PENDING", "RUNNING", "COMPLETED"]);
    const sequences = posted.map((d) => Number(d.sequence));
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(received.map((r) => r.id)).size).toBe(6);
  });
});

describe("listing a task's deliveries", () => {
  it("should list them a page at a time, by sequence, with next_page_token, on both listeners", async () => {
    h = await startHarness(ON);
    const statuses = [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.COMPLETED];
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url, statuses } });
    await deliveries(task!.id, 3);
    for (const client of [h.grpc, h.connect]) {
      const seen: [number, TaskStatus][] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await client.listWebhookDeliveries({ id: task!.id, pageSize: 2, pageToken });
        seen.push(...page.deliveries.map((d) => [Number(d.sequence), d.status] as [number, TaskStatus]));
        pageToken = page.nextPageToken;
        pages += 1;
      } while (pageToken);
      expect(seen).toEqual([
        [1, TaskStatus.PENDING],
        [2, TaskStatus.RUNNING],
        [3, TaskStatus.COMPLETED],
      ]);
      expect(pages).toBe(2);
      // No page size: every delivery of the task in one answer, as before pages existed.
      const all = await client.listWebhookDeliveries({ id: task!.id });
      expect([all.deliveries.length, all.nextPageToken]).toEqual([3, ""]);
    }
  });

  it("should refuse a page_size out of range, and another task's page_token, with INVALID_ARGUMENT", async () => {
    h = await startHarness(ON);
    const statuses = [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.COMPLETED];
    const one = (await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url, statuses } })).task!;
    const other = (await h.grpc.submit({ prompt: "q", webhook: { url: receiver.url, statuses } })).task!;
    await deliveries(one.id, 3);
    const { nextPageToken } = await h.grpc.listWebhookDeliveries({ id: one.id, pageSize: 1 });
    expect(nextPageToken).not.toBe("");
    for (const client of [h.grpc, h.connect]) {
      for (const [request, field] of [
        [{ id: one.id, pageSize: 1001 }, "page_size"],
        [{ id: one.id, pageSize: -1 }, "page_size"],
        [{ id: other.id, pageToken: nextPageToken }, "page_token"],
        [{ id: one.id, pageToken: "not-a-token" }, "page_token"],
      ] as const) {
        const refused = await client.listWebhookDeliveries(request).catch((e: unknown) => ConnectError.from(e));
        expect(refused).toMatchObject({ code: Code.InvalidArgument });
        expect((refused as ConnectError).message).toContain(field);
      }
    }
  });
});

describe("retries", () => {
  it("should retry a receiver that answers 500 three times: one delivery, four attempts, one webhook-id, backoff within bounds", async () => {
    h = await startHarness(ON);
    receiver.answer((_, i) => ({ status: i < 3 ? 500 : 200 }));
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
    const attempts = await deliveries(task!.id, 4);
    expect(new Set(attempts.map((a) => a.id)).size).toBe(1);
    // Retry n waits between half and all of 400 ms * 2^(n-1); the sender looks every 100 ms.
    // The upper bound leaves a loaded machine 2 s of slack; the lower one is exact.
    const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at);
    gaps.forEach((gap, i) => {
      const ceiling = 400 * 2 ** i;
      expect(gap, `gap before attempt ${i + 2}`).toBeGreaterThanOrEqual(ceiling / 2);
      expect(gap, `gap before attempt ${i + 2}`).toBeLessThan(ceiling + 2_100);
    });
    await expect
      .poll(async () => (await h!.grpc.listWebhookDeliveries({ id: task!.id })).deliveries[0]?.state)
      .toBe(WebhookDeliveryState.DELIVERED);
    const [delivery] = (await h.grpc.listWebhookDeliveries({ id: task!.id })).deliveries;
    expect(delivery).toMatchObject({ id: attempts[0]!.id, attempts: 4, lastStatusCode: 200, status: TaskStatus.COMPLETED });
    const metrics = await (await fetch(`http://127.0.0.1:${h.rookery.httpPort}/metrics`)).text();
    expect(metrics).toContain('rookery_webhook_attempts_total{outcome="retry"} 3');
    expect(metrics).toContain('rookery_webhook_attempts_total{outcome="delivered"} 1');
  });

  it("should wait out a Retry-After before the next attempt, and show the pending delivery's next attempt time", async () => {
    h = await startHarness(ON);
    receiver.answer((_, i) => (i === 0 ? { status: 503, headers: { "retry-after": "2" } } : { status: 200 }));
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
    await deliveries(task!.id, 1);
    await expect.poll(async () => (await h!.grpc.listWebhookDeliveries({ id: task!.id })).deliveries[0]?.attempts).toBe(1);
    const [pending] = (await h.grpc.listWebhookDeliveries({ id: task!.id })).deliveries;
    expect(pending).toMatchObject({ state: WebhookDeliveryState.PENDING, lastStatusCode: 503, lastError: "HTTP 503" });
    const next = Number(pending!.nextAttemptTime!.seconds) * 1000 + pending!.nextAttemptTime!.nanos / 1e6;
    expect(next - Number(pending!.lastAttemptTime!.seconds) * 1000).toBeGreaterThanOrEqual(1_000);
    const [first, second] = await deliveries(task!.id, 2);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(2_000);
  });

  it("should stop a task's deliveries after a 410 Gone, sending none of its later transitions", async () => {
    h = await startHarness(ON);
    receiver.answer(() => ({ status: 410 }));
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
    await deliveries(task!.id, 1);
    await expect
      .poll(async () => (await h!.grpc.listWebhookDeliveries({ id: task!.id })).deliveries[0]?.state)
      .toBe(WebhookDeliveryState.STOPPED);
    receiver.answer(() => ({ status: 200 }));
    const resumed = await h.grpc.resume({ id: task!.id, message: "again" });
    expect(resumed.task!.webhook?.url).toBe(receiver.url); // Resume keeps the webhook
    await waitForStatus(h.grpc, task!.id, TaskStatus.COMPLETED);
    await expect.poll(async () => (await h!.grpc.listWebhookDeliveries({ id: task!.id })).deliveries.length).toBe(2);
    const all = (await h.grpc.listWebhookDeliveries({ id: task!.id })).deliveries;
    expect(all.map((d) => [WebhookDeliveryState[d.state], d.attempts])).toEqual([
      ["STOPPED", 1],
      ["STOPPED", 0],
    ]);
    expect(receiver.ofTask(task!.id)).toHaveLength(1);
  });

  it("should follow no redirect: a 302 to another loopback receiver is a failed attempt and that receiver gets nothing", async () => {
    const elsewhere = await WebhookReceiver.start();
    try {
      h = await startHarness(ON);
      receiver.answer(() => ({ status: 302, headers: { location: elsewhere.url } }));
      const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
      await deliveries(task!.id, 2); // retried: the redirect did not count as delivered
      const [delivery] = (await h.grpc.listWebhookDeliveries({ id: task!.id })).deliveries;
      expect(delivery).toMatchObject({ state: WebhookDeliveryState.PENDING, lastStatusCode: 302 });
      expect(delivery!.lastError).toMatch(/redirects are not followed/);
      expect(elsewhere.received).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });
});

describe("a hostile receiver", () => {
  it("should record a 2xx as delivered and drop the connection of a receiver whose answer's body never ends", async () => {
    h = await startHarness({ ...ON, ROOKERY_WEBHOOK_TIMEOUT_MS: "60000" });
    receiver.answer(() => "endless");
    const { task } = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } });
    await deliveries(task!.id, 1);
    // Cut at the drained-bytes bound, long before the 60 s timeout would.
    await expect.poll(() => receiver.open, { timeout: 30_000 }).toBe(0);
    await expect
      .poll(async () => (await h!.grpc.listWebhookDeliveries({ id: task!.id })).deliveries[0]?.state, { timeout: 30_000 })
      .toBe(WebhookDeliveryState.DELIVERED);
    expect(receiver.ofTask(task!.id)).toHaveLength(1);
  });
});

describe("a slow receiver", () => {
  it("should not hold up another receiver's deliveries: it gets at most half of the sender's slots", async () => {
    const fast = await WebhookReceiver.start();
    try {
      h = await startHarness({ ...ON, ROOKERY_WEBHOOK_CONCURRENCY: "4", ROOKERY_WEBHOOK_TIMEOUT_MS: "60000" });
      receiver.answer(() => "hang"); // the slow one never answers
      const slowIds = await Promise.all(
        Array.from(
          { length: 10 },
          async (_, i) => (await h!.grpc.submit({ prompt: `slow ${i}`, webhook: { url: receiver.url } })).task!.id,
        ),
      );
      await expect.poll(() => receiver.open, { timeout: 30_000 }).toBe(2);
      const { task } = await h.grpc.submit({ prompt: "fast", webhook: { url: fast.url } });
      await expect.poll(() => fast.ofTask(task!.id).length, { timeout: 30_000 }).toBe(1);
      expect(receiver.open).toBe(2);
      expect(slowIds.length).toBe(10);
    } finally {
      await h?.close();
      h = undefined;
      await fast.close();
    }
  });
});

describe("configuration", () => {
  it("should give tasks that name no webhook the server's ROOKERY_WEBHOOK_URL", async () => {
    h = await startHarness({ ...ON, ROOKERY_WEBHOOK_URL: receiver.url });
    const { task } = await h.grpc.submit({ prompt: "p" });
    expect(task!.webhook).toMatchObject({ url: receiver.url });
    const [delivered] = await deliveries(task!.id, 1);
    expect(fromJsonString(WebhookPayloadSchema, delivered!.body).data!.status).toBe(TaskStatus.COMPLETED);
  });

  it("should refuse a webhook with INVALID_ARGUMENT when the server has no secret to sign it, and store nothing", async () => {
    h = await startHarness({ ROOKERY_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" });
    const refused = await h.grpc.submit({ prompt: "p", webhook: { url: receiver.url } }).catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.InvalidArgument });
    expect((refused as ConnectError).message).toMatch(/ROOKERY_WEBHOOK_SECRET/);
    expect((await h.grpc.list({})).tasks).toEqual([]);
  });

  it("should refuse an unknown status in webhook.statuses with INVALID_ARGUMENT", async () => {
    h = await startHarness(ON);
    const refused = await h.grpc
      .submit({ prompt: "p", webhook: { url: receiver.url, statuses: [42 as TaskStatus] } })
      .catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.InvalidArgument });
    expect((refused as ConnectError).message).toMatch(/webhook\.statuses\[0\]/);
  });
});

describe("SSRF protection (no connection is made to any refused address)", () => {
  const refusedUrls = [
    "https://127.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1/hook",
    "https://[::1]/hook",
    "https://localhost/hook", // a name that resolves to loopback
    "https://[::ffff:127.0.0.1]/hook",
    "http://example.com/hook", // plain http to a host not allowed
    "ftp://example.com/hook",
  ];

  it.each(refusedUrls)("should refuse %s with INVALID_ARGUMENT when it is not allowed", async (url) => {
    h = await startHarness({ ROOKERY_WEBHOOK_SECRET: SECRET });
    const refused = await h.grpc.submit({ prompt: "p", webhook: { url } }).catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.InvalidArgument });
    expect((refused as ConnectError).message).toMatch(/webhook\.url/);
    expect((await h.grpc.list({})).tasks).toEqual([]);
  });

  it("should refuse at startup a ROOKERY_WEBHOOK_URL that points at a loopback address not allowed", async () => {
    await expect(startHarness({ ROOKERY_WEBHOOK_SECRET: SECRET, ROOKERY_WEBHOOK_URL: "https://127.0.0.1/hook" })).rejects.toThrow(
      /ROOKERY_WEBHOOK_URL/,
    );
  });
});
