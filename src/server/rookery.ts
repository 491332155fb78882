// Wires one Rookery process together, top to bottom: store -> event feed ->
// supervisor -> handlers -> the two listeners. close() is idempotent and runs
// its steps in order, each catching its own failure.
import { setMaxListeners } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { HealthImplementation } from "grpc-health-check";
import { ModelClient } from "../agent/model-client.js";
import { ModelWorkerPool } from "../agent/model-worker-pool.js";
import { apiKeyAuthenticator, loadApiKeys } from "../auth/api-keys.js";
import { ToolRegistry } from "../agent/tools/registry.js";
import { DEFAULT_LIMITS } from "../api/validate.js";
import { TaskService } from "../api/task-service.js";
import { ConfigError, type Config } from "../config.js";
import type { Hooks } from "../hooks.js";
import { errorMessage, type Logger } from "../logger.js";
import { createMetrics } from "../metrics.js";
import { openStore } from "../store/open-store.js";
import { PublishingStore } from "../watch/publishing-store.js";
import { Supervisor } from "../supervisor/supervisor.js";
import { Sweeper } from "../supervisor/sweeper.js";
import { EventFeed } from "../watch/event-feed.js";
import { WebhookSender } from "../webhooks/sender.js";
import { WebhookUrlGuard } from "../webhooks/url-guard.js";
import { OutputFeed } from "../watch/output-feed.js";
import { startGrpcListener } from "./grpc-server.js";
import { HandlerAdapter, type Authenticate } from "./handler-adapter.js";
import { HEALTH_SERVICES, monitorHealth } from "./health-monitor.js";
import { startHttpListener } from "./http-listener.js";

export interface Rookery {
  grpcPort: number;
  httpPort: number;
  supervisor: Supervisor;
  /** Watch streams open on this process. */
  watchers(): number;
  /** The most live events any one Watch stream holds undelivered now. */
  maxWatchQueue(): number;
  /** Stops claiming, hands running tasks back, ends open calls, closes the store. */
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 5_000;

/** `hooks`: test hooks (see hooks.ts); cli/main.ts passes them only when a test asks. */
export async function startRookery(config: Config, logger: Logger, hooks?: Hooks): Promise<Rookery> {
  const keys = loadApiKeys(config);
  const feed = new EventFeed();
  const outputs = new OutputFeed(config.outputCoalesceMs);
  const store = new PublishingStore(
    await openStore(
      config.store === "sqlite"
        ? { kind: "sqlite", path: config.sqlitePath }
        : { kind: "mongodb", uri: config.mongodbUri!, database: config.mongodbDb, timeoutMs: config.mongodbTimeoutMs },
      hooks,
    ),
    feed,
  );
  const tools = new ToolRegistry(undefined, hooks);
  const providers = {
    ...config.providers,
    [config.provider]: {
      ...(config.openaiBaseUrl ? { baseURL: config.openaiBaseUrl } : {}),
      ...(config.openaiApiKey ? { apiKey: config.openaiApiKey } : {}),
    },
  };
  if (!config.openaiApiKey) {
    logger.warn(`no OPENAI_API_KEY: tasks on provider "${config.provider}" will fail until one is set`);
  }
  const modelWorkers =
    config.modelWorkers > 0 && config.concurrency > 0
      ? new ModelWorkerPool(
          config.modelWorkers,
          {
            providers,
            sdk: {
              timeoutMs: config.modelTimeoutMs,
              maxRetries: config.modelMaxRetries,
              maxReplyBytes: config.maxReplyBytes,
              maxReplyMs: config.maxReplyMs,
            },
          },
          logger,
        )
      : undefined;
  // Its gauges are read at scrape time, when the supervisor exists.
  const metrics = createMetrics({
    running: () => supervisor.running,
    watchers: () => feed.watcherCount(),
    statusCounts: () => store.statusCounts(),
  });
  feed.subscribeAll((e) => metrics.observe(e));
  const supervisor = new Supervisor({
    store,
    ...(hooks ? { hooks } : {}),
    feed,
    outputs,
    // Other replicas poll for output at the Watch poll interval: writing it more often buys nothing.
    outputFlushMs: config.watchPollMs,
    outputGraceMs: config.outputGraceMs,
    logger,
    agent: {
      models: new ModelClient({
        providers,
        timeoutMs: config.modelTimeoutMs,
        maxRetries: config.modelMaxRetries,
        maxReplyBytes: config.maxReplyBytes,
        maxReplyMs: config.maxReplyMs,
        onCall: (call) => metrics.observeModelCall(call),
        traceContent: config.traceContent,
        ...(modelWorkers ? { workers: modelWorkers } : {}),
      }),
      tools,
      defaultProvider: config.provider,
      defaultModel: config.model,
      maxConversationBytes: config.maxConversationBytes,
      ...(hooks ? { hooks } : {}),
    },
    concurrency: config.concurrency,
    leaseMs: config.leaseMs,
    maxTakeovers: config.maxTakeovers,
    stopPollMs: config.watchPollMs,
    pollMs: config.pollMs,
  });
  const guard = new WebhookUrlGuard(config.webhookAllowHosts);
  if (config.webhookUrl) {
    const refusal = await guard.refusal(config.webhookUrl);
    if (refusal) throw new ConfigError(`invalid ROOKERY_WEBHOOK_URL (--webhook-url): ${refusal}`);
  }
  const service = new TaskService({
    store,
    feed,
    outputs,
    limits: {
      ...DEFAULT_LIMITS,
      maxPromptBytes: config.maxPromptBytes,
      maxActiveTasksPerKey: config.maxActiveTasksPerKey,
      maxWatchesPerKey: config.maxWatchesPerKey,
    },
    defaults: {
      provider: config.provider,
      model: config.model,
      maxIterations: config.maxIterations,
      maxTotalTokens: config.maxTotalTokens,
      ...(config.taskTimeout !== undefined ? { timeoutMs: config.taskTimeout } : {}),
      ...(config.queueTimeout !== undefined ? { queueTimeoutMs: config.queueTimeout } : {}),
      ...(config.retention !== undefined ? { retentionMs: config.retention } : {}),
    },
    providers: Object.keys(providers),
    serverTools: tools.names(),
    watchPollMs: config.watchPollMs,
    watchQueueLimit: config.watchQueueLimit,
    authEnabled: Boolean(keys),
    ...(hooks ? { hooks } : {}),
    webhooks: {
      enabled: Boolean(config.webhookSecret),
      ...(config.webhookUrl ? { defaultUrl: config.webhookUrl } : {}),
      refusal: (url) => guard.refusal(url),
    },
  });

  // Deliveries are sent only by a server that can sign them; any replica with the secret may send any.
  const sender = config.webhookSecret
    ? new WebhookSender({
        store,
        guard,
        secret: config.webhookSecret,
        policy: { baseDelayMs: config.webhookRetryBaseMs, maxDelayMs: config.webhookRetryMaxMs, horizonMs: config.webhookRetryHorizon },
        timeoutMs: config.webhookTimeoutMs,
        concurrency: config.webhookConcurrency,
        pollMs: config.webhookPollMs,
        logger,
        onOutcome: (delivery) => metrics.observeDelivery(delivery),
      })
    : undefined;
  // A delivery this process committed goes out at once when the sender has a slot for it, not at the next look.
  if (sender) store.onDelivery((delivery) => sender.offer(delivery));

  const authenticate: Authenticate = keys ? apiKeyAuthenticator(keys) : () => "";
  if (config.retention === undefined)
    logger.info("retention is off: tasks are kept until deleted (set ROOKERY_RETENTION to purge old ones)");
  if (keys) logger.info({ keys: keys.length }, "auth is on: each API key sees only its own tasks");
  else logger.info("auth is off: every caller sees every task (set ROOKERY_API_KEYS_FILE to require API keys)");

  const shutdown = new AbortController();
  // connect-node links every in-flight call to this signal with a listener of its
  // own (removed when the call ends), so more than 10 concurrent calls is normal.
  setMaxListeners(0, shutdown.signal);
  const adapter = new HandlerAdapter({ service, authenticate, logger, shutdown: shutdown.signal });
  const health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, "SERVING" as const])));
  const tls = config.tlsCert && config.tlsKey ? { cert: config.tlsCert, key: config.tlsKey } : undefined;
  // The largest request either listener reads: a Submit of the largest prompts and tools fits.
  const readMaxBytes = 4 * config.maxPromptBytes + 1024 * 1024;
  const grpcListener = await startGrpcListener({
    adapter,
    readMaxBytes,
    health,
    host: config.host,
    port: config.port,
    watchStallMs: config.watchStallMs,
    idleConnectionMs: config.idleConnectionMs,
    ...(tls ? { tls } : {}),
  }).catch((error: unknown) => {
    throw cannotListen("gRPC", `${config.host}:${config.port}`, "ROOKERY_HOST:ROOKERY_PORT (--host, --port)", error);
  });
  const httpListener = await startHttpListener({
    adapter,
    metrics: metrics.registry,
    host: config.host,
    port: config.httpPort,
    shutdown: shutdown.signal,
    readMaxBytes,
    watchStallMs: config.watchStallMs,
    idleConnectionMs: config.idleConnectionMs,
    corsOrigins: config.corsOrigins,
    dashboard: config.dashboard,
    logger,
    ...(tls ? { tls } : {}),
  }).catch((error: unknown) => {
    throw cannotListen("HTTP", `${config.host}:${config.httpPort}`, "ROOKERY_HOST:ROOKERY_HTTP_PORT (--host, --http-port)", error);
  });
  const stopHealth = monitorHealth(store, health, logger, 2_000);
  const sweeper = new Sweeper({ store, logger, everyMs: config.sweepMs });
  supervisor.start();
  sweeper.start();
  sender?.start();
  logger.info(
    {
      grpc: `${config.host}:${grpcListener.port}`,
      http: `${config.host}:${httpListener.port}`,
      store: config.store,
      tls: Boolean(tls),
      worker: supervisor.workerId,
      modelWorkers: modelWorkers?.size ?? 0,
    },
    "rookery ready",
  );
  logger.flush(); // whoever started the server is waiting for that line: it does not wait for a block to fill

  let closing: Promise<void> | undefined;
  const step = async (what: string, work: () => Promise<void> | void) => {
    try {
      await work();
    } catch (error) {
      logger.warn({ err: errorMessage(error) }, `shutdown: ${what} failed`);
    }
  };
  return {
    grpcPort: grpcListener.port,
    httpPort: httpListener.port,
    supervisor,
    watchers: () => feed.watcherCount(),
    maxWatchQueue: () => feed.maxQueued(),
    close() {
      closing ??= (async () => {
        logger.info("shutting down: handing running tasks back");
        await step("supervisor", () => supervisor.stop());
        await step("model workers", () => modelWorkers?.close());
        await step("sweeper", () => sweeper.stop());
        await step("webhook sender", () => sender?.stop());
        await step("health", () => {
          stopHealth();
          for (const s of HEALTH_SERVICES) health.setStatus(s, "NOT_SERVING");
        });
        // Open Watch streams end with UNAVAILABLE: clients reconnect elsewhere with their last sequence.
        shutdown.abort(new ConnectError("server is shutting down; reconnect with after_sequence", Code.Unavailable));
        await step("grpc listener", () => grpcListener.close(SHUTDOWN_GRACE_MS));
        await step("http listener", () => httpListener.close(SHUTDOWN_GRACE_MS));
        await step("store", () => store.close());
        logger.info("shut down");
      })();
      return closing;
    },
  };
}

/**
 * A listener that could not bind, in the terms of its settings: the port is taken, or the host
 * is not this machine's (configuration either way: exit 2). grpc-js wraps the system's error in
 * a sentence of its own; the errno's words are picked out of either.
 */
function cannotListen(listener: string, address: string, settings: string, error: unknown): ConfigError {
  const message = errorMessage(error);
  const reason = /\b(E[A-Z]+): ([a-z][a-z ]*[a-z])/.exec(message);
  return new ConfigError(`cannot serve ${listener} on ${settings} = ${address}: ${reason ? `${reason[2]} (${reason[1]})` : message}`);
}
