// Crash and restart with real processes: SIGKILL loses nothing acknowledged
// and the task continues from its checkpoint; SIGTERM hands tasks back at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { childServersOnOneFile } from "../support/child-server.js";
import type { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, expectDense, waitForStatus } from "../support/harness.js";
import { joinedText, storedText, watchOutput } from "../support/watch-output.js";

describe("recovery across process restarts", () => {
  const servers = childServersOnOneFile("restart");
  const { start } = servers;
  let fake: FakeOpenAI;
  beforeAll(async () => {
    await servers.setUp();
    fake = servers.fake;
  });
  afterAll(() => servers.tearDown());

  it("should stream the new attempt's output after SIGKILL mid-iteration and a restart, and store that attempt's text", async () => {
    let crashed = false;
    fake.respond((c) => {
      if (c.prompt !== "crash mid-stream") return { content: "?" };
      if (!crashed) {
        crashed = true; // the first attempt stops after three pieces, and its process dies
        return { content: "doomed words never finished", pieceSize: 4, pauseAt: 3, resume: new Promise(() => undefined) };
      }
      return { content: "the second attempt's answer", pieceSize: 4, paceMs: 5 };
    });
    const first = await start({ ROOKERY_LEASE_MS: "1000" });
    const { task } = await first.client.submit({ prompt: "crash mid-stream" });
    const partial = await watchOutput(first.client, task!.id, {}, (w) => joinedText(w.outputs, 1) === "doomed words");
    first.process.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");

    const second = await start({ ROOKERY_LEASE_MS: "1000" });
    const resumed = await watchOutput(second.client, task!.id, {
      afterSequence: partial.events.at(-1)!.sequence,
      outputOffset: partial.outputs.at(-1)!.endOffset,
    });
    expectDense([...partial.events, ...resumed.events]);
    // The takeover ends the doomed attempt; the new one starts over from 0 under a higher attempt.
    expect(resumed.events[0]).toMatchObject({ status: TaskStatus.RUNNING, previousStatus: TaskStatus.RUNNING });
    const output = resumed.outputs.filter((o) => o.iteration === 1);
    expect(output[0]!.offset).toBe(0n);
    expect(output.every((o) => o.attempt > partial.outputs[0]!.attempt)).toBe(true);
    expect(joinedText(output, 1)).toBe("the second attempt's answer");
    expect(storedText(resumed.events.at(-1))).toBe("the second attempt's answer");
    expect(resumed.order.indexOf("output")).toBeGreaterThan(resumed.order.indexOf("event"));
    second.process.kill("SIGTERM"); // the next tests start their own servers on this file
    expect(await second.exited).toBe(0);
  });

  it("should finish a task after SIGKILL mid-model-call, continuing from its checkpoint with dense events", async () => {
    let killedCallSeen = false;
    fake.respond((c) => {
      if (c.prompt !== "survive a crash") return { content: "?" };
      if (c.turn === 1 && !killedCallSeen) {
        killedCallSeen = true;
        return { hang: true }; // the process dies during this call
      }
      return c.turn < 2 ? { toolCalls: [{ name: "calculator", arguments: `{"expression":"${c.turn}+1"}` }] } : { content: "survived" };
    });
    const first = await start({ ROOKERY_LEASE_MS: "1000" });
    const { task } = await first.client.submit({ prompt: "survive a crash" });
    await fake.waitForCall((c) => c.prompt === "survive a crash" && c.turn === 1);
    first.process.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");

    const second = await start({ ROOKERY_LEASE_MS: "1000" });
    const events = await collectEvents(second.client, task!.id);
    expectDense(events);
    const { task: done } = await second.client.get({ id: task!.id });
    expect(done).toMatchObject({ status: TaskStatus.COMPLETED, result: "survived", iterations: 3 });
    // Turn 0 ran once: the second process continued from the checkpoint, not from scratch.
    expect(fake.callsFor("survive a crash").map((c) => c.turn)).toEqual([0, 1, 1, 2]);
    const statuses = events.map((e) => [TaskStatus[e.previousStatus], TaskStatus[e.status], e.iterations]);
    expect(statuses).toEqual([
      ["UNSPECIFIED", "PENDING", 0],
      ["PENDING", "RUNNING", 0],
      ["RUNNING", "RUNNING", 1], // iteration 1 checkpointed by the first process
      ["RUNNING", "RUNNING", 1], // taken over by the second after the lease expired
      ["RUNNING", "RUNNING", 2],
      ["RUNNING", "COMPLETED", 3],
    ]);
    second.process.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });

  it("should hand running tasks back on SIGTERM so another process takes them at once, not after the lease", async () => {
    let release = false;
    fake.respond((c) => (c.prompt.startsWith("handback") && !release ? { hang: true } : { content: "taken over" }));
    // A lease far longer than the test: only the hand-back lets the second process claim in time.
    const first = await start({ ROOKERY_LEASE_MS: "600000" });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await first.client.submit({ prompt: `handback ${i}` })).task!.id);
    await Promise.all(ids.map((id) => waitForStatus(first.client, id, TaskStatus.RUNNING)));
    first.process.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    release = true;
    const second = await start({ ROOKERY_LEASE_MS: "600000" });
    for (const id of ids) {
      const events = await collectEvents(second.client, id);
      expectDense(events);
      expect(events.map((e) => TaskStatus[e.status])).toEqual(["PENDING", "RUNNING", "PENDING", "RUNNING", "COMPLETED"]);
    }
    second.process.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });

  it(
    "should hand 50 running tasks back on SIGTERM and finish them all on another process, none left RUNNING",
    { timeout: 120_000 },
    async () => {
      let release = false;
      fake.respond((c) => (c.prompt.startsWith("load") && !release ? { hang: true } : { content: "finished under load" }));
      const first = await start({ ROOKERY_LEASE_MS: "600000", ROOKERY_CONCURRENCY: "64" });
      const ids = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => (await first.client.submit({ prompt: `load ${i}` })).task!.id),
      );
      await expect
        .poll(async () => (await first.client.list({ statuses: [TaskStatus.RUNNING], pageSize: 100 })).tasks.length, { timeout: 30_000 })
        .toBe(50);
      first.process.kill("SIGTERM");
      expect(await first.exited).toBe(0);

      release = true;
      const second = await start({ ROOKERY_LEASE_MS: "600000", ROOKERY_CONCURRENCY: "64" });
      const finals = await Promise.all(ids.map(async (id) => (await collectEvents(second.client, id)).at(-1)?.status));
      expect(finals.every((s) => s === TaskStatus.COMPLETED)).toBe(true);
      expect((await second.client.list({ statuses: [TaskStatus.RUNNING, TaskStatus.PENDING], pageSize: 100 })).tasks).toEqual([]);
      second.process.kill("SIGTERM");
      expect(await second.exited).toBe(0);
    },
  );
});
