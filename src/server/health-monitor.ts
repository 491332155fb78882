// Reports grpc.health.v1 status from the store's reachability: NOT_SERVING
// while the store does not answer, SERVING again as soon as it does.
import { setTimeout as sleep } from "node:timers/promises";
import type { HealthImplementation } from "grpc-health-check";
import type { Logger } from "../logger.js";
import type { TaskStore } from "../store/task-store.js";

export const HEALTH_SERVICES = ["", "rookery.v1.TaskService"];

/**
 * Pings left unanswered at once, at most. A ping that never settles (a socket to a
 * partitioned database can wait forever) is given up on, not waited for, so it cannot
 * freeze the status; while this many hang, no new one is sent. One unanswered for
 * FORGET_AFTER_MS is no longer counted, so the monitor always tries again: the driver
 * usually ends such a call well before that (it closes the connections of a server
 * its own monitor cannot reach).
 */
const MAX_UNANSWERED = 3;
const FORGET_AFTER_MS = 10_000;

/**
 * Checks the store every `everyMs`; a ping without an answer before the next check counts as
 * unreachable, and one still unanswered after `forgetAfterMs` no longer holds back new ones.
 */
export function monitorHealth(
  store: TaskStore,
  health: HealthImplementation,
  logger: Logger,
  everyMs: number,
  forgetAfterMs: number = FORGET_AFTER_MS,
): () => void {
  let serving = true;
  /** When each unanswered ping was sent. */
  const unanswered = new Set<{ sentAt: number }>();
  let stopped = false;
  const report = (ok: boolean) => {
    if (stopped || ok === serving) return;
    serving = ok;
    for (const service of HEALTH_SERVICES) health.setStatus(service, ok ? "SERVING" : "NOT_SERVING");
    logger.warn({ serving: ok }, ok ? "store reachable again" : "store unreachable: health is NOT_SERVING");
  };
  const check = async () => {
    for (const ping of unanswered) if (Date.now() - ping.sentAt > forgetAfterMs) unanswered.delete(ping);
    if (unanswered.size >= MAX_UNANSWERED) return report(false);
    const ping = { sentAt: Date.now() };
    unanswered.add(ping);
    const answered = store.ping().then(
      () => true,
      () => false,
    );
    void answered.finally(() => unanswered.delete(ping));
    report(await Promise.race([answered, sleep(everyMs, false, { ref: false })]));
  };
  const timer = setInterval(() => void check(), everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
