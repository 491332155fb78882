// Crash hooks for the crash-matrix suite (test/recovery/crash-matrix.test.ts):
// with ROOKERY_TEST_CRASH_AT=<point> (a HookPoint), cli/main.ts passes these
// hooks in, and the process SIGKILLs itself the first time it reaches that
// point, so a test can crash it at an exact step without sleeps.
import type { HookPoint, Hooks } from "../hooks.js";

export function crashHooks(target: string | undefined): Hooks | undefined {
  if (!target) return undefined;
  return {
    reached(point: HookPoint) {
      if (point === target) process.kill(process.pid, "SIGKILL");
    },
  };
}
