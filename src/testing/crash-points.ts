// A test hook for the crash-matrix suite (test/recovery/crash-matrix.test.ts):
// with ROOKERY_TEST_CRASH_AT=<point>, the process SIGKILLs itself the first time
// it reaches that point, so a test can crash it at an exact step without sleeps.
// Unset (always, outside those tests) it does nothing.
export type CrashPoint =
  | "before_claim"
  | "after_claim"
  | "after_model_answer"
  | "after_checkpoint"
  | "during_tool_call"
  | "during_cancel"
  | "during_purge";

const target = process.env.ROOKERY_TEST_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (target === point) process.kill(process.pid, "SIGKILL");
}
