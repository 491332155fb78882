// A receiver that is down while 1,000 tasks complete: nothing is dropped, and
// the sender never holds more attempts open than its concurrency.
import { expect, it } from "vitest";
import { TaskStatus, WebhookDeliveryState } from "../../gen/rookery/v1/task_pb.js";
import { startHarness } from "../support/harness.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

const TASKS = 1_000;
const CONCURRENCY = 8;

it("should deliver all of 1,000 tasks' completions once a receiver that was down is back, with at most the configured attempts open at once", async () => {
  const down = await WebhookReceiver.start();
  const port = Number(new URL(down.url).port);
  await down.close(); // connections to it are refused from now on
  const h = await startHarness({
    ROOKERY_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ROOKERY_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
    ROOKERY_WEBHOOK_RETRY_BASE_MS: "500",
    ROOKERY_WEBHOOK_RETRY_MAX_MS: "2000",
    ROOKERY_WEBHOOK_POLL_MS: "200",
    ROOKERY_WEBHOOK_CONCURRENCY: String(CONCURRENCY),
    ROOKERY_CONCURRENCY: "32",
  });
  let receiver: WebhookReceiver | undefined;
  try {
    const ids: string[] = [];
    for (let i = 0; i < TASKS; i += 50) {
      const batch = Array.from({ length: Math.min(50, TASKS - i) }, (_, j) =>
        h.grpc.submit({ prompt: `backlog ${i + j}`, webhook: { url: down.url } }),
      );
      ids.push(...(await Promise.all(batch)).map((r) => r.task!.id));
    }
    await expect
      .poll(
        async () => {
          let completed = 0;
          for (let token = "", first = true; first || token; first = false) {
            const page = await h.grpc.list({ statuses: [TaskStatus.COMPLETED], pageSize: 500, pageToken: token });
            completed += page.tasks.length;
            token = page.nextPageToken;
          }
          return completed;
        },
        { timeout: 180_000, interval: 1_000 },
      )
      .toBe(TASKS);
    // The last task's delivery has been refused at least once: the receiver really was down.
    await expect
      .poll(async () => (await h.grpc.listWebhookDeliveries({ id: ids.at(-1)! })).deliveries[0]?.attempts ?? 0, { timeout: 60_000 })
      .toBeGreaterThan(0);
    const [refused] = (await h.grpc.listWebhookDeliveries({ id: ids.at(-1)! })).deliveries;
    expect(refused).toMatchObject({ state: WebhookDeliveryState.PENDING });
    expect(refused!.lastError).toMatch(/ECONNREFUSED/);

    receiver = await WebhookReceiver.start(port);
    await expect.poll(() => new Set(receiver!.received.map((r) => r.id)).size, { timeout: 180_000, interval: 500 }).toBe(TASKS);
    expect(receiver.maxOpen).toBeLessThanOrEqual(CONCURRENCY);
    const reached = new Set(receiver.received.map((r) => (JSON.parse(r.body) as { data: { taskId: string } }).data.taskId));
    expect(ids.every((id) => reached.has(id))).toBe(true);
    // Each task has exactly one delivery, and each ends DELIVERED (its outcome is recorded just after the answer).
    const delivered = async () => {
      const lists = await Promise.all(ids.map(async (id) => (await h.grpc.listWebhookDeliveries({ id })).deliveries));
      return lists.filter((l) => l.length === 1 && l[0]!.state === WebhookDeliveryState.DELIVERED).length;
    };
    await expect.poll(delivered, { timeout: 60_000, interval: 1_000 }).toBe(TASKS);
  } finally {
    await h.close();
    await receiver?.close();
  }
}, 600_000);
