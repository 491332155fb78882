import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { INT32_MAX, duration, wholeBigint, wholeNumber } from "./options.js";

describe("wholeNumber()", () => {
  it("should take a whole number from 0 to the field's maximum", () => {
    expect(wholeNumber()("0")).toBe(0);
    expect(wholeNumber()("4294967295")).toBe(4294967295);
    expect(wholeNumber(INT32_MAX)("2147483647")).toBe(2147483647);
  });

  it.each(["abc", "-5", "1.5", "1e3", " 7", "", "0x10", "4294967296"])("should refuse %j as bad usage, not pass it on", (value) => {
    expect(() => wholeNumber()(value)).toThrow(InvalidArgumentError);
  });

  it("should refuse one past an int32 field's maximum", () => {
    expect(() => wholeNumber(INT32_MAX)("2147483648")).toThrow(/from 0 to 2147483647/);
  });
});

describe("wholeBigint()", () => {
  it("should take every uint64, beyond what a double holds exactly", () => {
    expect(wholeBigint("18446744073709551615")).toBe(2n ** 64n - 1n);
    expect(wholeBigint("9007199254740993")).toBe(9007199254740993n);
  });

  it.each(["abc", "-1", "2.5", "18446744073709551616"])("should refuse %j as bad usage", (value) => {
    expect(() => wholeBigint(value)).toThrow(InvalidArgumentError);
  });
});

describe("duration()", () => {
  it("should read 90s, 10m and 1500 (ms) as a Duration", () => {
    expect([duration("90s"), duration("10m"), duration("1500")].map((d) => [d.seconds, d.nanos])).toEqual([
      [90n, 0],
      [600n, 0],
      [1n, 500_000_000],
    ]);
  });

  it.each(["5x", "0s", "-1m", ""])("should refuse %j", (value) => {
    expect(() => duration(value)).toThrow(InvalidArgumentError);
  });
});
