import { describe, expect, it } from "vitest";
import { mergeParts, partLength, partsFrom, type PlacedPart } from "./output.js";
import { OutputLog } from "../watch/output-log.js";

const placed: PlacedPart[] = [
  { offset: 0, part: { text: "Let me " } }, // 0-7
  { offset: 7, part: { call: { index: 0, id: "c1", name: "calc", arguments: '{"e":' } } }, // 7-13 (1 for the start)
  { offset: 13, part: { call: { index: 0, arguments: '"6*7"}' } } }, // 13-19
  { offset: 19, part: { text: "done" } }, // 19-23
];

describe("partLength()", () => {
  it("should count text and arguments in UTF-16 units, plus one for the start of a call", () => {
    expect(placed.map((p) => partLength(p.part))).toEqual([7, 6, 6, 4]);
  });
});

describe("partsFrom()", () => {
  it("should cut a text part and keep everything after it", () => {
    expect(partsFrom(placed, 4).map((p) => p.offset)).toEqual([4, 7, 13, 19]);
    expect(partsFrom(placed, 4)[0]!.part).toEqual({ text: "me " });
  });

  it("should drop the start of a call (its id and name) when cutting past its first unit", () => {
    expect(partsFrom(placed, 7)[0]!.part).toEqual(placed[1]!.part);
    expect(partsFrom(placed, 8)[0]!.part).toEqual({ call: { index: 0, arguments: '{"e":' } });
    expect(partsFrom(placed, 10)[0]!.part).toEqual({ call: { index: 0, arguments: 'e":' } });
  });

  it("should give nothing from the end on", () => {
    expect(partsFrom(placed, 23)).toEqual([]);
  });

  it("should give exactly the units from the cut on, for every cut", () => {
    const total = placed.reduce((n, p) => n + partLength(p.part), 0);
    for (let cut = 0; cut <= total; cut++) {
      const rest = partsFrom(placed, cut);
      expect(
        rest.reduce((n, p) => n + partLength(p.part), 0),
        `from ${cut}`,
      ).toBe(total - cut);
      if (rest[0]) expect(rest[0].offset).toBe(cut);
    }
  });
});

describe("mergeParts()", () => {
  it("should join the text, and each call's pieces under its index with the id and name of its start", () => {
    expect(mergeParts(placed.map((p) => p.part))).toEqual({
      text: "Let me done",
      toolCalls: [{ index: 0, id: "c1", name: "calc", arguments: '{"e":"6*7"}' }],
    });
  });
});

describe("OutputLog", () => {
  it("should read from any position, and after a restart from where the new attempt began", () => {
    const log = new OutputLog("t", 1, 32);
    log.append({ text: "abc" });
    log.append({ text: "def" });
    expect(log.read(2)).toMatchObject({ offset: 2, endOffset: 6, attempt: 32, parts: [{ text: "c" }, { text: "def" }] });
    expect(log.read(6)).toBeUndefined();
    log.restart(33);
    log.append({ text: "xy" });
    expect(log.read(0)).toMatchObject({ offset: 6, endOffset: 8, attempt: 33, parts: [{ text: "xy" }] });
  });

  it("should hand watchers reading the same range the same object (encoded once for all)", () => {
    const log = new OutputLog("t", 1, 32);
    log.append({ text: "abc" });
    expect(log.read(1)).toBe(log.read(1));
    log.append({ text: "d" });
    expect(log.read(1)).not.toBe(undefined);
  });
});
