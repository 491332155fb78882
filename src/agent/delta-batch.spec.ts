import { describe, expect, it } from "vitest";
import { mergeParts } from "../domain/output.js";
import { DeltaBatch } from "./delta-batch.js";
import { outputParts, type ReplyDelta } from "./reply-assembler.js";

const text = (t: string): ReplyDelta => ({ text: t, toolCalls: [] });
const args = (index: number, a: string, start?: { id: string; name: string }): ReplyDelta => ({
  text: "",
  toolCalls: [{ index, arguments: a, ...start }],
});
const partsOf = (deltas: ReplyDelta[]) => deltas.flatMap(outputParts);

/** Adds `deltas` in one turn and returns what the batch sent at its end. */
async function sentInOneTurn(deltas: ReplyDelta[]): Promise<ReplyDelta[][]> {
  const sent: ReplyDelta[][] = [];
  const batch = new DeltaBatch((d) => sent.push(d));
  for (const delta of deltas) batch.add(structuredClone(delta));
  await new Promise((resolve) => setImmediate(resolve));
  return sent;
}

describe("DeltaBatch", () => {
  it("should send one turn's text chunks as one delta, joined in order", async () => {
    expect(await sentInOneTurn(["Hel", "lo, ", "world"].map(text))).toEqual([[text("Hello, world")]]);
  });

  it("should join a call's argument pieces, but start a new delta for a new call and for text after a call", async () => {
    const deltas = [
      text("Let me "),
      text("compute."),
      args(0, "", { id: "c1", name: "calculator" }),
      args(0, '{"expression":'),
      args(0, '"6*7"}'),
      args(1, '{"timezone":', { id: "c2", name: "current_time" }),
      args(1, '"UTC"}'),
      text("done"),
    ];
    const [batch] = await sentInOneTurn(deltas);
    expect(batch).toEqual([
      text("Let me compute."),
      args(0, '{"expression":"6*7"}', { id: "c1", name: "calculator" }),
      args(1, '{"timezone":"UTC"}', { id: "c2", name: "current_time" }),
      text("done"),
    ]);
    // The same output, part for part merged, as the chunks one by one.
    expect(mergeParts(partsOf(batch!))).toEqual(mergeParts(partsOf(deltas)));
  });

  it("should send the next turn's deltas in a batch of their own, and nothing for a turn without any", async () => {
    const sent: ReplyDelta[][] = [];
    const batch = new DeltaBatch((d) => sent.push(d));
    batch.add(text("a"));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    batch.add(text("b"));
    expect(batch.take()).toEqual([text("b")]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toEqual([[text("a")]]);
  });
});
