import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { OneAtATime } from "./one-at-a-time.js";

describe("OneAtATime", () => {
  it("should run calls one at a time, in order, and go on after one fails", async () => {
    const queue = new OneAtATime();
    const log: string[] = [];
    let running = 0;
    const call = (name: string, ms: number, fail = false) =>
      queue.run(async () => {
        running += 1;
        log.push(`start ${name} (${running} running)`);
        await sleep(ms);
        running -= 1;
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([call("a", 20), call("b", 5, true), call("c", 1)]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual(["a", "b", "c"]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(log).toEqual(["start a (1 running)", "end a", "start b (1 running)", "end b", "start c (1 running)", "end c"]);
  });
});
