// gen/ is committed; this fails when it no longer matches what `buf generate` makes from proto/.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

describe("gen/", () => {
  it("should be exactly what `npm run generate` produces from proto/ (run it and commit)", () => {
    const out = mkdtempSync(join(tmpdir(), "rookery-gen-"));
    try {
      execFileSync("npx", ["buf", "generate", "--output", out], { stdio: "pipe" });
      const fresh = join(out, "gen");
      expect(files(fresh)).toEqual(files("gen"));
      for (const f of files("gen")) {
        expect(readFileSync(join("gen", f), "utf8"), `gen/${f} is stale`).toBe(readFileSync(join(fresh, f), "utf8"));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
