// Debian packages the tests and benchmarks run (chromium, redis-server), installed
// with apt-get from the machine's registry when they are missing, so that a fresh
// machine and CI get them the same way.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Test files run in parallel and may each find the package missing: apt-get refuses a
// second run while one holds its lock, so installs wait in line on a lock of our own,
// and each looks again once it holds it.
const INSTALL = 'test -e "$1" || { apt-get update && apt-get install -y --no-install-recommends "$2"; }';

/** `path` once Debian's `pkg` provides it, installing the package when `path` is not there (ENOENT when flock or apt-get is missing). */
export function ensureDebianPackage(pkg: string, path: string): string {
  if (!existsSync(path)) {
    try {
      execFileSync("flock", [join(tmpdir(), "rookery-apt.lock"), "sh", "-c", INSTALL, "sh", path, pkg], {
        stdio: ["ignore", "ignore", "pipe"],
        timeout: 900_000,
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    } catch (error) {
      // The shell's "command not found": no apt-get here, reported as a missing command is.
      if ((error as { status?: number }).status === 127)
        throw Object.assign(new Error(`apt-get not found to install ${pkg}`), { code: "ENOENT" });
      throw error;
    }
  }
  return path;
}
