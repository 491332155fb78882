// Prometheus metrics (prom-client), served at GET /metrics on the HTTP listener.
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { TaskEvent } from "./domain/task.js";
import type { WebhookDelivery } from "./domain/webhooks.js";

export interface Metrics {
  registry: Registry;
  /** Counts one committed event. */
  observe(event: TaskEvent): void;
  /** Counts one webhook attempt by what it came to. */
  observeDelivery(delivery: WebhookDelivery): void;
}

export function createMetrics(gauges: { running: () => number; watchers: () => number }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "rookery_process_" });
  const transitions = new Counter({
    name: "rookery_task_transitions_total",
    help: "Task status transitions committed by this process, by status entered",
    labelNames: ["status"] as const,
    registers: [registry],
  });
  const iterations = new Counter({
    name: "rookery_task_iterations_checkpointed_total",
    help: "Agent loop iterations checkpointed by this process",
    registers: [registry],
  });
  new Gauge({
    name: "rookery_tasks_running",
    help: "Tasks this process is running now",
    registers: [registry],
    collect() {
      this.set(gauges.running());
    },
  });
  new Gauge({
    name: "rookery_watch_streams",
    help: "Watch streams open on this process",
    registers: [registry],
    collect() {
      this.set(gauges.watchers());
    },
  });
  const webhookAttempts = new Counter({
    name: "rookery_webhook_attempts_total",
    help: "Webhook delivery attempts made by this process, by outcome: delivered, retry (failed, to be retried), failed (gave up at the horizon), stopped (410 Gone)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  return {
    registry,
    observe(event) {
      if (event.kind === "status_changed") transitions.inc({ status: event.status });
      else iterations.inc();
    },
    observeDelivery(delivery) {
      webhookAttempts.inc({ outcome: delivery.state === "pending" ? "retry" : delivery.state });
    },
  };
}
