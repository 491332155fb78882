import type { HealthImplementation } from "grpc-health-check";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../logger.js";
import type { TaskStore } from "../store/task-store.js";
import { HEALTH_SERVICES, monitorHealth } from "./health-monitor.js";

/** A store whose ping does what `answer` says: "up" resolves, "down" rejects, "hang" never settles. */
function storeAnswering(answer: () => "up" | "down" | "hang") {
  let pings = 0;
  const store = {
    ping: () => {
      pings += 1;
      const now = answer();
      if (now === "up") return Promise.resolve();
      if (now === "down") return Promise.reject(new Error("store down"));
      return new Promise<void>(() => {});
    },
  } as unknown as TaskStore;
  return { store, pings: () => pings };
}

/** The statuses the monitor set, by service (both start SERVING, as in rookery.ts). */
function recordedHealth() {
  const statuses = new Map(HEALTH_SERVICES.map((s) => [s, "SERVING"]));
  const health = { setStatus: (service: string, status: string) => statuses.set(service, status) } as unknown as HealthImplementation;
  return { health, status: () => [...new Set(statuses.values())].join() };
}

/** Conditions are waited for this long at most: generous, for a loaded machine. */
const WAIT = { timeout: 10_000 };

describe("monitorHealth", () => {
  let stop = () => {};
  afterEach(() => stop());

  it("should report NOT_SERVING while pings fail and SERVING again once one answers", async () => {
    let answer: "up" | "down" = "down";
    const { store } = storeAnswering(() => answer);
    const { health, status } = recordedHealth();
    stop = monitorHealth(store, health, createLogger("silent"), 10);
    await expect.poll(status, WAIT).toBe("NOT_SERVING");
    answer = "up";
    await expect.poll(status, WAIT).toBe("SERVING");
  });

  it("should report NOT_SERVING when pings never answer, and SERVING when a later ping does, though the first ones still hang", async () => {
    let answer: "up" | "hang" = "hang";
    const { store } = storeAnswering(() => answer);
    const { health, status } = recordedHealth();
    stop = monitorHealth(store, health, createLogger("silent"), 10, 200);
    await expect.poll(status, WAIT).toBe("NOT_SERVING");
    answer = "up";
    await expect.poll(status, WAIT).toBe("SERVING");
  });

  it("should leave at most three pings unanswered at once, and keep reporting NOT_SERVING meanwhile", async () => {
    const { store, pings } = storeAnswering(() => "hang");
    const { health, status } = recordedHealth();
    stop = monitorHealth(store, health, createLogger("silent"), 5, 60_000);
    await expect.poll(status, WAIT).toBe("NOT_SERVING");
    await expect.poll(pings, WAIT).toBe(3);
    const checksSoFar = pings();
    // Many more intervals pass: none sends another ping while three hang.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(pings()).toBe(checksSoFar);
    expect(status()).toBe("NOT_SERVING");
  });

  it("should not change the status after it is stopped", async () => {
    let answer: "up" | "down" = "up";
    const { store, pings } = storeAnswering(() => answer);
    const { health, status } = recordedHealth();
    stop = monitorHealth(store, health, createLogger("silent"), 10);
    await expect.poll(pings, WAIT).toBeGreaterThan(0);
    stop();
    answer = "down";
    const after = pings();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pings()).toBe(after);
    expect(status()).toBe("SERVING");
  });
});
