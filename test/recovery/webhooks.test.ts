// Webhook deliveries survive the death of the process that owes them: on one
// SQLite file across a SIGKILL and restart, and on MongoDB through a second
// replica. A request killed mid-delivery is sent again with the same webhook-id.
import { MongoClient } from "mongodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startChildServer, childServersOnOneFile, type ChildServer } from "../support/child-server.js";
import { FakeOpenAI } from "../support/fake-openai.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import type { TaskClient } from "../support/harness.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WEBHOOKS = {
  ROOKERY_WEBHOOK_SECRET: SECRET,
  ROOKERY_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
  ROOKERY_WEBHOOK_RETRY_BASE_MS: "200",
  ROOKERY_WEBHOOK_RETRY_MAX_MS: "1000",
  ROOKERY_WEBHOOK_POLL_MS: "100",
  // A delivery taken by a process that died is held 2 x timeout + 5 s, then taken again.
  ROOKERY_WEBHOOK_TIMEOUT_MS: "1000",
};
const TASKS = 20;
// Room for the waits below (each up to 60 s, as a loaded machine may need), beyond the
// default 30 s: these tests kill a server and wait out a held delivery.
const TEST_TIMEOUT_MS = 180_000;

let receiver: WebhookReceiver;
beforeAll(async () => {
  receiver = await WebhookReceiver.start();
});
afterAll(async () => {
  await receiver.close();
});

async function submitAll(client: TaskClient, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < TASKS; i++) ids.push((await client.submit({ prompt: `${prefix} ${i}`, webhook: { url: receiver.url } })).task!.id);
  return ids;
}

async function allCompleted(client: TaskClient, ids: string[]): Promise<void> {
  await expect
    .poll(
      async () =>
        (await Promise.all(ids.map(async (id) => (await client.get({ id })).task!.status))).every((s) => s === TaskStatus.COMPLETED),
      { timeout: 60_000 },
    )
    .toBe(true);
}

/**
 * Once every task has completed and each delivery was attempted (and refused), SIGKILLs
 * the server and makes the receiver answer 200; returns when that was.
 */
async function killWhileOwed(server: ChildServer, ids: string[]): Promise<number> {
  await allCompleted(server.client, ids);
  await expect.poll(() => ids.every((id) => receiver.ofTask(id).length > 0), { timeout: 30_000 }).toBe(true);
  server.process.kill("SIGKILL");
  await server.exited;
  receiver.answer(() => ({ status: 200 }));
  return Date.now();
}

/** Every task's COMPLETED delivery reached the receiver with a 200 (each at least once). */
async function allDelivered(ids: string[], since: number): Promise<void> {
  await expect.poll(() => ids.filter((id) => receiver.ofTask(id).some((r) => r.at >= since)).length, { timeout: 60_000 }).toBe(ids.length);
}

describe("on one SQLite file", { timeout: TEST_TIMEOUT_MS }, () => {
  const suite = childServersOnOneFile("webhook-recovery", WEBHOOKS);
  beforeAll(() => suite.setUp());
  afterAll(() => suite.tearDown());

  it("should deliver every pending delivery after a SIGKILL and restart, the one killed in flight again with the same webhook-id", async () => {
    // The receiver fails every attempt, and leaves one hanging: the server is killed while they are owed.
    let hung: string | undefined;
    receiver.answer((request) => {
      if (!hung) {
        hung = request.id;
        return "hang";
      }
      return { status: 503 };
    });
    const first = await suite.start();
    const ids = await submitAll(first.client, "sqlite kill");
    const back = await killWhileOwed(first, ids);
    const second = await suite.start();
    await allDelivered(ids, back);
    expect(receiver.received.filter((r) => r.at >= back).map((r) => r.id)).toContain(hung);
    const deliveries = await Promise.all(ids.map(async (id) => (await second.client.listWebhookDeliveries({ id })).deliveries));
    expect(deliveries.every((d) => d.length === 1)).toBe(true);
    second.process.kill("SIGKILL");
  });
});

describeWithMongo("on MongoDB", () => {
  let fake: FakeOpenAI;
  let database: string;
  const children: ChildServer[] = [];
  const replica = async (env: Record<string, string> = {}) => {
    const child = await startChildServer({
      ROOKERY_STORE: "mongodb",
      MONGODB_URI: mongodbUri(),
      ROOKERY_MONGODB_DB: database,
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_API_KEY: "test-key",
      ROOKERY_POLL_MS: "100",
      ROOKERY_WATCH_POLL_MS: "250",
      ROOKERY_LEASE_MS: "3000",
      ...WEBHOOKS,
      ...env,
    });
    children.push(child);
    return child;
  };
  beforeAll(async () => {
    fake = await FakeOpenAI.start();
    database = uniqueDatabase("rookery_webhooks");
  });
  afterEach(async () => {
    for (const c of children) c.process.kill("SIGKILL");
    const raw = await new MongoClient(mongodbUri()).connect();
    await raw.db(database).dropDatabase();
    await raw.close();
  });
  afterAll(async () => {
    await fake.close();
  });

  it("should have a second replica deliver what the first owed once the first is killed", { timeout: TEST_TIMEOUT_MS }, async () => {
    receiver.answer(() => ({ status: 503 }));
    const first = await replica();
    // Runs no tasks; its sender takes due deliveries like any replica's.
    const second = await replica({ ROOKERY_CONCURRENCY: "0" });
    const ids = await submitAll(first.client, "mongo kill");
    const back = await killWhileOwed(first, ids);
    await allDelivered(ids, back);
    const deliveries = await Promise.all(ids.map(async (id) => (await second.client.listWebhookDeliveries({ id })).deliveries));
    expect(deliveries.map((d) => d.length)).toEqual(ids.map(() => 1));
  });
});
