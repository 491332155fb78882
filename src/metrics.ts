// Prometheus metrics (prom-client), served at GET /metrics on the HTTP listener.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { isTerminal, type TaskEvent } from "./domain/task.js";
import type { WebhookDelivery } from "./domain/webhooks.js";

export interface Metrics {
  registry: Registry;
  /** Counts one committed event. */
  observe(event: TaskEvent): void;
  /** Counts one webhook attempt by what it came to. */
  observeDelivery(delivery: WebhookDelivery): void;
  /** Times one model call and counts its tokens. */
  observeModelCall(call: ModelCallObservation): void;
}

export interface ModelCallObservation {
  provider: string;
  model: string;
  seconds: number;
  /** "ok", or the failure's code (provider_error, malformed_reply, ...). */
  outcome: string;
  inputTokens: number;
  outputTokens: number;
}

/**
 * Tasks whose wait in PENDING, or whose run, is being timed, at most. The step may end
 * where this process never sees it (another replica claims the resumed task, a takeover
 * ends the run, the task is deleted): past this many, the oldest are forgotten.
 */
const TIMED_TASKS_KEPT = 10_000;

const SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

export function createMetrics(
  gauges: {
    running: () => number;
    watchers: () => number;
    /** Tasks in each status in the store (read at each scrape). */
    statusCounts: () => Promise<Record<string, number>>;
  },
  options: { timedTasksKept?: number } = {},
): Metrics {
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
  new Gauge({
    name: "rookery_tasks",
    help: 'Tasks in the store by status (every replica\'s: the queue depth is status="pending")',
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      try {
        for (const [status, n] of Object.entries(await gauges.statusCounts())) this.set({ status }, n);
      } catch {
        // The store does not answer: the scrape still succeeds, with the last counts (health says why).
      }
    },
  });
  const pendingSeconds = new Histogram({
    name: "rookery_task_pending_seconds",
    help: "Time a task waited in PENDING before a run claimed it (claims made by this process)",
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const runSeconds = new Histogram({
    name: "rookery_task_run_seconds",
    help: "Duration of runs on this process, from claim to leaving RUNNING, by the status the run ended in",
    labelNames: ["status"] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const modelSeconds = new Histogram({
    name: "rookery_model_call_seconds",
    help: "Model calls (retries included), by provider, model and outcome (ok or the failure code)",
    labelNames: ["provider", "model", "outcome"] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const modelTokens = new Counter({
    name: "rookery_model_tokens_total",
    help: "Tokens the model calls of this process used, by provider, model and kind (input, output)",
    labelNames: ["provider", "model", "kind"] as const,
    registers: [registry],
  });
  // When each task seen here entered PENDING and its run started, to time the next step.
  const pendingSince = new StepStarts(options.timedTasksKept ?? TIMED_TASKS_KEPT);
  const runningSince = new StepStarts(options.timedTasksKept ?? TIMED_TASKS_KEPT);
  return {
    registry,
    observe(event) {
      if (event.kind !== "status_changed") {
        iterations.inc();
        return;
      }
      transitions.inc({ status: event.status });
      const at = event.time.getTime();
      if (event.status !== "running") {
        const started = runningSince.end(event.taskId);
        if (started !== undefined) runSeconds.observe({ status: event.status }, (at - started) / 1000);
      }
      // A task's first wait is timed from its creation (below), so a Submit keeps nothing here:
      // on a replica that runs no tasks, every task submitted through it would stay.
      if (event.status === "pending" && event.previousStatus !== undefined) pendingSince.start(event.taskId, at);
      if (event.status === "running") {
        // A task submitted on another replica entered PENDING when it was created (first run).
        const since = pendingSince.end(event.taskId) ?? (event.task.runs === 1 ? event.task.createdAt.getTime() : undefined);
        if (since !== undefined) pendingSeconds.observe((at - since) / 1000);
        runningSince.start(event.taskId, at);
      }
      if (isTerminal(event.status)) pendingSince.end(event.taskId);
    },
    observeModelCall(call) {
      modelSeconds.observe({ provider: call.provider, model: call.model, outcome: call.outcome }, call.seconds);
      if (call.inputTokens > 0) modelTokens.inc({ provider: call.provider, model: call.model, kind: "input" }, call.inputTokens);
      if (call.outputTokens > 0) modelTokens.inc({ provider: call.provider, model: call.model, kind: "output" }, call.outputTokens);
    },
    observeDelivery(delivery) {
      webhookAttempts.inc({ outcome: delivery.state === "pending" ? "retry" : delivery.state });
    },
  };
}

/** When each task entered a step, until the step ends; the oldest forgotten past `kept` tasks. */
class StepStarts {
  private readonly at = new Map<string, number>();

  constructor(private readonly kept: number) {}

  start(taskId: string, at: number): void {
    this.at.delete(taskId); // re-inserted: a Map iterates in insertion order, oldest first
    if (this.at.size >= this.kept) this.at.delete(this.at.keys().next().value!);
    this.at.set(taskId, at);
  }

  /** When the step started, if known; forgets it. */
  end(taskId: string): number | undefined {
    const at = this.at.get(taskId);
    this.at.delete(taskId);
    return at;
  }
}
