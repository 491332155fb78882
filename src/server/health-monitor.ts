// Reports grpc.health.v1 status from the store's reachability: NOT_SERVING
// while the store does not answer, SERVING again as soon as it does.
import type { HealthImplementation } from "grpc-health-check";
import type { Logger } from "../logger.js";
import type { TaskStore } from "../store/task-store.js";

export const HEALTH_SERVICES = ["", "rookery.v1.TaskService"];

export function monitorHealth(store: TaskStore, health: HealthImplementation, logger: Logger, everyMs: number): () => void {
  let serving = true;
  let checking = false;
  const check = async () => {
    if (checking) return;
    checking = true;
    const ok = await store.ping().then(
      () => true,
      () => false,
    );
    checking = false;
    if (ok === serving) return;
    serving = ok;
    for (const service of HEALTH_SERVICES) health.setStatus(service, ok ? "SERVING" : "NOT_SERVING");
    logger.warn({ serving: ok }, ok ? "store reachable again" : "store unreachable: health is NOT_SERVING");
  };
  const timer = setInterval(() => void check(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
