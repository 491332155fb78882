import { describe, expect, it } from "vitest";
import { isUntimeable } from "./deadlines.js";

describe("isUntimeable", () => {
  it.each([
    ["grpc-timeout", "2147483S", false],
    ["grpc-timeout", "2147484S", true],
    ["grpc-timeout", "596H", false],
    ["grpc-timeout", "597H", true],
    ["grpc-timeout", "99999999H", true],
    ["grpc-timeout", "99999999n", false],
    ["grpc-timeout", "12x", false],
    ["connect-timeout-ms", "2147483647", false],
    ["connect-timeout-ms", "2147483648", true],
    ["connect-timeout-ms", "-5", false],
    ["connect-timeout-ms", undefined, false],
  ] as const)("should call %s %s longer than a timer can wait: %s", (name, value, expected) => {
    expect(isUntimeable(name, value)).toBe(expected);
  });
});
