// Small measuring helpers shared by the benchmarks.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** /proc counts CPU time in clock ticks; CLK_TCK is 100 on Linux. */
const ticksToMicros = (ticks: number) => (ticks * 1_000_000) / 100;

/**
 * CPU time (user + system) a process has used, in microseconds, from /proc. With
 * `reapedChildren`, also that of its children that have exited and been waited for (a
 * load generator run to its end as a child process).
 */
export function cpuMicros(pid: number, { reapedChildren = false } = {}): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const own = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  const children = reapedChildren ? Number(fields[13]) + Number(fields[14]) : 0; // cutime, cstime
  return ticksToMicros(own + children);
}

/**
 * CPU time each process has used, in microseconds, by name: a snapshot to subtract from a
 * later one (`cpuSince`). "idle" is the whole machine's idle time over the same span, so a
 * figure per task shows how much of the machine a system left unused.
 */
export function cpuSnapshot(pids: Record<string, number>): Record<string, number> {
  const snapshot: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) snapshot[name] = cpuMicros(pid);
  const [idle, iowait] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(4, 6).map(Number);
  snapshot.idle = ticksToMicros(idle! + iowait!);
  return snapshot;
}

/** CPU µs per item (task, call) of each process in `before`, from then to now. */
export function cpuSince(before: Record<string, number>, pids: Record<string, number>, items: number): Record<string, number> {
  const now = cpuSnapshot(pids);
  return Object.fromEntries(Object.keys(before).map((name) => [name, (now[name]! - before[name]!) / items]));
}

/** "server 1480, provider 205, ..., idle 260": each name's median over the rounds' cpuSince figures. */
export function cpuMedians(rounds: Record<string, number>[]): string {
  return Object.keys(rounds[0]!)
    .map((name) => `${name} ${median(rounds.map((r) => r[name]!)).toFixed(0)}`)
    .join(", ");
}

/** Resident memory of a process, in bytes. */
export function rssBytes(pid: number): number {
  const pages = Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]);
  return pages * 4096;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * `a` against `b` measured side by side, round by round: "0.92x (rounds 0.86, 0.92, 1.05)", the
 * median of the rounds' ratios and each of them. Not the ratio of the two medians, which may
 * pair a fast round of one side with a slow round of the other.
 */
export function sideBySide(a: number[], b: number[]): string {
  const ratios = a.map((value, i) => value / b[i]!);
  return `${median(ratios).toFixed(2)}x (rounds ${ratios.map((r) => r.toFixed(2)).join(", ")})`;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `worker` from `concurrency` loops for `ms`; returns how many calls completed. */
export async function closedLoop(concurrency: number, ms: number, worker: () => Promise<unknown>): Promise<number> {
  const end = Date.now() + ms;
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        await worker();
        calls += 1;
      }
    }),
  );
  return calls;
}

/** Calls `submit` once for each of `count` items, from `callers` loops at once. */
export async function submitAll(callers: number, count: number, submit: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < count) await submit(next++);
    }),
  );
}

/** Polls `check` every `pollMs` until it is true; throws after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  { timeoutMs = 60_000, pollMs = 20 }: { timeoutMs?: number; pollMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}
