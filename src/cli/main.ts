// The `rookery` command: `serve` runs the service; the other commands are a
// client of its gRPC listener. Exit codes: 0 success, 1 an RPC failed or the
// watched task ended FAILED/CANCELLED, 2 bad usage or configuration.
import { toJson } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { Command, Option } from "commander";
import { ApiKeyFormatError, createApiKey } from "../auth/api-keys.js";
import { ConfigError, SETTINGS, loadConfig, type SettingName } from "../config.js";
import { createLogger, errorMessage } from "../logger.js";
import { TaskSchema, TaskStatus, type OutputDelta, type Task } from "../../gen/rookery/v1/task_pb.js";
import { WatchResponseSchema } from "../../gen/rookery/v1/task_service_pb.js";
import { connectTaskClient } from "./client.js";
import { follow } from "./follow.js";
import { INT32_MAX, duration, wholeBigint, wholeNumber } from "./options.js";
import {
  UsageError,
  errorCodeName,
  formatDelivery,
  formatEvent,
  formatMessage,
  formatTask,
  formatTaskRow,
  forTerminal,
  statusFromName,
  statusName,
} from "./format.js";
import { webhookSecretFor } from "../webhooks/secrets.js";
import { crashHooks } from "../testing/crash-points.js";

const program = new Command("rookery")
  .description("Durable background LLM agent loops behind a gRPC / Connect API")
  .option(
    "--address <host:port>",
    "gRPC address of the server (https://host:port for TLS)",
    process.env.ROOKERY_ADDRESS ?? "127.0.0.1:50051",
  )
  .option("--api-key <key>", "API key (default: $ROOKERY_API_KEY)", process.env.ROOKERY_API_KEY)
  .option("--json", "print JSON instead of text")
  .showHelpAfterError()
  // Commander has printed what was wrong (an unknown command or flag, a missing argument, a
  // value a flag cannot take): that is bad usage, exit 2 (1 is for a failed RPC). --help is 0.
  // Set before the commands are added, which inherit it.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

/** The flags every command takes. */
interface GlobalFlags {
  address: string;
  apiKey?: string;
  json?: boolean;
}

interface SubmitFlags {
  system?: string;
  provider?: string;
  model?: string;
  maxIterations?: number;
  label?: string[];
  requestId?: string;
  maxTokens?: bigint;
  timeout?: Duration;
  queueTimeout?: Duration;
  retention?: Duration;
  webhook?: string;
  webhookStatus?: string[];
  watch?: boolean;
}

interface ListFlags {
  status?: string[];
  label?: string[];
  pageSize: number;
  pageToken: string;
}

interface ResumeFlags {
  message?: string;
  toolResult?: string[];
  additionalIterations?: number;
  additionalTokens?: bigint;
  timeout?: Duration;
  watch?: boolean;
}

const globals = () => program.opts<GlobalFlags>();
const client = () => connectTaskClient(globals().address, globals().apiKey);
const json = (): boolean => Boolean(globals().json);
/** A line for people: text from models, clients and receivers as a terminal should show it. */
const say = (text: string) => console.log(forTerminal(text));
const printTask = (task: Task | undefined) => {
  if (!task) return;
  if (json()) console.log(JSON.stringify(toJson(TaskSchema, task)));
  else say(formatTask(task));
};
const collect = (value: string, previous: string[] = []) => [...previous, value];
const keyValues = (pairs: string[] = []): Record<string, string> =>
  Object.fromEntries(
    pairs.map((p) => {
      const i = p.indexOf("=");
      if (i <= 0) throw new UsageError(`expected key=value, got "${p}"`);
      return [p.slice(0, i), p.slice(i + 1)];
    }),
  );

const serve = program.command("serve").description("run the service (settings from flags, then env vars)");
for (const setting of Object.values(SETTINGS)) {
  // Each flag's camelCase attribute is the setting's name (--http-port -> httpPort); config.spec.ts checks it.
  serve.addOption(new Option(setting.flag, `${setting.help} [${setting.env}]`));
}
serve.action(async (flags: Partial<Record<SettingName, string>>) => {
  const config = loadConfig(process.env, flags);
  const logger = createLogger(config.logLevel);
  // The server and the OpenTelemetry SDK are loaded here, not at the top: a client command needs
  // neither, and loading them made its start ~1 s slower (`rookery --help` 2.2 s against 1.2 s here).
  const { startTracing } = await import("../telemetry/setup.js");
  const { startRookery } = await import("../server/rookery.js");
  // Before anything makes a span: with no OTEL_* endpoint set, nothing is set up.
  const tracing = startTracing(process.env);
  if (tracing)
    logger.info(
      { endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT },
      "exporting traces over OTLP",
    );
  const rookery = await startRookery(config, logger, crashHooks(process.env.ROOKERY_TEST_CRASH_AT));
  const stop = (signal: string) => {
    logger.info({ signal }, "signal received");
    void rookery
      .close()
      .then(() => tracing?.shutdown())
      .then(() => process.exit(0));
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
});

const keys = program.command("keys").description("manage API keys");
keys
  .command("create <id>")
  .description("make a new API key: prints the key (give it to the caller) and its entry (add it to ROOKERY_API_KEYS_FILE)")
  .action((id: string) => {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new UsageError("a key id is 1-64 of A-Z a-z 0-9 _ . -");
    const { key, entry } = createApiKey(id);
    if (json()) return console.log(JSON.stringify({ id, key, entry }));
    console.log(`key:   ${key}\nentry: ${entry}`);
  });
keys
  .command("webhook-secret <id>")
  .description(
    "print the secret that signs the webhook deliveries of the key's tasks (derived from ROOKERY_WEBHOOK_SECRET; give it to the key's owner)",
  )
  .action((id: string) => {
    const secret = process.env.ROOKERY_WEBHOOK_SECRET;
    if (!secret) throw new UsageError("ROOKERY_WEBHOOK_SECRET must be set: key secrets derive from it");
    console.log(webhookSecretFor(secret, id));
  });

program
  .command("submit <prompt>")
  .description("submit a task")
  .option("--system <prompt>", "system prompt")
  .option("--provider <name>", "provider")
  .option("--model <model>", "model")
  .option("--max-iterations <n>", "max iterations", wholeNumber())
  .option("--label <key=value>", "label (repeatable)", collect)
  .option("--request-id <key>", "idempotency key")
  .option("--max-tokens <n>", "tokens the task may use in all", wholeBigint)
  .option("--timeout <duration>", "from now to a terminal status, e.g. 10m (FAILS with TIMEOUT past it)", duration)
  .option("--queue-timeout <duration>", "longest wait in PENDING, e.g. 1m", duration)
  .option("--retention <duration>", "keep the task this long after it ends, e.g. 7d", duration)
  .option("--webhook <url>", "post the task's transitions there (signed, retried)")
  .option(
    "--webhook-status <status>",
    "a status whose entry is posted (repeatable; default input_required, completed, failed, cancelled)",
    collect,
  )
  .option("--watch", "watch the task until it ends")
  .action(async (prompt: string, flags: SubmitFlags) => {
    const { task } = await client().submit({
      prompt,
      systemPrompt: flags.system ?? "",
      provider: flags.provider,
      model: flags.model,
      maxIterations: flags.maxIterations,
      labels: keyValues(flags.label),
      requestId: flags.requestId ?? "",
      maxTotalTokens: flags.maxTokens,
      timeout: flags.timeout,
      queueTimeout: flags.queueTimeout,
      retention: flags.retention,
      ...(flags.webhook ? { webhook: { url: flags.webhook, statuses: (flags.webhookStatus ?? []).map(statusFromName) } } : {}),
    });
    if (!flags.watch) return printTask(task);
    if (!json()) console.log(`submitted ${task!.id}`);
    await watch(task!.id, 0n);
  });

program
  .command("get <id>")
  .description("show a task")
  .action(async (id: string) => {
    const { task } = await client().get({ id });
    printTask(task);
    if (json() || !task?.webhook) return;
    let pageToken = "";
    do {
      const page = await client().listWebhookDeliveries({ id, pageToken });
      for (const delivery of page.deliveries) say(formatDelivery(delivery));
      pageToken = page.nextPageToken;
    } while (pageToken);
  });

program
  .command("list")
  .description("list tasks, newest first")
  .option("--status <status>", "only this status (repeatable)", collect)
  .option("--label <key=value>", "only tasks with this label (repeatable)", collect)
  .option("--page-size <n>", "page size", wholeNumber(INT32_MAX), 20)
  .option("--page-token <token>", "next_page_token of the previous page", "")
  .action(async (flags: ListFlags) => {
    const page = await client().list({
      pageSize: flags.pageSize,
      pageToken: flags.pageToken,
      statuses: (flags.status ?? []).map(statusFromName),
      labels: keyValues(flags.label),
    });
    if (json())
      return console.log(JSON.stringify({ tasks: page.tasks.map((t) => toJson(TaskSchema, t)), nextPageToken: page.nextPageToken }));
    for (const t of page.tasks) say(formatTaskRow(t));
    if (page.nextPageToken) console.log(`next page: --page-token ${page.nextPageToken}`);
  });

program
  .command("watch <id>")
  .description("stream a task's events until it ends")
  .addOption(new Option("--after <sequence>", "last sequence already seen").argParser(wholeBigint).default(0n, "0"))
  .action(async (id: string, flags: { after: bigint }) => watch(id, flags.after));

program
  .command("resume <id>")
  .description("continue a task from its checkpoint")
  .option("--message <text>", "a user message to add")
  .option("--tool-result <call_id=content>", "the answer to a pending tool call (repeatable)", collect)
  .option("--additional-iterations <n>", "raise max iterations by n", wholeNumber())
  .option("--additional-tokens <n>", "raise max total tokens by n", wholeBigint)
  .option("--timeout <duration>", "a new deadline, this long from now", duration)
  .option("--watch", "watch the task from the resume until it ends")
  .action(async (id: string, flags: ResumeFlags) => {
    const results = Object.entries(keyValues(flags.toolResult)).map(([toolCallId, content]) => ({ toolCallId, content }));
    const { task } = await client().resume({
      id,
      message: flags.message,
      toolResults: results,
      additionalIterations: flags.additionalIterations,
      additionalTokens: flags.additionalTokens,
      timeout: flags.timeout,
    });
    if (!flags.watch) return printTask(task);
    if (!json()) console.log(`resumed ${id}`);
    // From the resume's own event on (the task's last event when Resume answered).
    await watch(id, task!.lastEventSequence - 1n);
  });

program
  .command("delete <id>")
  .description("delete a task and everything stored for it (a run of it stops)")
  .action(async (id: string) => {
    await client().delete({ id });
    if (json()) console.log(JSON.stringify({ id, deleted: true }));
    else console.log(`deleted ${id}`);
  });

program
  .command("cancel <id>")
  .description("cancel a task")
  .option("--reason <text>", "recorded as the task's error", "")
  .action(async (id: string, flags: { reason: string }) => printTask((await client().cancel({ id, reason: flags.reason })).task));

/** How long `watch` keeps reconnecting to a server that went away (a restart, a deploy). */
const RECONNECT_FOR_MS = 60_000;

/**
 * Streams a task: the assistant's text as the model writes it, each tool call with
 * its arguments and each tool result, and a line per status change; with --json,
 * each WatchResponse as one line of proto JSON. Follows the task across a restart
 * of the server (follow.ts).
 */
async function watch(id: string, afterSequence: bigint): Promise<void> {
  let last: TaskStatus = TaskStatus.UNSPECIFIED;
  const text = new StreamedText();
  const responses = follow(client(), id, afterSequence, {
    giveUpAfterMs: RECONNECT_FOR_MS,
    onLost: (error, after) => {
      if (!json()) text.breakLine();
      console.error(`rookery: lost the stream (${Code[error.code]}: ${error.rawMessage}); reconnecting after sequence ${after}`);
    },
    onGiveUp: (after) =>
      console.error(`rookery: no server for ${RECONNECT_FOR_MS / 1000} s; to follow the task again: rookery watch ${id} --after ${after}`),
  });
  for await (const response of responses) {
    if (response.event) last = response.event.status;
    if (json()) console.log(JSON.stringify(toJson(WatchResponseSchema, response)));
    else if (response.output) text.add(response.output);
    else if (response.event) {
      const streamed = text.end();
      for (const message of response.event.messages) for (const line of formatMessage(message, streamed)) say(line);
      console.log(formatEvent(response.event));
    }
  }
  if (!json()) {
    const final = (await client().get({ id })).task;
    if (final?.error !== undefined)
      console.error(forTerminal(`error: ${final.error}${final.errorCode ? ` (${errorCodeName(final.errorCode)})` : ""}`));
  }
  if (last === TaskStatus.FAILED || last === TaskStatus.CANCELLED) {
    process.exitCode = 1;
    if (!json()) console.error(`task ended ${statusName(last)}`);
  }
}

/** The assistant's text of the iteration in flight, printed as it streams. */
class StreamedText {
  private text = "";
  private attempt: number | undefined;
  /** Whether the terminal's cursor is after streamed text, mid-line. */
  private open = false;

  add(output: OutputDelta): void {
    if (this.attempt !== undefined && output.attempt !== this.attempt && this.text) {
      this.breakLine();
      process.stdout.write("[the model's output started over]\n");
      this.text = "";
    }
    this.attempt = output.attempt;
    if (!output.text) return;
    process.stdout.write(forTerminal(output.text));
    this.text += output.text;
    this.open = !output.text.endsWith("\n");
  }

  /** Ends the line streamed text left open, so that what is printed next starts on its own. */
  breakLine(): void {
    if (this.open) process.stdout.write("\n");
    this.open = false;
  }

  /** The iteration's event has come: its text as streamed (formatMessage leaves it out), and a fresh start. */
  end(): string {
    const text = this.text;
    this.breakLine();
    this.text = "";
    this.attempt = undefined;
    return text;
  }
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError || error instanceof UsageError || error instanceof ApiKeyFormatError) {
    console.error(`rookery: ${error.message}`);
    process.exit(2);
  }
  if (error instanceof ConnectError) {
    console.error(`rookery: ${Code[error.code]}: ${error.rawMessage}`);
    process.exit(1);
  }
  console.error(`rookery: ${errorMessage(error)}`);
  process.exit(1);
}
