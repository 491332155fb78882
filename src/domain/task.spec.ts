import { describe, expect, it } from "vitest";
import { BASIC_PROMPT_CHARS, basicView } from "./task.js";
import { createTask } from "./transitions.js";

const withPrompt = (prompt: string) =>
  createTask({ prompt, systemPrompt: "s", maxIterations: 3, labels: {}, tools: [], owner: "" }, new Date("2026-01-01T00:00:00Z")).task;

describe("basicView's prompt", () => {
  const N = BASIC_PROMPT_CHARS;
  const emoji = "🪺"; // one code point, two UTF-16 units

  it.each([
    ["exactly N ASCII characters", "a".repeat(N)],
    ["exactly N characters of two UTF-16 units (2N units)", emoji.repeat(N)],
    ["N - 1 characters of two units and one of one (2N - 1 units)", emoji.repeat(N - 1) + "a"],
  ])("keeps a prompt of %s whole, not marked truncated", (_, prompt) => {
    const basic = basicView(withPrompt(prompt));
    expect(basic.prompt).toBe(prompt);
    expect(basic.promptTruncated).toBeUndefined();
  });

  it.each([
    ["N + 1 ASCII characters", "a".repeat(N + 1), "a".repeat(N)],
    ["N + 1 characters of two units (past 2N units)", emoji.repeat(N + 1), emoji.repeat(N)],
    ["N characters of two units then one of one (2N + 1 units)", emoji.repeat(N) + "a", emoji.repeat(N)],
    ["one ASCII character then N of two units (a pair across the 2N-unit mark)", "a" + emoji.repeat(N), "a" + emoji.repeat(N - 1)],
    ["256 KiB", "é".repeat(128 * 1024), "é".repeat(N)],
  ])("cuts a prompt of %s to its first N code points and marks it truncated", (_, prompt, head) => {
    const basic = basicView(withPrompt(prompt));
    expect(basic.prompt).toBe(head);
    expect([...basic.prompt].length).toBe(N);
    expect(basic.promptTruncated).toBe(true);
  });

  it("leaves out what a BASIC view never shows", () => {
    const basic = basicView({ ...withPrompt("p"), result: "r" });
    expect(basic).toMatchObject({ systemPrompt: "", tools: [] });
    expect(basic.result).toBeUndefined();
  });
});
