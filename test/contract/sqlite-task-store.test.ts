import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { expect, it } from "vitest";
import { FailedPreconditionError } from "../../src/domain/errors.js";
import type { Task } from "../../src/domain/task.js";
import { cancel, checkpoint, claim, complete, createTask } from "../../src/domain/transitions.js";
import { toEventDocument, toTaskDocument } from "../../src/store/task-document.js";
import { SqliteTaskStore } from "../../src/store/sqlite/sqlite-task-store.js";
import { conversationAfter, progressAt } from "./growing-conversation.js";
import { describeTaskStoreContract } from "./task-store-contract.js";

describeTaskStoreContract("sqlite (:memory:)", async () => {
  let offset = 0;
  const store = new SqliteTaskStore({ path: ":memory:", now: () => new Date(Date.now() + offset) });
  return { store, advance: (ms) => void (offset += ms) };
});

const newDraft = (prompt: string) =>
  createTask({ prompt, systemPrompt: "", maxIterations: 5, labels: {}, tools: [], owner: "" }, new Date());

/** Runs `work` with a store path in a new temporary directory, removed after. */
async function inTempDir(work: (path: string, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "rookery-sqlite-"));
  try {
    await work(join(dir, "tasks.db"), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A task created in `store` and claimed: RUNNING, with a lease. */
async function runningTask(store: SqliteTaskStore, prompt: string): Promise<Task> {
  const { task } = await store.create(newDraft(prompt));
  return (await store.commit(task.id, claim("w", 60_000))).task;
}

it("should store the creates of one group commit beside one that fails, and reject only that one", async () => {
  const store = new SqliteTaskStore({ path: ":memory:" });
  const existing = await store.create(newDraft("existing"));
  const clash = newDraft("clash");
  const sameId = { task: { ...clash.task, id: existing.task.id }, event: { ...clash.event, taskId: existing.task.id } };
  const [before, failed, after] = await Promise.allSettled([
    store.create(newDraft("before")),
    store.create(sameId),
    store.create(newDraft("after")),
  ]);
  expect(failed).toMatchObject({ status: "rejected", reason: { code: "SQLITE_CONSTRAINT_UNIQUE" } });
  expect(before.status === "fulfilled" && (await store.get(before.value.task.id))?.prompt).toBe("before");
  expect(after.status === "fulfilled" && (await store.get(after.value.task.id))?.prompt).toBe("after");
  expect((await store.get(existing.task.id))?.prompt).toBe("existing");
  await store.close();
});

it("should keep the writes of one group commit when a transition in it is refused, and refuse only that one", async () => {
  const store = new SqliteTaskStore({ path: ":memory:" });
  const { task } = await store.create(newDraft("cancel me"));
  const [first, second, created] = await Promise.allSettled([
    store.commit(task.id, cancel("first")),
    store.commit(task.id, cancel("second")), // already cancelled by the first, in the same transaction
    store.create(newDraft("beside")),
  ]);
  expect(first.status).toBe("fulfilled");
  expect(second).toMatchObject({ status: "rejected", reason: expect.any(FailedPreconditionError) });
  expect((await store.get(task.id))?.status).toBe("cancelled");
  expect((await store.events(task.id, 0, 10)).map((e) => e.status)).toEqual(["pending", "cancelled"]);
  expect(created.status === "fulfilled" && (await store.get(created.value.task.id))?.prompt).toBe("beside");
  await store.close();
});

it("should commit creates still waiting for their group commit when the store is closed, more than one group's worth", async () => {
  await inTempDir(async (path) => {
    const store = new SqliteTaskStore({ path });
    const prompts = Array.from({ length: 40 }, (_, i) => `p${i}`);
    const pending = prompts.map((prompt) => store.create(newDraft(prompt)));
    await store.close();
    const ids = (await Promise.all(pending)).map((r) => r.task.id);
    const reopened = new SqliteTaskStore({ path });
    expect((await Promise.all(ids.map((id) => reopened.get(id)))).map((t) => t?.prompt)).toEqual(prompts);
    await reopened.close();
  });
});

it("should answer the first 16 writes of a burst before it writes the rest, so their replies go out while the rest are written", async () => {
  await inTempDir(async (path) => {
    const store = new SqliteTaskStore({ path });
    const reader = new Database(path, { readonly: true });
    const storedTasks = () => (reader.prepare("SELECT COUNT(*) AS n FROM tasks").get() as { n: number }).n;
    const pending = Array.from({ length: 40 }, (_, i) => store.create(newDraft(`burst ${i}`)));
    await pending[0];
    expect(storedTasks()).toBe(16); // the first group is committed and answered; the other 24 wait for the next turns
    await Promise.all(pending);
    expect(storedTasks()).toBe(40);
    reader.close();
    await store.close();
  });
});

/** Tasks in the database file alone (without its -wal), as a reader that ignored the log would see them. */
function tasksInFileAlone(path: string, dir: string): number {
  copyFileSync(path, join(dir, "file-alone.db"));
  const copy = new Database(join(dir, "file-alone.db"), { readonly: true });
  try {
    const schemaCopied = copy.prepare("SELECT 1 FROM sqlite_master WHERE name = 'tasks'").get() !== undefined;
    return schemaCopied ? (copy.prepare("SELECT COUNT(*) AS n FROM tasks").get() as { n: number }).n : 0;
  } catch {
    return -1; // a copy torn by a checkpoint in progress: look again
  } finally {
    copy.close();
  }
}

it("should finish close() in a process with nothing else to keep it alive (the checkpointer thread is held until it exits)", async () => {
  await inTempDir(async (path, dir) => {
    // A script whose only work is a store: before the fix, the unref'd checkpointer let the
    // process end inside close(), with exit code 13 (an unsettled top-level await).
    const script = [
      `import { SqliteTaskStore } from ${JSON.stringify(new URL("../../src/store/sqlite/sqlite-task-store.ts", import.meta.url).pathname)};`,
      `const store = new SqliteTaskStore({ path: ${JSON.stringify(path)} });`,
      "await store.close();",
      'console.log("closed");',
    ].join("\n");
    writeFileSync(join(dir, "close.mts"), script);
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(dir, "close.mts")]);
    expect(stdout.trim()).toBe("closed");
    expect(existsSync(`${path}-wal`)).toBe(false);
  });
});

it("should copy commits into the database file from the checkpointer thread, not in the commit, and leave no log after close", async () => {
  await inTempDir(async (path, dir) => {
    const store = new SqliteTaskStore({ path });
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.create(newDraft(`t${i}`))));
    // 50 small tasks are a few pages of log, far below the 1,000 at which a commit would
    // checkpoint by itself: only the thread moves them into the file (after its quiet interval).
    await expect.poll(() => tasksInFileAlone(path, dir), { timeout: 30_000 }).toBe(50);
    await store.close();
    expect(existsSync(`${path}-wal`)).toBe(false); // the thread's connection is closed too: the last one out removes the log
  });
});

it("should leave a light load in the log rather than copy it on every tick, and copy it once enough pages wait", async () => {
  await inTempDir(async (path, dir) => {
    // No copy by time here: only by the pages waiting in the log.
    // The schema and five small tasks are ~40 pages of log; 16 tasks with 60 KB prompts, one
    // group commit, are hundreds (one commit, so that no copy can fall between its parts).
    const store = new SqliteTaskStore({ path, checkpoint: { pages: 200, quietMs: 3_600_000 } });
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.create(newDraft(`light ${i}`))));
    // A copy of the whole log makes the next commit start it over and fsync its header on the
    // store's thread; ten ticks of the thread pass, and these few pages are still only in the log.
    await sleep(1_000);
    expect(tasksInFileAlone(path, dir)).toBe(0);
    // Well over 200 pages: the thread copies them all.
    await Promise.all(Array.from({ length: 16 }, (_, i) => store.create(newDraft(`heavy ${i} ${"x".repeat(60_000)}`))));
    await expect.poll(() => tasksInFileAlone(path, dir), { timeout: 30_000 }).toBe(21);
    await store.close();
  });
});

it("should write an iteration's checkpoint as the messages it added: the task row stays flat over 50 iterations, Get returns them all", async () => {
  await inTempDir(async (path) => {
    const store = new SqliteTaskStore({ path });
    const running = await runningTask(store, "grow");
    const raw = new Database(path, { readonly: true });
    const docBytes: number[] = [];
    for (let n = 1; n <= 50; n++) {
      await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, n)));
      const row = raw.prepare("SELECT length(doc) AS bytes, checkpoint_messages AS messages FROM tasks WHERE id = ?").get(running.id) as {
        bytes: number;
        messages: number;
      };
      expect(row.messages).toBe(1 + 2 * n);
      docBytes.push(row.bytes);
    }
    raw.close();
    // The conversation grew 50-fold; a row holding it would have grown with it.
    expect(Math.max(...docBytes)).toBeLessThan(1.2 * docBytes[0]!);
    expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(50));
    const done = await store.commit(running.id, complete(running.lease!.token, "done", progressAt(running, 51)));
    expect(done.task.checkpoint?.messages).toEqual(conversationAfter(51));
    expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(51));
    await store.close();
  });
});

it("should store the conversation of a task created with a checkpoint in rows of its own", async () => {
  await inTempDir(async (path) => {
    const store = new SqliteTaskStore({ path });
    const draft = newDraft("grow");
    const withCheckpoint = { ...draft, task: { ...draft.task, checkpoint: progressAt(draft.task, 2).checkpoint } };
    const { task } = await store.create(withCheckpoint);
    expect((await store.get(task.id))?.checkpoint?.messages).toEqual(conversationAfter(2));
    await store.close();
    const raw = new Database(path, { readonly: true });
    const row = raw.prepare("SELECT checkpoint_messages AS messages FROM tasks WHERE id = ?").get(task.id) as { messages: number };
    raw.close();
    expect(row.messages).toBe(5);
  });
});

it("should read a task whose doc holds its conversation inline (written before migration 6) and move it out at its next write", async () => {
  await inTempDir(async (path) => {
    const store = new SqliteTaskStore({ path });
    const running = await runningTask(store, "grow");
    const inline = toTaskDocument({ ...running, checkpoint: progressAt(running, 3).checkpoint });
    const raw = new Database(path);
    raw.prepare("UPDATE tasks SET doc = ?, checkpoint_messages = 0 WHERE id = ?").run(JSON.stringify(inline), running.id);
    expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(3));
    await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, 4)));
    const row = raw.prepare("SELECT doc, checkpoint_messages AS messages FROM tasks WHERE id = ?").get(running.id) as {
      doc: string;
      messages: number;
    };
    raw.close();
    expect(row.messages).toBe(9);
    expect((JSON.parse(row.doc) as { checkpoint: { messages: unknown[] } }).checkpoint.messages).toEqual([]);
    expect((await store.get(running.id))?.checkpoint?.messages).toEqual(conversationAfter(4));
    await store.close();
  });
});

it("should store a 250 KB prompt once, apart: the doc each iteration rewrites holds only its head and stays under 4 KB", async () => {
  await inTempDir(async (path) => {
    const store = new SqliteTaskStore({ path });
    const prompt = `long ${"x".repeat(250_000)}`;
    const running = await runningTask(store, prompt);
    const raw = new Database(path, { readonly: true });
    const docBytes = () => (raw.prepare("SELECT length(doc) AS bytes FROM tasks WHERE id = ?").get(running.id) as { bytes: number }).bytes;
    const inputRows = () => (raw.prepare("SELECT COUNT(*) AS n FROM task_inputs").get() as { n: number }).n;
    // Its checkpoint carries the prompt too, as the agent loop's does (initial_prompt).
    const progress = (n: number) => {
      const p = progressAt(running, n);
      return { ...p, checkpoint: { ...p.checkpoint, initialPrompt: prompt } };
    };
    for (let n = 1; n <= 5; n++) {
      await store.commit(running.id, checkpoint(running.lease!.token, progress(n)));
      expect(docBytes()).toBeLessThan(4_096);
    }
    expect(inputRows()).toBe(1);
    expect(await store.get(running.id)).toMatchObject({ prompt, checkpoint: { initialPrompt: prompt, iteration: 5 } });
    expect(await store.delete(running.id)).toBe(true);
    expect(inputRows()).toBe(0);
    raw.close();
    await store.close();
  });
});

it("should read a task whose doc holds a long prompt and tools inline (written before migration 7) and move them out at its next write", async () => {
  await inTempDir(async (path) => {
    const store = new SqliteTaskStore({ path });
    const running = await runningTask(store, "short");
    const prompt = "p".repeat(5_000);
    const systemPrompt = "s".repeat(5_000);
    const tools = [{ name: "t", description: "d", parameters: { type: "object" } }];
    const raw = new Database(path);
    raw
      .prepare("UPDATE tasks SET doc = ?, inputs_apart = 0 WHERE id = ?")
      .run(JSON.stringify(toTaskDocument({ ...running, prompt, systemPrompt, tools })), running.id);
    raw.prepare("DELETE FROM task_inputs").run();
    expect(await store.get(running.id)).toMatchObject({ prompt, systemPrompt, tools });
    await store.commit(running.id, checkpoint(running.lease!.token, progressAt(running, 1)));
    const row = raw.prepare("SELECT doc, inputs_apart FROM tasks WHERE id = ?").get(running.id) as { doc: string; inputs_apart: number };
    raw.close();
    expect(row.inputs_apart).toBe(1);
    expect(JSON.parse(row.doc)).toMatchObject({ prompt: "p".repeat(1_000), prompt_truncated: true, system_prompt: "", tools: [] });
    expect(await store.get(running.id)).toMatchObject({ prompt, systemPrompt, tools });
    await store.close();
  });
});

it("should carry tasks and events written under schema 1 over to the task_no layout of migration 2", async () => {
  await inTempDir(async (path) => {
    const old = new Database(path);
    old.exec(readFileSync(new URL("../../src/store/sqlite/migrations/0001_schema.sql", import.meta.url), "utf8"));
    old.pragma("user_version = 1");
    const drafts = [newDraft("older"), newDraft("newer")];
    drafts[1]!.task.createdAt = new Date(drafts[0]!.task.createdAt.getTime() + 1);
    for (const { task, event } of drafts) {
      old
        .prepare("INSERT INTO tasks (id, owner, status, created_at, sequence, doc) VALUES (?, ?, ?, ?, ?, ?)")
        .run(task.id, task.owner, task.status, task.createdAt.getTime(), task.sequence, JSON.stringify(toTaskDocument(task)));
      old
        .prepare("INSERT INTO task_events (task_id, sequence, doc) VALUES (?, ?, ?)")
        .run(task.id, event.sequence, JSON.stringify(toEventDocument(event)));
    }
    old.close();

    const store = new SqliteTaskStore({ path });
    expect((await store.list({ statuses: [], labels: {}, limit: 10 })).map((t) => t.prompt)).toEqual(["newer", "older"]);
    const events = await store.events(drafts[0]!.task.id, 0, 10);
    expect(events.map((e) => [e.taskId, e.sequence, e.status])).toEqual([[drafts[0]!.task.id, 1, "pending"]]);
    const added = await store.create(newDraft("after migration"));
    expect((await store.events(added.task.id, 0, 10)).map((e) => e.sequence)).toEqual([1]);
    await store.close();
  });
});
