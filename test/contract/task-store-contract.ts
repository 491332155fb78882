// The contract every TaskStore adapter passes. Each adapter's *.test.ts calls
// describeTaskStoreContract with a factory that yields a fresh, empty store.
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FailedPreconditionError, LeaseLostError, ResourceExhaustedError, TaskNotFoundError } from "../../src/domain/errors.js";
import type { Checkpoint, Task } from "../../src/domain/task.js";
import { cancel, checkpoint, claim, complete, createTask, expire, resume, type NewTask } from "../../src/domain/transitions.js";
import type { TaskStore } from "../../src/store/task-store.js";
import { afterAttempt, DEFAULT_WEBHOOK_STATUSES } from "../../src/domain/webhooks.js";

export interface StoreHarness {
  store: TaskStore;
  /** Moves the store's clock forward (for lease expiry). */
  advance(ms: number): void;
}

export function describeTaskStoreContract(name: string, open: () => Promise<StoreHarness>): void {
  describe(`TaskStore contract: ${name}`, () => {
    let h: StoreHarness;
    let store: TaskStore;
    beforeEach(async () => {
      h = await open();
      store = h.store;
    });
    afterEach(async () => {
      await store.close();
    });

    const draft = (over: Partial<NewTask> = {}, createdAt = new Date()) =>
      createTask({ prompt: "p", systemPrompt: "", maxIterations: 5, labels: {}, tools: [], owner: "", ...over }, createdAt);

    const progress = (task: Task, iteration: number) => {
      const cp: Checkpoint = {
        sessionId: task.id,
        iteration,
        maxIterations: task.maxIterations,
        messages: [{ role: "user", content: task.prompt }],
        initialPrompt: task.prompt,
        systemPrompt: task.systemPrompt,
        provider: "openai",
        model: "m",
        toolsEnabled: [],
        lastCheckpointAt: new Date(),
      };
      return { checkpoint: cp, iterations: iteration, usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3 }, added: [] };
    };

    describe("create()", () => {
      it("should store the task in pending with its first event at sequence 1", async () => {
        const { task } = await store.create(draft({ labels: { team: "a" } }));
        const stored = await store.get(task.id);
        expect(stored).toMatchObject({ id: task.id, status: "pending", sequence: 1, labels: { team: "a" } });
        const events = await store.events(task.id, 0, 10);
        expect(events.map((e) => [e.sequence, e.status, e.kind])).toEqual([[1, "pending", "status_changed"]]);
      });

      it("should return the first task, not a second one, for a repeated request_id of the same owner", async () => {
        const first = await store.create(draft({ requestId: "r1", owner: "k" }));
        const again = await store.create(draft({ requestId: "r1", owner: "k" }));
        expect(first.created).toBe(true);
        expect(again.created).toBe(false);
        expect(again.task.id).toBe(first.task.id);
        expect(await store.list({ statuses: [], labels: {}, limit: 10 })).toHaveLength(1);
      });

      it("should keep request_ids of different owners apart", async () => {
        const a = await store.create(draft({ requestId: "r1", owner: "a" }));
        const b = await store.create(draft({ requestId: "r1", owner: "b" }));
        expect(b.created).toBe(true);
        expect(b.task.id).not.toBe(a.task.id);
      });

      it("should create exactly one task when 20 creates race on one request_id", async () => {
        const results = await Promise.all(Array.from({ length: 20 }, () => store.create(draft({ requestId: "race" }))));
        expect(new Set(results.map((r) => r.task.id)).size).toBe(1);
        expect(results.filter((r) => r.created)).toHaveLength(1);
      });
    });

    describe("get()", () => {
      it("should return undefined for an unknown id", async () => {
        expect(await store.get(randomUUID())).toBeUndefined();
      });

      it("should round-trip every field of the task, checkpoint included", async () => {
        const { task } = await store.create(
          draft({
            provider: "openai",
            model: "m",
            requestId: "x",
            tools: [{ name: "t", description: "d", parameters: { type: "object" } }],
          }),
        );
        const { task: running } = (await store.claimNext(claim("w1", 60_000)))!;
        const p = progress(running, 1);
        await store.commit(task.id, checkpoint(running.lease!.token, p));
        const stored = (await store.get(task.id))!;
        expect(stored.checkpoint).toEqual(p.checkpoint);
        expect(stored.usage).toEqual(p.usage);
        expect(stored.tools).toEqual(task.tools);
        expect(stored.createdAt).toEqual(task.createdAt);
        expect(stored.lease).toEqual(running.lease);
        expect(stored).toMatchObject({ provider: "openai", model: "m", requestId: "x", iterations: 1, sequence: 3 });
      });

      it("should keep a 256 KiB prompt, system prompt and tools whole through claim, checkpoints and completion, its events showing the prompt's head", async () => {
        const prompt = "é".repeat(128 * 1024);
        const systemPrompt = "s".repeat(256 * 1024);
        const tools = [
          { name: "lookup", description: "d".repeat(64 * 1024), parameters: { type: "object", properties: { q: { type: "string" } } } },
        ];
        const { task } = await store.create(draft({ prompt, systemPrompt, tools }));
        const { task: running } = (await store.claimNext(claim("w1", 60_000)))!;
        expect(running).toMatchObject({ prompt, systemPrompt, tools });
        for (let n = 1; n <= 3; n++) await store.commit(task.id, checkpoint(running.lease!.token, progress(running, n)));
        const whole = (await store.get(task.id))!;
        expect(whole).toMatchObject({
          prompt,
          systemPrompt,
          iterations: 3,
          checkpoint: { initialPrompt: prompt, systemPrompt, iteration: 3 },
        });
        expect(whole.promptTruncated).toBeUndefined();
        const [listed] = await store.list({ statuses: [], labels: {}, limit: 1 });
        expect(listed).toMatchObject({ prompt, systemPrompt, tools });
        await store.commit(task.id, complete(running.lease!.token, "done", progress(running, 4)));
        expect(await store.get(task.id)).toMatchObject({ prompt, systemPrompt, tools, status: "completed", result: "done" });
        const events = await store.events(task.id, 0, 10);
        expect(events).toHaveLength(6);
        for (const e of events)
          expect(e.task).toMatchObject({ prompt: "é".repeat(1_000), promptTruncated: true, systemPrompt: "", tools: [] });
      });
    });

    describe("commit()", () => {
      it("should write the transition and the next event together", async () => {
        const { task } = await store.create(draft());
        const { task: cancelled, event } = await store.commit(task.id, cancel("stop"));
        expect(cancelled).toMatchObject({ status: "cancelled", error: "stop", sequence: 2 });
        expect(event).toMatchObject({ sequence: 2, status: "cancelled", previousStatus: "pending" });
        expect((await store.events(task.id, 0, 10)).map((e) => e.sequence)).toEqual([1, 2]);
      });

      it("should write nothing when the transition is refused", async () => {
        const { task } = await store.create(draft());
        await store.commit(task.id, cancel(""));
        await expect(store.commit(task.id, cancel(""))).rejects.toBeInstanceOf(FailedPreconditionError);
        expect((await store.get(task.id))!.sequence).toBe(2);
        expect(await store.events(task.id, 0, 10)).toHaveLength(2);
      });

      it("should throw TaskNotFoundError for an unknown id", async () => {
        await expect(store.commit(randomUUID(), cancel(""))).rejects.toBeInstanceOf(TaskNotFoundError);
      });

      it("should keep sequences dense when 30 commits race on one task", async () => {
        const { task } = await store.create(draft());
        const { task: running } = (await store.claimNext(claim("w", 60_000)))!;
        const token = running.lease!.token;
        await Promise.all(Array.from({ length: 30 }, (_, i) => store.commit(task.id, checkpoint(token, progress(running, i + 1)))));
        const events = await store.events(task.id, 0, 100);
        expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
      });
    });

    describe("events()", () => {
      it("should return only events after the given sequence, in order, up to the limit", async () => {
        const { task } = await store.create(draft());
        const { task: running } = (await store.claimNext(claim("w", 60_000)))!;
        for (let i = 1; i <= 4; i++) await store.commit(task.id, checkpoint(running.lease!.token, progress(running, i)));
        expect((await store.events(task.id, 2, 2)).map((e) => e.sequence)).toEqual([3, 4]);
        expect(await store.events(task.id, 6, 10)).toEqual([]);
      });
    });

    describe("claimNext()", () => {
      it("should claim the oldest pending task and give it a lease", async () => {
        const older = await store.create(draft({}, new Date(Date.now() - 1000)));
        await store.create(draft());
        const claimed = await store.claimNext(claim("w1", 60_000));
        expect(claimed?.task).toMatchObject({ id: older.task.id, status: "running", lease: { owner: "w1" } });
        expect(claimed?.event).toMatchObject({ sequence: 2, status: "running", previousStatus: "pending" });
      });

      it("should return undefined when nothing is claimable", async () => {
        await store.create(draft());
        await store.claimNext(claim("w1", 60_000));
        expect(await store.claimNext(claim("w2", 60_000))).toBeUndefined();
      });

      it("should never give one task to two of 10 racing claimers", async () => {
        for (let i = 0; i < 3; i++) await store.create(draft());
        const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => store.claimNext(claim(`w${i}`, 60_000))));
        const ids = claims.flatMap((c) => (c ? [c.task.id] : []));
        expect(ids).toHaveLength(3);
        expect(new Set(ids).size).toBe(3);
      });

      it("should reclaim a running task once its lease expired, fencing out the old holder", async () => {
        const { task } = await store.create(draft());
        const first = (await store.claimNext(claim("w1", 1_000)))!;
        expect(await store.claimNext(claim("w2", 1_000))).toBeUndefined();
        h.advance(1_500);
        const second = (await store.claimNext(claim("w2", 1_000)))!;
        expect(second.task).toMatchObject({ id: task.id, status: "running", lease: { owner: "w2" } });
        expect(second.event.previousStatus).toBe("running");
        await expect(store.commit(task.id, complete(first.task.lease!.token, "stale", progress(first.task, 1)))).rejects.toBeInstanceOf(
          LeaseLostError,
        );
        expect(await store.renewLease(task.id, first.task.lease!.token, new Date(Date.now() + 5000))).toBe(false);
      });
    });

    describe("renewLease()", () => {
      it("should extend the lease of its holder so the task is not reclaimed", async () => {
        await store.create(draft());
        const first = (await store.claimNext(claim("w1", 1_000)))!;
        h.advance(800);
        expect(await store.renewLease(first.task.id, first.task.lease!.token, new Date(Date.now() + 1_800 + 1_000))).toBe(true);
        h.advance(800);
        expect(await store.claimNext(claim("w2", 1_000))).toBeUndefined();
      });

      it("should refuse a task that is no longer running", async () => {
        const { task } = await store.create(draft());
        const first = (await store.claimNext(claim("w1", 60_000)))!;
        await store.commit(task.id, cancel(""));
        expect(await store.renewLease(task.id, first.task.lease!.token, new Date(Date.now() + 60_000))).toBe(false);
      });
    });

    describe("list()", () => {
      it("should list a task without its checkpoint, which Get still returns", async () => {
        const { task } = await store.create(draft());
        const running = (await store.claimNext(claim("w", 60_000)))!.task;
        await store.commit(task.id, checkpoint(running.lease!.token, progress(running, 1)));
        const [row] = await store.list({ statuses: [], labels: {}, limit: 1 });
        expect(row).toMatchObject({ id: task.id, iterations: 1 });
        expect(row!.checkpoint).toBeUndefined();
        expect((await store.get(task.id))?.checkpoint?.messages).toEqual([{ role: "user", content: "p" }]);
      });

      it("should page newest first without skipping or repeating tasks created in the same millisecond", async () => {
        const at = new Date();
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) ids.push((await store.create(draft({}, at))).task.id);
        const seen: string[] = [];
        let after: { createdAt: Date; id: string } | undefined;
        for (;;) {
          const page = await store.list({ statuses: [], labels: {}, limit: 3, ...(after ? { after } : {}) });
          seen.push(...page.map((t) => t.id));
          if (page.length < 3) break;
          const last = page[page.length - 1]!;
          after = { createdAt: last.createdAt, id: last.id };
        }
        expect(seen).toEqual([...ids].sort().reverse());
      });

      it("should order by creation time, newest first", async () => {
        const old = await store.create(draft({}, new Date(Date.now() - 60_000)));
        const recent = await store.create(draft());
        const page = await store.list({ statuses: [], labels: {}, limit: 10 });
        expect(page.map((t) => t.id)).toEqual([recent.task.id, old.task.id]);
      });

      it("should filter by status, labels and owner", async () => {
        const a = await store.create(draft({ labels: { team: "a", env: "prod" }, owner: "k1" }));
        await store.create(draft({ labels: { team: "b" }, owner: "k1" }));
        await store.create(draft({ labels: { team: "a" }, owner: "k2" }));
        await store.commit(a.task.id, cancel(""));
        const byLabel = await store.list({ owner: "k1", statuses: [], labels: { team: "a" }, limit: 10 });
        expect(byLabel.map((t) => t.id)).toEqual([a.task.id]);
        const byStatus = await store.list({ owner: "k1", statuses: ["cancelled"], labels: {}, limit: 10 });
        expect(byStatus.map((t) => t.id)).toEqual([a.task.id]);
        expect(await store.list({ owner: "k1", statuses: ["pending"], labels: { env: "prod" }, limit: 10 })).toEqual([]);
        expect(await store.list({ statuses: [], labels: { team: "a" }, limit: 10 })).toHaveLength(2);
      });
    });

    describe("deadlines, purge and delete", () => {
      it("should list PENDING tasks past their deadline or queue deadline, and INPUT_REQUIRED ones past their deadline", async () => {
        const now = new Date();
        const queued = await store.create(draft({ queueTimeoutMs: 1_000 }, new Date(now.getTime() - 2_000)));
        const late = await store.create(draft({ timeoutMs: 1_000 }, new Date(now.getTime() - 2_000)));
        await store.create(draft({ timeoutMs: 60_000, queueTimeoutMs: 60_000 }, now));
        expect((await store.expired(now, 10)).sort()).toEqual([queued.task.id, late.task.id].sort());
        const { task } = await store.commit(queued.task.id, expire());
        expect(task).toMatchObject({ status: "failed", errorCode: "queue_timeout" });
        expect(await store.expired(now, 10)).toEqual([late.task.id]);
      });

      it("should list terminal tasks past their retention, and delete one with its events and output in one step", async () => {
        const kept = await store.create(draft({ retentionMs: 60_000 }));
        const short = await store.create(draft({ retentionMs: 1 }));
        await store.commit(kept.task.id, cancel(""));
        await store.commit(short.task.id, cancel(""));
        await store.appendOutput({ taskId: short.task.id, iteration: 1, attempt: 32, offset: 0, endOffset: 1, parts: [{ text: "x" }] });
        const later = new Date(Date.now() + 1_000);
        expect(await store.purgeable(later, 10)).toEqual([short.task.id]);
        expect(await store.delete(short.task.id)).toBe(true);
        expect(await store.get(short.task.id)).toBeUndefined();
        expect(await store.events(short.task.id, 0, 10)).toEqual([]);
        expect(await store.readOutput(short.task.id, 1, 0, 0)).toEqual([]);
        expect((await store.list({ statuses: [], labels: {}, limit: 10 })).map((t) => t.id)).toEqual([kept.task.id]);
        await expect(store.commit(short.task.id, cancel(""))).rejects.toThrow(TaskNotFoundError);
        expect(await store.delete(short.task.id)).toBe(false);
        expect(await store.purgeable(later, 10)).toEqual([]);
      });

      it("should purge a task only while it is due: not before its time, and not once it was resumed since it was listed", async () => {
        const { task } = await store.create(draft({ retentionMs: 60_000 }));
        const { task: cancelled } = await store.commit(task.id, cancel(""));
        const due = new Date(cancelled.purgeAt!.getTime() + 1);
        expect(await store.purgeable(due, 10)).toEqual([task.id]);
        expect(await store.delete(task.id, new Date(cancelled.purgeAt!.getTime() - 1))).toBe(false);

        // A Resume between the purge's list and its delete: the task is PENDING again, kept.
        await store.commit(task.id, resume({ message: "go on", toolResults: [] }));
        expect(await store.delete(task.id, due)).toBe(false);
        expect(await store.get(task.id)).toMatchObject({ status: "pending" });
        expect(await store.events(task.id, 0, 10)).toHaveLength(3);

        const { task: again } = await store.commit(task.id, cancel(""));
        expect(await store.delete(task.id, new Date(again.purgeAt!.getTime() + 1))).toBe(true);
        expect(await store.get(task.id)).toBeUndefined();
      });

      it("should refuse every write of a running task once it is deleted", async () => {
        const { task } = await store.create(draft());
        const claimed = await store.claimNext(claim("w", 60_000, "token"));
        expect(claimed?.task.id).toBe(task.id);
        await store.delete(task.id);
        await expect(store.commit(task.id, checkpoint("token", progress(task, 1)))).rejects.toThrow(TaskNotFoundError);
        expect(await store.claimNext(claim("w2", 60_000))).toBeUndefined();
      });
    });

    describe("output chunks", () => {
      const chunk = (iteration: number, attempt: number, offset: number, text: string) => ({
        taskId: "t1",
        iteration,
        attempt,
        offset,
        endOffset: offset + text.length,
        parts: [{ text }],
      });

      it("should read back the chunks of one iteration that end after a position, attempt by attempt in order", async () => {
        await store.appendOutput(chunk(1, 32, 0, "hello "));
        await store.appendOutput(chunk(1, 32, 6, "wor"));
        await store.appendOutput({
          ...chunk(1, 32, 9, ""),
          endOffset: 12,
          parts: [{ call: { index: 0, id: "c1", name: "calc", arguments: "{}" } }],
        });
        await store.appendOutput(chunk(1, 33, 12, "again"));
        await store.appendOutput(chunk(2, 32, 0, "next"));
        const read = await store.readOutput("t1", 1, 32, 6);
        expect(read.map((c) => [c.attempt, c.offset, c.endOffset])).toEqual([
          [32, 6, 9],
          [32, 9, 12],
          [33, 12, 17],
        ]);
        expect(read[1]!.parts).toEqual([{ call: { index: 0, id: "c1", name: "calc", arguments: "{}" } }]);
        expect((await store.readOutput("t1", 1, 33, 0)).map((c) => c.offset)).toEqual([12]);
        expect(await store.readOutput("t1", 1, 64, 0)).toEqual([]);
      });

      it("should delete the chunks of earlier iterations, then those of a run's attempts and older runs' but not a later run's", async () => {
        await store.appendOutput(chunk(1, 32, 0, "a"));
        await store.appendOutput(chunk(2, 32, 0, "b"));
        await store.deleteOutput("t1", { iteration: 2 });
        expect(await store.readOutput("t1", 1, 0, 0)).toEqual([]);
        expect(await store.readOutput("t1", 2, 0, 0)).toHaveLength(1);
        // Run 1 (attempts 32–63) ended; the task was resumed and run 2 (attempts 64–) streams.
        await store.appendOutput(chunk(2, 33, 1, "c"));
        await store.appendOutput(chunk(3, 64, 0, "d"));
        await store.deleteOutput("t1", { attempt: 64 });
        expect(await store.readOutput("t1", 2, 0, 0)).toEqual([]);
        expect((await store.readOutput("t1", 3, 0, 0)).map((c) => c.parts)).toEqual([[{ text: "d" }]]);
      });
    });

    describe("webhook deliveries", () => {
      const webhook = { url: "https://hooks.example/t", statuses: DEFAULT_WEBHOOK_STATUSES };
      const policy = { baseDelayMs: 10_000, maxDelayMs: 60_000, horizonMs: 3_600_000 };
      const soon = () => new Date(Date.now() + 1_000);
      const allDeliveries = (taskId: string) => store.deliveries(taskId, { afterSequence: 0, limit: 1_000 });

      it("should store a delivery with the event that causes it, and none for statuses not asked for", async () => {
        const { task, delivery: created } = await store.create(draft({ webhook }));
        expect(created).toBeUndefined(); // PENDING is not among the default statuses
        const { event, delivery } = await store.commit(task.id, cancel("stop"));
        expect(delivery).toMatchObject({
          taskId: task.id,
          sequence: event.sequence,
          status: "cancelled",
          previousStatus: "pending",
          state: "pending",
        });
        expect((await allDeliveries(task.id)).map((d) => [d.id, d.sequence, d.status])).toEqual([[delivery!.id, 2, "cancelled"]]);
        const plain = await store.create(draft());
        await store.commit(plain.task.id, cancel("stop"));
        expect(await allDeliveries(plain.task.id)).toEqual([]);
      });

      it("should write no delivery when the transition that would cause it is refused", async () => {
        const { task } = await store.create(draft({ webhook }));
        await store.commit(task.id, cancel(""));
        await expect(store.commit(task.id, cancel(""))).rejects.toBeInstanceOf(FailedPreconditionError);
        expect(await allDeliveries(task.id)).toHaveLength(1);
      });

      it("should keep exactly one delivery, the winner's, when 10 transitions that cause one race on a task", async () => {
        const { task } = await store.create(draft({ webhook }));
        const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.commit(task.id, cancel(`racer ${i}`))));
        const winner = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        expect(winner).toHaveLength(1);
        // A page of one, while the losers' intents (on MongoDB) share the winner's sequence: read with it.
        expect((await store.deliveries(task.id, { afterSequence: 0, limit: 1 })).map((d) => d.id)).toEqual([winner[0]!.delivery!.id]);
        expect((await allDeliveries(task.id)).map((d) => d.id)).toEqual([winner[0]!.delivery!.id]);
        const due = await store.dueDeliveries(soon(), 10, 30_000);
        expect(due.map((d) => [d.id, d.task.error])).toEqual([[winner[0]!.delivery!.id, winner[0]!.task.error]]);
      });

      it("should hand out a task's deliveries one at a time, in sequence order, each held for its lease", async () => {
        const all = { webhook: { ...webhook, statuses: [...DEFAULT_WEBHOOK_STATUSES, "pending" as const, "running" as const] } };
        const { task } = await store.create(draft(all));
        await store.claimNext(claim("w", 60_000, "token"));
        await store.commit(task.id, complete("token", "done", progress(task, 1)));
        const first = await store.dueDeliveries(soon(), 10, 30_000);
        expect(first.map((d) => [d.sequence, d.status])).toEqual([[1, "pending"]]);
        expect(await store.dueDeliveries(soon(), 10, 30_000)).toEqual([]); // held; the next waits behind it
        await store.recordDelivery(afterAttempt(first[0]!, { kind: "delivered", statusCode: 204 }, new Date(), policy));
        const second = await store.dueDeliveries(soon(), 10, 30_000);
        expect(second.map((d) => [d.sequence, d.status])).toEqual([[2, "running"]]);
        const retried = afterAttempt(second[0]!, { kind: "refused", statusCode: 500, error: "HTTP 500" }, new Date(), policy);
        await store.recordDelivery(retried);
        expect(await store.dueDeliveries(soon(), 10, 30_000)).toEqual([]); // backing off, and the third waits
        const later = await store.dueDeliveries(new Date(Date.now() + 20_000), 10, 30_000);
        expect(later.map((d) => [d.id, d.attempts, d.lastStatusCode])).toEqual([[second[0]!.id, 1, 500]]);
        const states = (await allDeliveries(task.id)).map((d) => [d.sequence, d.state]);
        expect(states).toEqual([
          [1, "delivered"],
          [2, "pending"],
          [3, "pending"],
        ]);
        // Each delivery carries its task as it was right after its event.
        expect(first[0]!.task).toMatchObject({ status: "pending" });
        expect(later[0]!.task).toMatchObject({ status: "running" });
        await store.recordDelivery(afterAttempt(later[0]!, { kind: "delivered", statusCode: 200 }, new Date(), policy));
        const third = await store.dueDeliveries(new Date(Date.now() + 20_000), 10, 30_000);
        expect(third.map((d) => [d.sequence, d.status, d.task.status, d.task.result])).toEqual([[3, "completed", "completed", "done"]]);
      });

      it("should list a task's deliveries a page at a time, by sequence, from after a given sequence", async () => {
        const every = { webhook: { ...webhook, statuses: [...DEFAULT_WEBHOOK_STATUSES, "pending" as const, "running" as const] } };
        const { task } = await store.create(draft(every));
        await store.claimNext(claim("w", 60_000, "token"));
        await store.commit(task.id, complete("token", "done", progress(task, 1)));
        const page = async (afterSequence: number, limit: number) =>
          (await store.deliveries(task.id, { afterSequence, limit })).map((d) => [d.sequence, d.status]);
        expect(await page(0, 2)).toEqual([
          [1, "pending"],
          [2, "running"],
        ]);
        expect(await page(2, 2)).toEqual([[3, "completed"]]);
        expect(await page(1, 1)).toEqual([[2, "running"]]);
        expect(await page(3, 2)).toEqual([]);
      });

      it("should list a task's deliveries without their task snapshots, which only their bodies carry", async () => {
        const { task } = await store.create(draft({ webhook }));
        await store.commit(task.id, cancel("stop"));
        const listed = await allDeliveries(task.id);
        expect(listed.map((d) => [d.sequence, d.status, d.state])).toEqual([[2, "cancelled", "pending"]]);
        expect(listed[0]).not.toHaveProperty("task");
        const [sent] = await store.dueDeliveries(soon(), 10, 30_000);
        expect(sent?.task).toMatchObject({ id: task.id, status: "cancelled" });
      });

      it("should leave the deliveries to a skipped receiver for later", async () => {
        const slow = await store.create(draft({ webhook: { ...webhook, url: "https://slow.example:8443/h" } }));
        const fast = await store.create(draft({ webhook: { ...webhook, url: "https://fast.example/h" } }));
        await store.commit(slow.task.id, cancel(""));
        await store.commit(fast.task.id, cancel(""));
        const taken = await store.dueDeliveries(soon(), 10, 30_000, ["slow.example:8443"]);
        expect(taken.map((d) => d.taskId)).toEqual([fast.task.id]);
        expect((await store.dueDeliveries(soon(), 10, 30_000)).map((d) => d.taskId)).toEqual([slow.task.id]);
      });

      it("should let a delivery whose sender died fall due again once its hold has passed", async () => {
        const { task } = await store.create(draft({ webhook }));
        await store.commit(task.id, cancel(""));
        const [taken] = await store.dueDeliveries(soon(), 10, 2_000);
        expect(await store.dueDeliveries(soon(), 10, 2_000)).toEqual([]);
        const again = await store.dueDeliveries(new Date(Date.now() + 5_000), 10, 2_000);
        expect(again.map((d) => d.id)).toEqual([taken!.id]);
      });

      it("should hold a delivery just committed without a look, as a look holds one: left out of looks until its hold passes", async () => {
        const { task } = await store.create(draft({ webhook }));
        const { delivery } = await store.commit(task.id, cancel(""));
        const held = await store.holdDelivery(delivery!, new Date(), 2_000);
        expect(held).toMatchObject({ id: delivery!.id, taskId: task.id, state: "pending", attempts: 0, status: "cancelled" });
        expect(held!.nextAttemptAt.getTime()).toBeGreaterThan(Date.now() + 1_000);
        expect(await store.dueDeliveries(soon(), 10, 2_000)).toEqual([]);
        expect(await store.holdDelivery(delivery!, new Date(), 2_000)).toBeUndefined(); // taken already
        const again = await store.dueDeliveries(new Date(Date.now() + 5_000), 10, 2_000);
        expect(again.map((d) => d.id)).toEqual([delivery!.id]);
      });

      it("should not hold a delivery while an earlier one of its task is pending, nor one a look has taken", async () => {
        const { task } = await store.create(draft({ webhook: { ...webhook, statuses: ["running", "cancelled"] } }));
        const { delivery: first } = (await store.claimNext(claim("w", 60_000, "token")))!;
        const { delivery: second } = await store.commit(task.id, cancel(""));
        expect(await store.holdDelivery(second!, new Date(), 30_000)).toBeUndefined(); // waits behind the first
        const [taken] = await store.dueDeliveries(soon(), 10, 30_000);
        expect(taken!.id).toBe(first!.id);
        expect(await store.holdDelivery(first!, new Date(), 30_000)).toBeUndefined();
        await store.recordDelivery(afterAttempt(taken!, { kind: "delivered", statusCode: 204 }, new Date(), policy));
        expect((await store.holdDelivery(second!, new Date(), 30_000))?.id).toBe(second!.id);
      });

      it("should not hold a delivery made after its task's receiver answered 410, nor hand it out later", async () => {
        const { task } = await store.create(draft({ webhook: { ...webhook, statuses: ["running", "cancelled"] } }));
        await store.claimNext(claim("w", 60_000, "token"));
        const [first] = await store.dueDeliveries(soon(), 10, 30_000);
        await store.recordDelivery(afterAttempt(first!, { kind: "gone", statusCode: 410 }, new Date(), policy));
        const { delivery } = await store.commit(task.id, cancel(""));
        expect(await store.holdDelivery(delivery!, new Date(), 30_000)).toBeUndefined();
        expect(await store.dueDeliveries(new Date(Date.now() + 60_000), 10, 30_000)).toEqual([]);
      });

      it("should stop the task's pending and later deliveries after a 410", async () => {
        const { task } = await store.create(draft({ webhook: { ...webhook, statuses: ["running", "input_required", "cancelled"] } }));
        await store.claimNext(claim("w", 60_000, "token"));
        await store.commit(task.id, cancel("")); // two pending now: RUNNING and CANCELLED
        const [first] = await store.dueDeliveries(soon(), 10, 30_000);
        await store.recordDelivery(afterAttempt(first!, { kind: "gone", statusCode: 410 }, new Date(), policy));
        expect((await allDeliveries(task.id)).map((d) => [d.sequence, d.state])).toEqual([
          [2, "stopped"],
          [3, "stopped"],
        ]);
        expect(await store.dueDeliveries(new Date(Date.now() + 60_000), 10, 30_000)).toEqual([]);
      });

      it("should delete a task's deliveries with the task", async () => {
        const { task } = await store.create(draft({ webhook }));
        await store.commit(task.id, cancel(""));
        await store.delete(task.id);
        expect(await allDeliveries(task.id)).toEqual([]);
        expect(await store.dueDeliveries(soon(), 10, 30_000)).toEqual([]);
      });
    });

    describe("statusCounts()", () => {
      it("should count the tasks in each status, every status present", async () => {
        await store.create(draft());
        await store.create(draft());
        const { task } = await store.create(draft());
        await store.commit(task.id, cancel(""));
        expect(await store.statusCounts()).toEqual({ pending: 2, running: 0, input_required: 0, completed: 0, failed: 0, cancelled: 1 });
      });
    });

    describe("create() with maxActive", () => {
      it("should count only the owner's pending, running and input_required tasks", async () => {
        await store.create(draft({ owner: "k" }), { maxActive: 2 });
        const done = await store.create(draft({ owner: "k" }), { maxActive: 2 });
        await store.create(draft({ owner: "other" }), { maxActive: 2 });
        await store.commit(done.task.id, cancel(""));
        await store.create(draft({ owner: "k" }), { maxActive: 2 });
        await expect(store.create(draft({ owner: "k" }), { maxActive: 2 })).rejects.toThrow(ResourceExhaustedError);
      });

      it("should accept exactly maxActive of many concurrent creates", async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 30 }, () => store.create(draft({ owner: "busy" }), { maxActive: 5 })),
        );
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(5);
        for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ResourceExhaustedError);
        expect(await store.list({ owner: "busy", statuses: [], labels: {}, limit: 100 })).toHaveLength(5);
      });

      it("should return the task a repeated request_id names even at the limit", async () => {
        const first = await store.create(draft({ owner: "k", requestId: "again" }), { maxActive: 1 });
        const retry = await store.create(draft({ owner: "k", requestId: "again" }), { maxActive: 1 });
        expect(retry).toMatchObject({ created: false, task: { id: first.task.id } });
      });
    });
  });
}
