import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";

describe("npm run bench", () => {
  it("should run every benchmark script in bench/", () => {
    const { scripts } = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> };
    const benchmarks = readdirSync("bench").filter((f) => f.endsWith(".ts"));
    expect(benchmarks.length).toBeGreaterThan(0);
    for (const script of benchmarks) expect(scripts.bench, script).toContain(`tsx bench/${script}`);
  });
});
