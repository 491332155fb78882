// Debian packages the tests and benchmarks run (chromium, redis-server), installed
// with apt-get from the machine's registry when they are missing, so that a fresh
// machine and CI get them the same way.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/** `path` once Debian's `pkg` provides it, installing the package when `path` is not there (ENOENT when apt-get itself is missing). */
export function ensureDebianPackage(pkg: string, path: string): string {
  if (!existsSync(path)) {
    const apt = (args: string[]) =>
      execFileSync("apt-get", args, {
        stdio: ["ignore", "ignore", "pipe"],
        timeout: 900_000,
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    apt(["update"]);
    apt(["install", "-y", "--no-install-recommends", pkg]);
  }
  return path;
}
