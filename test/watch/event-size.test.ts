// Events carry what their iteration added, not the conversation so far: the
// bytes stored per event stay flat as a conversation grows to 50 iterations,
// on both stores (read straight from the SQLite file and the MongoDB collection).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { BSON, MongoClient } from "mongodb";
import { afterAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, startHarness } from "../support/harness.js";
import { describeWithMongo, mongodbUri, uniqueDatabase } from "../support/mongodb.js";

const ITERATIONS = 50;

/** A task whose every iteration calls the calculator with a little text, then answers. */
async function runFiftyIterations(env: Record<string, string>): Promise<string> {
  const fake = await FakeOpenAI.start();
  fake.respond((c) =>
    c.turn < ITERATIONS - 1
      ? { content: `step ${c.turn}: adding one more.`, toolCalls: [{ name: "calculator", arguments: `{"expression":"${c.turn}+1"}` }] }
      : { content: "done after fifty" },
  );
  const h = await startHarness(env, fake);
  try {
    const { task } = await h.grpc.submit({ prompt: "grow", maxIterations: ITERATIONS });
    const events = await collectEvents(h.grpc, task!.id);
    expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
    expect(events.at(-1)?.iterations).toBe(ITERATIONS);
    return task!.id;
  } finally {
    await h.close();
    await fake.close();
  }
}

/** Bytes of the iteration_checkpointed events, iteration 1 first. */
function expectFlat(sizes: number[]): void {
  expect(sizes).toHaveLength(ITERATIONS - 1);
  const first = sizes[0]!;
  for (const size of sizes) expect(size).toBeLessThanOrEqual(2 * first);
  // The conversation grew ~50-fold meanwhile; an event holding it would have too.
  expect(sizes.at(-1)!).toBeLessThan(1.2 * first);
}

describe("stored bytes per event on SQLite", () => {
  const dir = mkdtempSync(join(tmpdir(), "rookery-event-size-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`should stay flat from iteration 1 to ${ITERATIONS}`, async () => {
    const path = join(dir, "rookery.db");
    const id = await runFiftyIterations({ ROOKERY_SQLITE_PATH: path });
    const db = new Database(path, { readonly: true });
    const rows = db
      .prepare(
        `SELECT length(e.doc) AS bytes, json_extract(e.doc, '$.kind') AS kind FROM task_events e
         JOIN tasks t ON t.task_no = e.task_no WHERE t.id = ? ORDER BY e.sequence`,
      )
      .all(id) as { bytes: number; kind: string }[];
    db.close();
    expectFlat(rows.filter((r) => r.kind === "iteration_checkpointed").map((r) => r.bytes));
  });
});

describeWithMongo("stored bytes per event on MongoDB", () => {
  const database = uniqueDatabase("rookery_size");
  let raw: MongoClient | undefined;
  afterAll(async () => {
    await raw?.db(database).dropDatabase();
    await raw?.close();
  });

  it(`should stay flat from iteration 1 to ${ITERATIONS}`, { timeout: 120_000 }, async () => {
    const id = await runFiftyIterations({ ROOKERY_STORE: "mongodb", MONGODB_URI: mongodbUri(), ROOKERY_MONGODB_DB: database });
    raw = await new MongoClient(mongodbUri()).connect();
    const docs = await raw.db(database).collection("task_events").find({ task_id: id }).sort({ sequence: 1 }).toArray();
    const checkpoints = docs.filter((d) => d.kind === "iteration_checkpointed");
    // Only the newest event holds the whole task (`state`); every checkpoint here is older.
    expect(checkpoints.every((d) => d.state === undefined)).toBe(true);
    expectFlat(checkpoints.map((d) => BSON.calculateObjectSize(d)));
  });
});
