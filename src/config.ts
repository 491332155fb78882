// Every setting in one place: its env var, its `rookery serve` flag, its zod
// schema (which also applies the default) and a line of help. Settings are
// compiled in stages: raw strings (flags over env) -> zod (defaults, types)
// -> cross-field checks. A bad value is a ConfigError naming the setting.
import { z } from "zod";
import { MAX_TIMER_MS } from "./timer-limit.js";
import { availableParallelism } from "node:os";

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
/** Milliseconds a timer waits: at least `min`, and no longer than a timer can (Node fires a longer one at once). */
const timerMs = (min: number) =>
  z.coerce.number().int().min(min).max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} (about 24.8 days, the longest a timer can wait)`);
/** "true" or "false" (nothing else), with a default. */
const bool = (byDefault: boolean) =>
  z
    .enum(["true", "false"])
    .default(byDefault ? "true" : "false")
    .transform((v) => v === "true");
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

/** A duration: a number of milliseconds, or a number with ms, s, m, h or d ("90s", "24h"). */
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  return match ? Math.round(Number(match[1]) * UNITS[match[2] ?? "ms"]!) : undefined;
}
const duration = z
  .string()
  .optional()
  .transform((text, ctx) => {
    if (text === undefined || text === "" || text === "0") return undefined;
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: "must be a duration: milliseconds, or a number with ms, s, m, h or d (e.g. 90s, 24h)" });
      return z.NEVER;
    }
    return ms;
  });

/** Comma-separated values, trimmed, empty ones dropped; none when unset. */
const commaList = z
  .string()
  .default("")
  .transform((v) =>
    v
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== ""),
  );

const providersJson = z
  .string()
  .default("{}")
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "must be a JSON object" });
      return z.NEVER;
    }
  })
  .pipe(
    z.record(z.string().regex(/^[a-z0-9_-]+$/), z.object({ baseURL: z.string().url().optional(), apiKey: z.string().optional() }).strict()),
  );

export const SETTINGS = {
  host: { env: "ROOKERY_HOST", flag: "--host <host>", help: "Address both listeners bind to", schema: z.string().default("127.0.0.1") },
  port: {
    env: "ROOKERY_PORT",
    flag: "--port <port>",
    help: "Native gRPC listener (grpc-js, reflection, health)",
    schema: port.default(50051),
  },
  httpPort: {
    env: "ROOKERY_HTTP_PORT",
    flag: "--http-port <port>",
    help: "Connect / gRPC-Web / gRPC listener (HTTP/1.1 and h2c), also /metrics",
    schema: port.default(8080),
  },
  tlsCert: {
    env: "ROOKERY_TLS_CERT",
    flag: "--tls-cert <file>",
    help: "PEM certificate: serve TLS on both listeners (with --tls-key)",
    schema: optionalString,
  },
  tlsKey: { env: "ROOKERY_TLS_KEY", flag: "--tls-key <file>", help: "PEM private key for --tls-cert", schema: optionalString },
  store: {
    env: "ROOKERY_STORE",
    flag: "--store <kind>",
    help: "`sqlite` (embedded, default) or `mongodb`",
    schema: z.enum(["sqlite", "mongodb"]).default("sqlite"),
  },
  sqlitePath: {
    env: "ROOKERY_SQLITE_PATH",
    flag: "--sqlite-path <file>",
    help: "SQLite file of the embedded store (`:memory:` for a throwaway one)",
    schema: z.string().min(1).default("./data/rookery.db"),
  },
  mongodbUri: {
    env: "MONGODB_URI",
    flag: "--mongodb-uri <uri>",
    help: "MongoDB connection string (with --store mongodb)",
    schema: optionalString,
  },
  mongodbDb: {
    env: "ROOKERY_MONGODB_DB",
    flag: "--mongodb-db <name>",
    help: "MongoDB database name",
    schema: z.string().min(1).default("rookery"),
  },
  mongodbTimeoutMs: {
    env: "ROOKERY_MONGODB_TIMEOUT_MS",
    flag: "--mongodb-timeout-ms <ms>",
    help: "How long a MongoDB operation waits for a reachable server before answering UNAVAILABLE",
    schema: timerMs(1).default(5_000),
  },
  openaiBaseUrl: {
    env: "OPENAI_BASE_URL",
    flag: "--openai-base-url <url>",
    help: "OpenAI-compatible endpoint of the default provider (e.g. http://localhost:11434/v1 for Ollama)",
    schema: optionalString.pipe(z.string().url().optional()),
  },
  openaiApiKey: {
    env: "OPENAI_API_KEY",
    flag: "--openai-api-key <key>",
    help: "API key of the default provider (any non-empty value for servers that need none)",
    schema: optionalString,
  },
  provider: {
    env: "ROOKERY_PROVIDER",
    flag: "--provider <name>",
    help: "Name of the default provider (served by OPENAI_BASE_URL / OPENAI_API_KEY)",
    schema: z
      .string()
      .regex(/^[a-z0-9_-]+$/)
      .default("openai"),
  },
  providers: {
    env: "ROOKERY_PROVIDERS",
    flag: "--providers <json>",
    help: 'More providers a task may name: JSON `{"ollama":{"baseURL":"http://localhost:11434/v1","apiKey":"ollama"}}`',
    schema: providersJson,
  },
  model: {
    env: "ROOKERY_MODEL",
    flag: "--model <model>",
    help: "Default model of a task that names none",
    schema: z.string().min(1).default("gpt-4o-mini"),
  },
  maxIterations: {
    env: "ROOKERY_MAX_ITERATIONS",
    flag: "--max-iterations <n>",
    help: "Default max_iterations of a task",
    schema: positiveInt.max(10_000).default(20),
  },
  modelTimeoutMs: {
    env: "ROOKERY_MODEL_TIMEOUT_MS",
    flag: "--model-timeout-ms <ms>",
    help: "Longest wait for a model call's reply to start, and then between two of its chunks; an error reply's body must arrive within it too",
    schema: timerMs(1).default(120_000),
  },
  modelMaxRetries: {
    env: "ROOKERY_MODEL_MAX_RETRIES",
    flag: "--model-max-retries <n>",
    help: "Retries of a model call on 408/409/429/5xx or connection errors (capped exponential backoff with jitter, honouring Retry-After)",
    schema: z.coerce.number().int().min(0).max(20).default(4),
  },
  modelWorkers: {
    env: "ROOKERY_MODEL_WORKERS",
    flag: "--model-workers <n>",
    help: "Worker threads that make the model calls (the SDK call and reading its stream), so they run on another core than the store, leases and Watch; 0 makes them on the main thread. Default: one less than the CPUs, at most 4",
    schema: z.coerce
      .number()
      .int()
      .min(0)
      .max(64)
      .default(Math.min(4, availableParallelism() - 1)),
  },
  traceContent: {
    env: "ROOKERY_TRACE_CONTENT",
    flag: "--trace-content <bool>",
    help: "Record prompts and completions on chat spans (gen_ai.input.messages, gen_ai.output.messages) when tracing is on; off by default, as they may hold what callers would not want in a tracing backend",
    schema: bool(false),
  },
  maxReplyBytes: {
    env: "ROOKERY_MAX_REPLY_BYTES",
    flag: "--max-reply-bytes <n>",
    help: "Largest model reply (text plus tool-call arguments, UTF-8 bytes) a task stores; a longer one is stopped as it streams and the task FAILS saying so",
    schema: positiveInt.default(1024 * 1024),
  },
  maxReplyMs: {
    env: "ROOKERY_MAX_REPLY_MS",
    flag: "--max-reply-ms <ms>",
    help: "Longest a model call may take, from its request to its reply's end, however steadily the reply's chunks come (a provider that keeps its stream alive without ending it would hold the run for good); past it the call is stopped and retried like a stalled one",
    schema: timerMs(1_000).default(30 * 60_000),
  },
  maxConversationBytes: {
    env: "ROOKERY_MAX_CONVERSATION_BYTES",
    flag: "--max-conversation-bytes <n>",
    help: "Largest conversation (all message text, UTF-8 bytes) a task may build; past it the task FAILS saying so, so that Get stays under every client's 4 MiB message limit",
    schema: positiveInt.default(1536 * 1024),
  },
  maxTotalTokens: {
    env: "ROOKERY_MAX_TOTAL_TOKENS",
    flag: "--max-total-tokens <n>",
    help: "Default max_total_tokens of a task: no model call is made once it has used this many (0: no limit)",
    schema: z.coerce.number().int().min(0).default(0),
  },
  taskTimeout: {
    env: "ROOKERY_TASK_TIMEOUT",
    flag: "--task-timeout <duration>",
    help: "Default timeout of a task, from Submit to a terminal status (e.g. 30m; unset: none)",
    schema: duration,
  },
  queueTimeout: {
    env: "ROOKERY_QUEUE_TIMEOUT",
    flag: "--queue-timeout <duration>",
    help: "Default longest time a task may wait in PENDING (e.g. 10m; unset: none)",
    schema: duration,
  },
  retention: {
    env: "ROOKERY_RETENTION",
    flag: "--retention <duration>",
    help: "Terminal tasks older than this are deleted with their events and checkpoint, in small batches (e.g. 30d; unset: kept for ever)",
    schema: duration,
  },
  sweepMs: {
    env: "ROOKERY_SWEEP_MS",
    flag: "--sweep-ms <ms>",
    help: "How often deadlines of tasks no run holds are enforced and retention purges what is due (each round queries the tasks; a run enforces its own deadline to the millisecond)",
    schema: timerMs(10).default(5_000),
  },
  maxTakeovers: {
    env: "ROOKERY_MAX_TAKEOVERS",
    flag: "--max-takeovers <n>",
    help: "Times in a row a task's run may be taken over from a holder that died (lease expired) before the task FAILS instead (a task that crashes its server is not retried forever)",
    schema: positiveInt.default(3),
  },
  concurrency: {
    env: "ROOKERY_CONCURRENCY",
    flag: "--concurrency <n>",
    help: "Tasks this process runs at once; 0 runs none (an API-only replica)",
    schema: z.coerce.number().int().min(0).max(10_000).default(16),
  },
  leaseMs: {
    env: "ROOKERY_LEASE_MS",
    flag: "--lease-ms <ms>",
    help: "Lease of a running task; renewed every third of it; an expired lease is taken over",
    schema: timerMs(100).default(30_000),
  },
  pollMs: {
    env: "ROOKERY_POLL_MS",
    flag: "--poll-ms <ms>",
    help: "How often to look for claimable tasks (submitted elsewhere, or with an expired lease)",
    schema: timerMs(10).default(1_000),
  },
  watchPollMs: {
    env: "ROOKERY_WATCH_POLL_MS",
    flag: "--watch-poll-ms <ms>",
    help: "How often a Watch stream looks in the store for events written by other replicas",
    schema: timerMs(10).default(500),
  },
  outputCoalesceMs: {
    env: "ROOKERY_OUTPUT_COALESCE_MS",
    flag: "--output-coalesce-ms <ms>",
    help: "Watch with include_output: the longest streamed model output waits before it is sent, so that a fast model costs a message per window rather than per token",
    schema: z.coerce.number().int().min(1).max(10_000).default(50),
  },
  outputGraceMs: {
    env: "ROOKERY_OUTPUT_GRACE_MS",
    flag: "--output-grace-ms <ms>",
    help: "Watch with include_output: how long a finished run's streamed output is kept for watchers that reconnect with an output offset (the event always stores the whole text)",
    schema: timerMs(0).default(30_000),
  },
  corsOrigins: {
    env: "ROOKERY_CORS_ORIGINS",
    flag: "--cors-origins <list>",
    help: "Comma-separated origins (e.g. https://app.example.com) whose web apps may call the API on the HTTP listener with gRPC-Web or Connect; `*` for any; none by default",
    schema: commaList,
  },
  dashboard: {
    env: "ROOKERY_DASHBOARD",
    flag: "--dashboard <bool>",
    help: "Serve the web dashboard on GET / of the HTTP listener (it calls the API like any client, with the same auth)",
    schema: bool(true),
  },
  webhookUrl: {
    env: "ROOKERY_WEBHOOK_URL",
    flag: "--webhook-url <url>",
    help: "Webhook of tasks whose Submit names none (their transitions to INPUT_REQUIRED, COMPLETED, FAILED and CANCELLED are posted there); needs ROOKERY_WEBHOOK_SECRET",
    schema: optionalString.pipe(z.string().url().optional()),
  },
  webhookSecret: {
    env: "ROOKERY_WEBHOOK_SECRET",
    flag: "--webhook-secret <whsec_...>",
    help: "Standard Webhooks signing secret (`whsec_` + base64 of 24-64 random bytes). With API keys on, each key's deliveries are signed with a secret derived from it: `rookery keys webhook-secret <key id>` prints it",
    schema: optionalString.pipe(
      z
        .string()
        .regex(/^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/, "must be whsec_ followed by the base64 of 24-64 bytes")
        .optional(),
    ),
  },
  webhookAllowHosts: {
    env: "ROOKERY_WEBHOOK_ALLOW_HOSTS",
    flag: "--webhook-allow-hosts <list>",
    help: "Comma-separated host names, IP addresses and CIDR ranges webhooks may reach even though they are loopback, private or link-local, and over plain http (e.g. `localhost,10.0.0.0/8`); by default only https to public addresses",
    schema: commaList,
  },
  webhookTimeoutMs: {
    env: "ROOKERY_WEBHOOK_TIMEOUT_MS",
    flag: "--webhook-timeout-ms <ms>",
    help: "An attempt whose receiver has not answered in this long counts as failed",
    schema: timerMs(1).default(10_000),
  },
  webhookConcurrency: {
    env: "ROOKERY_WEBHOOK_CONCURRENCY",
    flag: "--webhook-concurrency <n>",
    help: "Delivery attempts this process makes at once; one receiver gets at most half of them, so a slow one never holds up the others",
    schema: positiveInt.default(32),
  },
  webhookRetryBaseMs: {
    env: "ROOKERY_WEBHOOK_RETRY_BASE_MS",
    flag: "--webhook-retry-base-ms <ms>",
    help: "Retry n of a delivery waits between half and all of this times 2^(n-1) (or the receiver's Retry-After), at most ROOKERY_WEBHOOK_RETRY_MAX_MS",
    schema: timerMs(1).default(5_000),
  },
  webhookRetryMaxMs: {
    env: "ROOKERY_WEBHOOK_RETRY_MAX_MS",
    flag: "--webhook-retry-max-ms <ms>",
    help: "Longest wait between two attempts of a delivery",
    schema: timerMs(1).default(3_600_000),
  },
  webhookRetryHorizon: {
    env: "ROOKERY_WEBHOOK_RETRY_HORIZON",
    flag: "--webhook-retry-horizon <duration>",
    help: "A delivery not answered with a 2xx this long after its transition is marked failed",
    schema: duration.transform((ms) => ms ?? 86_400_000),
  },
  webhookPollMs: {
    env: "ROOKERY_WEBHOOK_POLL_MS",
    flag: "--webhook-poll-ms <ms>",
    help: "How often the sender looks for due deliveries (retries, other replicas', and those left over while every slot was busy); this process's own transitions are sent right after their commit",
    schema: timerMs(1).default(1_000),
  },
  apiKeysFile: {
    env: "ROOKERY_API_KEYS_FILE",
    flag: "--api-keys-file <file>",
    help: "API keys, one `<key id> sha256:<hex>` per line (make one with `rookery keys create <id>`); auth is off when neither this nor ROOKERY_API_KEYS is set",
    schema: optionalString,
  },
  apiKeys: {
    env: "ROOKERY_API_KEYS",
    flag: "--api-keys <entries>",
    help: "API keys as comma-separated `<key id> sha256:<hex>` entries",
    schema: optionalString,
  },
  maxActiveTasksPerKey: {
    env: "ROOKERY_MAX_ACTIVE_TASKS_PER_KEY",
    flag: "--max-active-tasks-per-key <n>",
    help: "PENDING, RUNNING and INPUT_REQUIRED tasks one API key may have (when auth is on); Submit past it is RESOURCE_EXHAUSTED",
    schema: positiveInt.default(1_000),
  },
  maxWatchesPerKey: {
    env: "ROOKERY_MAX_WATCHES_PER_KEY",
    flag: "--max-watches-per-key <n>",
    help: "Watch streams one caller may hold open on this process; more is RESOURCE_EXHAUSTED",
    schema: positiveInt.default(100),
  },
  watchQueueLimit: {
    env: "ROOKERY_WATCH_QUEUE_LIMIT",
    flag: "--watch-queue-limit <n>",
    help: "Live events held for one slow Watch before it falls back to reading the store (bounds memory per stream)",
    schema: positiveInt.default(256),
  },
  watchStallMs: {
    env: "ROOKERY_WATCH_STALL_MS",
    flag: "--watch-stall-ms <ms>",
    help: "A Watch whose client has not read for this long ends with RESOURCE_EXHAUSTED (resume with after_sequence)",
    schema: timerMs(1).default(30_000),
  },
  idleConnectionMs: {
    env: "ROOKERY_IDLE_CONNECTION_MS",
    flag: "--idle-connection-ms <ms>",
    help: "A client connection with no call in progress for this long is closed (HTTP/2: with a GOAWAY, which clients answer by reconnecting)",
    schema: timerMs(100).default(5 * 60_000),
  },
  maxPromptBytes: {
    env: "ROOKERY_MAX_PROMPT_BYTES",
    flag: "--max-prompt-bytes <n>",
    help: "Largest prompt, system prompt or Resume message (UTF-8 bytes)",
    schema: positiveInt.default(256 * 1024),
  },
  logLevel: {
    env: "ROOKERY_LOG_LEVEL",
    flag: "--log-level <level>",
    help: "trace, debug, info, warn, error or silent",
    schema: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  },
} as const;

type Settings = typeof SETTINGS;
export type SettingName = keyof Settings;
export type Config = { [K in SettingName]: z.output<Settings[K]["schema"]> };

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Flags win over env vars; undefined flags fall through to env, then defaults. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  flags: Partial<Record<SettingName, string>> = {},
): Config {
  const config: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Settings[SettingName]][]) {
    const raw = flags[name] ?? env[setting.env];
    const parsed = (setting.schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => i.message).join("; ");
      throw new ConfigError(`invalid ${setting.env} (${setting.flag.split(" ")[0]}) = ${JSON.stringify(raw)}: ${why}`);
    }
    config[name] = parsed.data;
  }
  return checked(config as Config);
}

function checked(config: Config): Config {
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    throw new ConfigError("ROOKERY_TLS_CERT and ROOKERY_TLS_KEY must be given together");
  }
  if (config.store === "mongodb" && !config.mongodbUri) {
    throw new ConfigError("ROOKERY_STORE=mongodb needs MONGODB_URI (--mongodb-uri)");
  }
  if (config.webhookUrl && !config.webhookSecret) {
    throw new ConfigError("ROOKERY_WEBHOOK_URL needs ROOKERY_WEBHOOK_SECRET (--webhook-secret) to sign its deliveries");
  }
  if (config.port !== 0 && config.port === config.httpPort) {
    throw new ConfigError(`ROOKERY_PORT and ROOKERY_HTTP_PORT are both ${config.port}; give them different ports`);
  }
  return config;
}
