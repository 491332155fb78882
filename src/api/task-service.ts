// The TaskService handlers, written once against the generated message types
// and a transport-neutral CallContext. src/server/ serves them over grpc-js and
// connect-node; errors thrown here are domain errors, mapped to codes there.
import { create, toBinary } from "@bufbuild/protobuf";
import { TaskSchema, type Task as PbTask } from "../../gen/rookery/v1/task_pb.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  ResourceExhaustedError,
  TaskNotFoundError,
} from "../domain/errors.js";
import { basicView, isTerminal, summarize, type Task, type TaskEvent } from "../domain/task.js";
import { cancel, createTask, resume } from "../domain/transitions.js";
import type { TaskStore } from "../store/task-store.js";
import type { EventFeed } from "../watch/event-feed.js";
import { watchStream } from "../watch/watch-events.js";
import { OutputCursor } from "../watch/output-cursor.js";
import type { OutputFeed } from "../watch/output-feed.js";
import type { OutputChunk } from "../domain/output.js";
import {
  CancelResponseSchema,
  DeleteResponseSchema,
  type DeleteRequest,
  type DeleteResponse,
  GetResponseSchema,
  ListResponseSchema,
  ListWebhookDeliveriesResponseSchema,
  type ListWebhookDeliveriesRequest,
  type ListWebhookDeliveriesResponse,
  ResumeResponseSchema,
  SubmitResponseSchema,
  WatchResponseSchema,
  type CancelRequest,
  type CancelResponse,
  type GetRequest,
  type GetResponse,
  type ListRequest,
  type ListResponse,
  type ResumeRequest,
  type ResumeResponse,
  type SubmitRequest,
  type SubmitResponse,
  type WatchRequest,
  type WatchResponse,
} from "../../gen/rookery/v1/task_service_pb.js";
import type { Hooks } from "../hooks.js";
import { currentTraceparent } from "../telemetry/spans.js";
import type { CallContext } from "./call-context.js";
import { deliveryToPb, eventToPb, outputToPb, taskToPb } from "./convert.js";
import { DEFAULT_WEBHOOK_STATUSES, type WebhookConfig } from "../domain/webhooks.js";
import { decodePageToken, decodeSequenceToken, encodePageToken, encodeSequenceToken, filterFingerprint } from "./page-token.js";
import { checkCancel, checkId, checkList, checkListDeliveries, checkResume, checkSubmit, checkWatch, type Limits } from "./validate.js";

export interface TaskServiceDeps {
  store: TaskStore;
  feed: EventFeed;
  /** The model output of the tasks this process runs, for Watch with include_output. */
  outputs: OutputFeed;
  limits: Limits;
  defaults: {
    provider: string;
    model: string;
    maxIterations: number;
    /** 0: no limit. */
    maxTotalTokens: number;
    timeoutMs?: number;
    queueTimeoutMs?: number;
    retentionMs?: number;
  };
  /** Provider names a task may ask for. */
  providers: string[];
  /** Tool names the server implements (clients may not declare these). */
  serverTools: string[];
  watchPollMs: number;
  /** Live events held per Watch before it reads the store instead. */
  watchQueueLimit: number;
  /** True when API keys are required: then each caller sees only its own tasks. */
  authEnabled: boolean;
  hooks?: Hooks;
  webhooks: {
    /** False without ROOKERY_WEBHOOK_SECRET: nothing could sign deliveries, so webhooks are refused. */
    enabled: boolean;
    /** ROOKERY_WEBHOOK_URL: the webhook of tasks that name none. */
    defaultUrl?: string;
    /** Why the server may not post to a URL (the SSRF guard, which resolves its host); undefined when it may. */
    refusal(url: string): Promise<string | undefined>;
  };
}

/** `{ [key]: value }` when the value is defined, else nothing: for optional fields of exact types. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: V });
}

/** A List page stops growing past this many encoded bytes, well under every client's 4 MiB default. */
const MAX_LIST_PAGE_BYTES = 3 * 1024 * 1024;

// One message per event (and per output chunk), shared by every watcher that receives
// the same object, and so encoded once for all of them (see grpc-server.ts). Watchers
// woken together read the same output chunk object (output-log.ts).
const eventResponses = new WeakMap<TaskEvent, WatchResponse>();
const outputResponses = new WeakMap<OutputChunk, WatchResponse>();

function shared<K extends object>(cache: WeakMap<K, WatchResponse>, key: K, make: () => WatchResponse): WatchResponse {
  let response = cache.get(key);
  if (!response) {
    response = make();
    cache.set(key, response);
  }
  return response;
}

const watchResponse = (event: TaskEvent) => shared(eventResponses, event, () => create(WatchResponseSchema, { event: eventToPb(event) }));
const outputResponse = (chunk: OutputChunk) =>
  shared(outputResponses, chunk, () => create(WatchResponseSchema, { output: outputToPb(chunk) }));

export class TaskService {
  /** Open Watch streams on this process, by principal. */
  private readonly watches = new Map<string, number>();

  constructor(private readonly deps: TaskServiceDeps) {}

  async submit(req: SubmitRequest, ctx: CallContext): Promise<SubmitResponse> {
    const input = checkSubmit(req, this.deps.limits, {
      providers: this.deps.providers,
      serverTools: this.deps.serverTools,
    });
    const { defaults, limits } = this.deps;
    const webhook = await this.webhookOf(input.webhook);
    const draft = createTask(
      {
        ...input,
        provider: input.provider ?? defaults.provider,
        model: input.model ?? defaults.model,
        maxIterations: input.maxIterations ?? defaults.maxIterations,
        owner: ctx.principal,
        maxTotalTokens: input.maxTotalTokens ?? defaults.maxTotalTokens,
        ...optional("timeoutMs", input.timeoutMs ?? defaults.timeoutMs),
        ...optional("queueTimeoutMs", input.queueTimeoutMs ?? defaults.queueTimeoutMs),
        ...optional("retentionMs", input.retentionMs ?? defaults.retentionMs),
        ...optional("webhook", webhook),
        // The Submit call's span: the task's runs become its children, in the caller's trace.
        ...optional("traceparent", currentTraceparent()),
      },
      new Date(),
    );
    // A per-key quota: without keys every task has the same owner, so it would cap the whole service.
    // The store applies it after the request_id lookup, so a retried Submit gets its task back.
    const { task, created } = await this.deps.store.create(draft, this.deps.authEnabled ? { maxActive: limits.maxActiveTasksPerKey } : {});
    if (!created && task.prompt !== input.prompt) {
      throw new AlreadyExistsError(`request_id "${input.requestId}" was already used for task ${task.id} with a different prompt`);
    }
    return create(SubmitResponseSchema, { task: taskToPb(task) });
  }

  /** The task's webhook: the one asked for (checked against the SSRF guard) or the server's default. */
  private async webhookOf(asked: WebhookConfig | undefined): Promise<WebhookConfig | undefined> {
    const { webhooks } = this.deps;
    if (!asked) return webhooks.defaultUrl ? { url: webhooks.defaultUrl, statuses: [...DEFAULT_WEBHOOK_STATUSES] } : undefined;
    if (!webhooks.enabled) {
      throw InvalidArgumentError.field("webhook", "webhooks are off on this server (it has no ROOKERY_WEBHOOK_SECRET to sign them)");
    }
    const refusal = await webhooks.refusal(asked.url);
    if (refusal) throw InvalidArgumentError.field("webhook.url", refusal);
    return asked;
  }

  async listWebhookDeliveries(req: ListWebhookDeliveriesRequest, ctx: CallContext): Promise<ListWebhookDeliveriesResponse> {
    const input = checkListDeliveries(req, this.deps.limits);
    const task = await this.visibleTask(input.id, ctx);
    const fingerprint = filterFingerprint({ task: task.id });
    const afterSequence = input.pageToken ? decodeSequenceToken(input.pageToken, fingerprint) : 0;
    const deliveries = await this.deps.store.deliveries(task.id, { afterSequence, limit: input.pageSize + 1 });
    const page = deliveries.slice(0, input.pageSize);
    const last = page.at(-1);
    return create(ListWebhookDeliveriesResponseSchema, {
      deliveries: page.map(deliveryToPb),
      nextPageToken: deliveries.length > page.length && last ? encodeSequenceToken(last.sequence, fingerprint) : "",
    });
  }

  async get(req: GetRequest, ctx: CallContext): Promise<GetResponse> {
    const task = await this.visibleTask(checkId(req.id), ctx);
    return create(GetResponseSchema, { task: taskToPb(task) });
  }

  async list(req: ListRequest, ctx: CallContext): Promise<ListResponse> {
    const input = checkList(req, this.deps.limits);
    const fingerprint = filterFingerprint({ s: input.statuses, l: Object.entries(input.labels).sort() });
    const after = input.pageToken ? decodePageToken(input.pageToken, fingerprint) : undefined;
    const tasks = await this.deps.store.list({
      ...(this.deps.authEnabled ? { owner: ctx.principal } : {}),
      statuses: input.statuses,
      labels: input.labels,
      limit: input.pageSize + 1,
      ...(after ? { after } : {}),
    });
    // Rows in the view asked for, until page_size or the byte budget: then the page
    // ends early and its token continues after the last row it holds.
    const rows: PbTask[] = [];
    let bytes = 0;
    for (const task of tasks.slice(0, input.pageSize)) {
      const row = taskToPb(input.view === "full" ? summarize(task) : basicView(task));
      bytes += toBinary(TaskSchema, row).byteLength;
      if (rows.length > 0 && bytes > MAX_LIST_PAGE_BYTES) break;
      rows.push(row);
    }
    const more = tasks.length > rows.length;
    const last = tasks[rows.length - 1];
    return create(ListResponseSchema, {
      tasks: rows,
      nextPageToken: more && last ? encodePageToken(last, fingerprint) : "",
    });
  }

  /**
   * One generator from the checks to the last response, wrapping watchStream directly:
   * every layer of async generator between the feed and the socket costs each watcher
   * a promise turn per message, a large part of what Rookery adds to the fan-out at
   * 1,000 watchers of one task (bench/RESULTS.md, issue 16, 3b).
   */
  async *watch(req: WatchRequest, ctx: CallContext): AsyncGenerator<WatchResponse> {
    const task = await this.visibleTask(checkWatch(req), ctx);
    const open = this.watches.get(ctx.principal) ?? 0;
    if (open >= this.deps.limits.maxWatchesPerKey) {
      throw new ResourceExhaustedError(`at most ${this.deps.limits.maxWatchesPerKey} open Watch streams per caller`);
    }
    this.watches.set(ctx.principal, open + 1);
    try {
      const afterSequence = Number(req.afterSequence);
      if (afterSequence > task.sequence) {
        throw InvalidArgumentError.field(
          "after_sequence",
          `is past the task's last event (${task.sequence}); pass the last sequence you saw`,
        );
      }
      if (isTerminal(task.status) && afterSequence === task.sequence) return;
      const options = {
        store: this.deps.store,
        feed: this.deps.feed,
        taskId: task.id,
        afterSequence,
        signal: ctx.signal,
        pollMs: this.deps.watchPollMs,
        inboxLimit: this.deps.watchQueueLimit,
      };
      const cursor = req.includeOutput
        ? new OutputCursor({
            store: this.deps.store,
            outputs: this.deps.outputs,
            taskId: task.id,
            afterSequence,
            outputOffset: Number(req.outputOffset),
          })
        : undefined;
      // Without a cursor the stream holds events only: today's stream.
      for await (const item of watchStream(options, cursor)) {
        yield "parts" in item ? outputResponse(item) : watchResponse(item);
      }
    } finally {
      const left = (this.watches.get(ctx.principal) ?? 1) - 1;
      if (left === 0) this.watches.delete(ctx.principal);
      else this.watches.set(ctx.principal, left);
    }
  }

  async resume(req: ResumeRequest, ctx: CallContext): Promise<ResumeResponse> {
    const { id, input } = checkResume(req, this.deps.limits);
    await this.visibleTask(id, ctx);
    const { task } = await this.deps.store.commit(id, resume(input));
    return create(ResumeResponseSchema, { task: taskToPb(task) });
  }

  /** Removes the task and all stored for it; a run of it stops (the store tells this process's supervisor, the store's poll any other). */
  async delete(req: DeleteRequest, ctx: CallContext): Promise<DeleteResponse> {
    const id = checkId(req.id);
    await this.visibleTask(id, ctx);
    if (!(await this.deps.store.delete(id))) throw new TaskNotFoundError(id);
    return create(DeleteResponseSchema, {});
  }

  async cancel(req: CancelRequest, ctx: CallContext): Promise<CancelResponse> {
    const { id, reason } = checkCancel(req);
    const current = await this.visibleTask(id, ctx);
    // Cancelling a cancelled task is a no-op that answers like the first call, also when
    // another Cancel got there between our read and our write.
    const task = current.status === "cancelled" ? current : await this.cancelOrCancelled(id, reason);
    this.deps.hooks?.reached("task_service.after_cancel_commit");
    return create(CancelResponseSchema, { task: taskToPb(task) });
  }

  private async cancelOrCancelled(id: string, reason: string): Promise<Task> {
    try {
      return (await this.deps.store.commit(id, cancel(reason))).task;
    } catch (error) {
      if (!(error instanceof FailedPreconditionError)) throw error;
      const now = await this.deps.store.get(id);
      if (now?.status === "cancelled") return now;
      throw error;
    }
  }

  /** The task, if it exists and the caller may see it; NOT_FOUND otherwise (never "forbidden"). */
  private async visibleTask(id: string, ctx: CallContext): Promise<Task> {
    const task = await this.deps.store.get(id);
    if (!task || (this.deps.authEnabled && task.owner !== ctx.principal)) throw new TaskNotFoundError(id);
    return task;
  }
}
