import { describe, expect, it } from "vitest";
import { evaluate } from "./calculator.js";

describe("evaluate()", () => {
  it("should respect precedence, parentheses, unary minus and right-associative powers", () => {
    expect(evaluate("2 + 3 * 4")).toBe(14);
    expect(evaluate("(2 + 3) * 4")).toBe(20);
    expect(evaluate("-2 ^ 2")).toBe(-4);
    expect(evaluate("2 ^ 3 ^ 2")).toBe(512);
    expect(evaluate("10 % 4 - .5")).toBe(1.5);
    expect(evaluate("1e3 / 8")).toBe(125);
  });

  it("should reject anything that is not arithmetic instead of evaluating it", () => {
    expect(() => evaluate("process.exit(1)")).toThrow(/unexpected/);
    expect(() => evaluate("2 +")).toThrow(/end of expression/);
    expect(() => evaluate("(1")).toThrow(/expected "\)"/);
    expect(() => evaluate("1 / 0")).toThrow(/finite/);
  });
});
