// Watch with include_output: the model's output streams between the events,
// coalesced, and a reconnect with after_sequence + output_offset resumes the
// in-flight iteration's output exactly once, on both listeners.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskEventKind, TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { collectEvents, startHarness, type Harness } from "../support/harness.js";
import { expectContiguous, joinedText, storedText, watchOutput, type Watched } from "../support/watch-output.js";

describe("Watch with include_output", () => {
  let h: Harness;
  const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  const gate = (name: string) => {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    gates.set(name, { promise, open });
    return { promise, open };
  };
  const TOKENS = Array.from({ length: 2_000 }, (_, i) => `t${i} `).join("");

  beforeAll(async () => {
    h = await startHarness({ ROOKERY_OUTPUT_COALESCE_MS: "50" });
    h.fake.respond((c) => {
      if (c.prompt === "2000 tokens") return { content: TOKENS, pieceSize: 6, paceMs: 1 };
      if (c.prompt.startsWith("pause"))
        return { content: "first half. second half.", pieceSize: 3, pauseAt: 4, resume: gates.get(c.prompt)!.promise };
      if (c.prompt === "calculate") {
        return c.turn === 0
          ? { toolCalls: [{ name: "calculator", arguments: '{"expression":"6*7"}' }], content: "Let me compute." }
          : { content: "It is 42." };
      }
      return { content: "?" };
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it("should stream a 2,000-token answer in far fewer messages than tokens, adding up to the stored text", async () => {
    const { task } = await h.grpc.submit({ prompt: "2000 tokens" });
    const [w, plain] = await Promise.all([watchOutput(h.grpc, task!.id), collectEvents(h.grpc, task!.id)]);
    const completed = w.events.at(-1)!;
    expect(completed.status).toBe(TaskStatus.COMPLETED);
    expect(joinedText(w.outputs, 1)).toBe(TOKENS);
    expect(storedText(completed)).toBe(TOKENS);
    expect(w.outputs.length).toBeGreaterThan(1);
    expect(w.outputs.length).toBeLessThan(200);
    expectContiguous(w.outputs);
    // All output comes before the event that closes the iteration.
    expect(w.order.lastIndexOf("output")).toBeLessThan(w.order.lastIndexOf("event"));
    // A watcher that did not ask gets the events only, exactly the same ones.
    expect(plain.map((e) => e.sequence)).toEqual(w.events.map((e) => e.sequence));
  });

  it("should carry each iteration's messages in its event: a replay from 0 tells the whole story", async () => {
    const { task } = await h.grpc.submit({ prompt: "calculate", systemPrompt: "be brief" });
    const w = await watchOutput(h.grpc, task!.id);
    const [created, , checkpointed, completed] = w.events;
    expect(created!.messages.map((m) => [m.role, m.content])).toEqual([
      ["system", "be brief"],
      ["user", "calculate"],
    ]);
    expect(checkpointed!.kind).toBe(TaskEventKind.ITERATION_CHECKPOINTED);
    expect(checkpointed!.messages.map((m) => m.role)).toEqual(["assistant", "tool"]);
    expect(checkpointed!.messages[0]!.toolCalls[0]).toMatchObject({ name: "calculator", arguments: '{"expression":"6*7"}' });
    expect(checkpointed!.messages[1]!.content).toBe("42");
    expect(completed!.messages.map((m) => m.content)).toEqual(["It is 42."]);
    // The live output of iteration 1 showed the text and the tool call as they were written.
    const first = w.outputs.filter((o) => o.iteration === 1);
    expect(first.map((o) => o.text).join("")).toBe("Let me compute.");
    const call = first.flatMap((o) => o.toolCalls);
    expect(call.find((c) => c.id)?.name).toBe("calculator");
    expect(call.map((c) => c.arguments).join("")).toBe('{"expression":"6*7"}');
    expect(joinedText(w.outputs, 2)).toBe("It is 42.");
  });

  const cases = [
    ["grpc", "while the iteration still streams"],
    ["connect", "while the iteration still streams"],
    ["grpc", "after the iteration ended"],
    ["connect", "after the iteration ended"],
  ] as const;
  it.each(cases)(
    "should resume the in-flight iteration's output exactly once after a reconnect with output_offset (%s listener, %s)",
    async (listener, when) => {
      const client = h[listener];
      const prompt = `pause ${listener} ${when}`;
      const paused = gate(prompt);
      const { task } = await client.submit({ prompt });
      // First connection: until the output stops at the pause, then gone.
      const before = await watchOutput(client, task!.id, {}, (w) => joinedText(w.outputs, 1) === "first half. ");
      const lastSeen = before.events.at(-1)!;
      expect(lastSeen.status).toBe(TaskStatus.RUNNING);
      await expect.poll(() => h.rookery.watchers()).toBe(0);
      const resume = { afterSequence: lastSeen.sequence, outputOffset: before.outputs.at(-1)!.endOffset };
      let after: Watched;
      if (when === "after the iteration ended") {
        paused.open();
        await collectEvents(client, task!.id);
        after = await watchOutput(client, task!.id, resume);
      } else {
        const reconnected = watchOutput(client, task!.id, resume);
        await expect.poll(() => h.rookery.watchers()).toBe(1);
        paused.open();
        after = await reconnected;
      }
      expect(after.outputs[0]!.offset).toBe(resume.outputOffset);
      expect(joinedText(before.outputs, 1) + joinedText(after.outputs, 1)).toBe("first half. second half.");
      expect(after.order.at(-1)).toBe("event");
      expect(storedText(after.events.at(-1))).toBe("first half. second half.");
    },
  );
});
