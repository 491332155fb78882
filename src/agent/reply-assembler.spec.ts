import { describe, expect, it } from "vitest";
import { ReplyAssembler, type ReplyDelta } from "./reply-assembler.js";

/** A chunk whose choice 0 carries `delta`. */
const chunk = (delta: object) => ({ object: "chat.completion.chunk", choices: [{ index: 0, delta }] });
const call = (piece: object) => chunk({ tool_calls: [{ index: 0, ...piece }] });

function assemble(chunks: object[]): { deltas: ReplyDelta[]; assembler: ReplyAssembler } {
  const assembler = new ReplyAssembler("test/model", 1_000_000);
  return { deltas: chunks.map((c) => assembler.add(c)), assembler };
}

describe("ReplyAssembler tool calls", () => {
  it("should start a call once and join its arguments when the provider sends the id and name in the first chunk only", () => {
    const { deltas, assembler } = assemble([
      call({ id: "call_1", type: "function", function: { name: "calculator", arguments: "" } }),
      call({ function: { arguments: '{"expression":' } }),
      call({ function: { arguments: '"6*7"}' } }),
    ]);
    expect(assembler.finish().toolCalls).toEqual([{ id: "call_1", name: "calculator", arguments: '{"expression":"6*7"}' }]);
    expect(deltas.flatMap((d) => d.toolCalls)).toEqual([
      { index: 0, id: "call_1", name: "calculator", arguments: "" },
      { index: 0, arguments: '{"expression":' },
      { index: 0, arguments: '"6*7"}' },
    ]);
  });

  it("should keep the name whole when the provider repeats the id and name in every chunk (not calculatorcalculator)", () => {
    const { deltas, assembler } = assemble([
      call({ id: "call_1", function: { name: "calculator", arguments: '{"expression":' } }),
      call({ id: "call_1", function: { name: "calculator", arguments: '"6*7"}' } }),
      call({ id: "call_1", function: { name: "calculator", arguments: "" } }),
    ]);
    expect(assembler.finish().toolCalls).toEqual([{ id: "call_1", name: "calculator", arguments: '{"expression":"6*7"}' }]);
    // The repeats start nothing: one start in the output, then arguments; the empty repeat adds no piece.
    expect(deltas.flatMap((d) => d.toolCalls)).toEqual([
      { index: 0, id: "call_1", name: "calculator", arguments: '{"expression":' },
      { index: 0, arguments: '"6*7"}' },
    ]);
  });

  it("should keep the name when later chunks send an empty one", () => {
    const { assembler } = assemble([
      call({ id: "call_1", function: { name: "calculator", arguments: "" } }),
      call({ id: "", function: { name: "", arguments: '{"expression":"1+1"}' } }),
    ]);
    expect(assembler.finish().toolCalls).toEqual([{ id: "call_1", name: "calculator", arguments: '{"expression":"1+1"}' }]);
  });

  it("should not grow a name past 256 characters however many chunks repeat it", () => {
    const name = "n".repeat(256);
    const { assembler } = assemble(Array.from({ length: 1_000 }, () => call({ id: "a", function: { name } })));
    expect(assembler.finish().toolCalls[0]?.name).toBe(name);
  });

  it("should restate the id with a name that comes after it, so the name takes a position in the output", () => {
    const { deltas, assembler } = assemble([
      call({ id: "call_1" }),
      call({ function: { name: "calculator" } }),
      call({ function: { arguments: "{}" } }),
    ]);
    expect(assembler.finish().toolCalls).toEqual([{ id: "call_1", name: "calculator", arguments: "{}" }]);
    expect(deltas.flatMap((d) => d.toolCalls)).toEqual([
      { index: 0, id: "call_1", arguments: "" },
      { index: 0, id: "call_1", name: "calculator", arguments: "" },
      { index: 0, arguments: "{}" },
    ]);
  });

  it("should refuse a name longer than 256 characters in one chunk", () => {
    expect(() => assemble([call({ id: "a", function: { name: "n".repeat(257) } })])).toThrow(/tool name is not a string of at most 256/);
  });
});

describe("ReplyAssembler labels", () => {
  it("should keep the model name and finish reason a provider sends short, whatever their length", () => {
    const assembler = new ReplyAssembler("test/model", 1_000);
    assembler.add({ model: "m".repeat(100_000), choices: [{ index: 0, delta: { content: "ok" }, finish_reason: "r".repeat(100_000) }] });
    const reply = assembler.finish();
    expect([reply.model?.length, reply.finishReason?.length, reply.content]).toEqual([256, 64, "ok"]);
  });
});
