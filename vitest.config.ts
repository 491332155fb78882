import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.spec.ts", "web/**/*.spec.ts", "test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One file at a time: several suites time leases and crashes on a 2-core machine,
    // and must not depend on what another file happens to be doing.
    fileParallelism: false,
  },
});
