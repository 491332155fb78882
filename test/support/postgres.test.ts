// The throwaway PostgreSQL of the MongoDB suites and benchmarks: it must not outlive
// the process that started it when that process fails before stopping it.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { POSTGRES_BIN } from "./postgres.js";

/** Whether something accepts a TCP connection on the loopback port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

it.skipIf(!existsSync(join(POSTGRES_BIN, "postgres")))(
  "should stop PostgreSQL when the process that started it throws before calling stop()",
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "rookery-pg-owner-"));
    try {
      const script = [
        `import { startPostgres } from ${JSON.stringify(new URL("./postgres.ts", import.meta.url).pathname)};`,
        "const postgres = await startPostgres();",
        "console.log(new URL(postgres.url).port);",
        'throw new Error("a benchmark that fails partway");',
      ].join("\n");
      writeFileSync(join(dir, "owner.mts"), script);
      const ended = await promisify(execFile)(process.execPath, ["--import", "tsx", join(dir, "owner.mts")]).then(
        () => ({ code: 0, stdout: "" }),
        (error: { code: number; stdout: string }) => error,
      );
      expect(ended.code).toBe(1);
      const port = Number(ended.stdout.trim());
      expect(port).toBeGreaterThan(0);
      expect(await listening(port)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
