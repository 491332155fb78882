// Issue 15: what a webhook delivery's id costs the embedded store's outbox. A
// delivery is inserted with its event and its outcome recorded after its
// attempt; its id is the table's primary key. Random ids (UUID v4) put each
// insert at a random place in that index; time-ordered ids (UUID v7, as task
// ids) append. Side by side in each round, alternating which goes first: the
// real outbox statements (SqliteWebhookDeliveries) on a fresh file holding
// PREFILL deliveries, then TIMED deliveries inserted and recorded five writes
// to a transaction (about what the store's group commit shares under load),
// each recorded a few commits after its insert. Prints the CPU per delivery.
// Run: npx tsx bench/webhook-ids.ts [deliveries already stored, default 100000]
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { timeOrderedId } from "../src/domain/ids.js";
import { cancel, commitTransition, createTask } from "../src/domain/transitions.js";
import { afterAttempt, type WebhookDelivery } from "../src/domain/webhooks.js";
import { SqliteTaskStore } from "../src/store/sqlite/sqlite-task-store.js";
import { SqliteWebhookDeliveries } from "../src/store/sqlite/sqlite-webhooks.js";
import { median, sideBySide } from "./lib/measure.js";

const PREFILL = Number(process.argv[2] ?? 100_000);
const TIMED = 20_000;
const WRITES_PER_COMMIT = 5;
const RECORDED_AFTER = 20; // deliveries: an outcome is recorded this many inserts after its own
const ROUNDS = 3;
const POLICY = { baseDelayMs: 1_000, maxDelayMs: 60_000, horizonMs: 86_400_000 };

type Kind = "random (v4)" | "time-ordered (v7)";
const idOf: Record<Kind, (now: Date) => string> = {
  "random (v4)": () => `msg_${randomUUID().replaceAll("-", "")}`,
  "time-ordered (v7)": (now) => `msg_${timeOrderedId(now).replaceAll("-", "")}`,
};

const created = createTask(
  {
    prompt: "what is 6*7",
    systemPrompt: "",
    maxIterations: 3,
    labels: {},
    tools: [],
    owner: "",
    webhook: { url: "http://127.0.0.1:9/hook", statuses: ["cancelled"] },
  },
  new Date(),
);
const template = commitTransition(created.task, cancel("bench"), new Date()).delivery!;
const deliveryOf = (kind: Kind): WebhookDelivery => {
  const now = new Date();
  return { ...template, id: idOf[kind](now), taskId: timeOrderedId(now), time: now, createdAt: now, nextAttemptAt: now };
};

const dir = mkdtempSync(join(tmpdir(), "rookery-bench-ids-"));

/** CPU µs per delivery (insert and record) with `kind` ids, on a fresh file holding PREFILL deliveries. */
async function microsPerDelivery(kind: Kind, round: number): Promise<number> {
  const path = join(dir, `${round}-${kind.slice(0, 6)}.db`);
  await new SqliteTaskStore({ path }).close(); // the schema, by the store's own migrations
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  const outbox = new SqliteWebhookDeliveries(db);
  const commit = (writes: (() => void)[]) => db.transaction(() => writes.forEach((write) => write()))();
  const recordDelivered = (sent: WebhookDelivery) => () =>
    outbox.record(afterAttempt(sent, { kind: "delivered", statusCode: 204 }, new Date(), POLICY));
  for (let i = 0; i < PREFILL; i += 50) commit(Array.from({ length: 50 }, () => () => outbox.insert(deliveryOf(kind))));

  const unrecorded: WebhookDelivery[] = [];
  const before = process.cpuUsage();
  for (let made = 0; made < TIMED;) {
    const writes: (() => void)[] = [];
    while (writes.length < WRITES_PER_COMMIT) {
      if (unrecorded.length > RECORDED_AFTER || made === TIMED) {
        writes.push(recordDelivered(unrecorded.shift()!));
      } else {
        const delivery = deliveryOf(kind);
        unrecorded.push(delivery);
        writes.push(() => outbox.insert(delivery));
        made++;
      }
    }
    commit(writes);
  }
  while (unrecorded.length > 0) commit([recordDelivered(unrecorded.shift()!)]);
  const used = process.cpuUsage(before);
  db.close();
  rmSync(path, { force: true });
  return (used.user + used.system) / TIMED;
}

const results: Record<Kind, number[]> = { "random (v4)": [], "time-ordered (v7)": [] };
const kinds = Object.keys(results) as Kind[];
await microsPerDelivery(kinds[0]!, 0); // warms up the statements' code paths, not counted
for (let round = 1; round <= ROUNDS; round++) {
  for (const kind of round % 2 ? kinds : [...kinds].reverse()) results[kind].push(await microsPerDelivery(kind, round));
}
rmSync(dir, { recursive: true, force: true });

console.log(
  `Webhook outbox writes by id kind, ${PREFILL} deliveries stored, ${TIMED} inserted and recorded a round, median of ${ROUNDS} rounds (${new Date().toISOString()})`,
);
for (const kind of kinds) {
  console.log(
    `${kind.padEnd(20)} ${median(results[kind]).toFixed(1)} µs of CPU per delivery (rounds ${results[kind].map((v) => v.toFixed(1)).join(", ")})`,
  );
}
console.log(`time-ordered / random: ${sideBySide(results["time-ordered (v7)"], results["random (v4)"])} of the CPU`);
