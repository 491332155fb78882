// The sender loop: takes due deliveries from the store, posts them (at most
// `concurrency` at once, each bounded by a timeout, so a slow receiver holds up
// neither the agent loops nor other deliveries), and commits each outcome.
// Any replica's sender may take any delivery: the store holds a taken one for
// its attempt, and a sender that dies mid-attempt lets it fall due again, to be
// sent with the same webhook-id (at least once).
import http from "node:http";
import https from "node:https";
import { toJsonString } from "@bufbuild/protobuf";
import { Webhook } from "standardwebhooks";
import { WebhookPayloadSchema } from "../../gen/rookery/v1/task_pb.js";
import { webhookPayloadToPb } from "../api/convert.js";
import { afterAttempt, receiverOf, type AttemptResult, type RetryPolicy, type WebhookDelivery } from "../domain/webhooks.js";
import { errorMessage, type Logger } from "../logger.js";
import type { TaskStore } from "../store/task-store.js";
import { SpanKind, contextFrom, failActiveSpan, inSpan, traceHeaders } from "../telemetry/spans.js";
import { postWebhook } from "./post.js";
import { webhookSecretFor } from "./secrets.js";
import type { WebhookUrlGuard } from "./url-guard.js";

export interface WebhookSenderOptions {
  store: TaskStore;
  guard: WebhookUrlGuard;
  /** ROOKERY_WEBHOOK_SECRET; per-key secrets derive from it. */
  secret: string;
  policy: RetryPolicy;
  timeoutMs: number;
  concurrency: number;
  pollMs: number;
  logger: Logger;
  /** Counts an attempt's outcome: delivered, retry, failed, stopped. */
  onOutcome?: (delivery: WebhookDelivery) => void;
}

/** Own transitions wake the sender at most this often: completions in a burst share one look at the store. */
const POKE_BATCH_MS = 20;

export class WebhookSender {
  private readonly inFlight = new Set<Promise<void>>();
  /** Attempts in flight per receiver (see receiverOf): one slow receiver gets at most half the slots. */
  private readonly perHost = new Map<string, number>();
  private readonly perHostLimit: number;
  private pokeTimer: NodeJS.Timeout | undefined;
  private slotFreed: NodeJS.Immediate | undefined;
  /** The last look at the store found as many due deliveries as it could take. */
  private moreDue = false;
  /** A delivery this process committed was left for a look (no slot, or the store would not let it go yet). */
  private leftForLook = false;
  private readonly shutdown = new AbortController();
  private readonly signers = new Map<string, Webhook>();
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private wake: (() => void) | undefined;
  private woken = false;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly options: WebhookSenderOptions) {
    this.perHostLimit = Math.max(1, Math.ceil(options.concurrency / 2));
  }

  start(): void {
    this.loop = this.run();
  }

  /**
   * A delivery this process has just committed: attempted at once when a slot is free for
   * its receiver (the store holds it as a look would, with no look), otherwise left for a
   * look, as are the ones the store will not let go now (TaskStore.holdDelivery).
   */
  offer(delivery: WebhookDelivery): void {
    const receiver = receiverOf(delivery.url);
    if (this.stopped || this.inFlight.size >= this.options.concurrency || this.hasAllSlots(receiver)) {
      this.leftForLook = true;
      this.poke(receiver);
      return;
    }
    const attempt = this.options.store.holdDelivery(delivery, new Date(), this.holdMs).then(
      (held) => {
        if (held) return this.attempt(held);
        this.leftForLook = true; // the end of this "attempt" looks (see track)
      },
      (error: unknown) => {
        this.leftForLook = true;
        this.options.logger.warn({ err: errorMessage(error) }, "could not take a webhook delivery; a look will");
      },
    );
    this.track(attempt, receiver);
  }

  /**
   * New deliveries may be due (for `receiver` when given): look soon rather than at the
   * next poll. Not for a receiver whose slots are all taken: a look would skip it (and scan
   * its pending deliveries to do so, ~0.3 ms each under load, bench/RESULTS.md); the end
   * of one of its attempts looks again.
   */
  poke(receiver?: string): void {
    if (receiver !== undefined && this.hasAllSlots(receiver)) return;
    this.pokeTimer ??= setTimeout(() => {
      this.pokeTimer = undefined;
      this.wakeUp();
    }, POKE_BATCH_MS);
  }

  /** Stops taking deliveries and ends the attempts in flight (recorded as failed, so retried soon). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pokeTimer);
    this.wakeUp();
    this.shutdown.abort();
    await this.loop;
    await Promise.all(this.inFlight);
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const free = this.options.concurrency - this.inFlight.size;
      if (free > 0) {
        try {
          // A receiver with half the slots is skipped, so a slow one never holds up the others;
          // and one look takes no more than any other receiver may still get.
          const busy = [...this.perHost].filter(([, n]) => n >= this.perHostLimit).map(([receiver]) => receiver);
          const mostOfOthers = Math.max(0, ...[...this.perHost.values()].filter((n) => n < this.perHostLimit));
          const limit = Math.min(free, this.perHostLimit - mostOfOthers);
          // What was left for a look is found by this one, unless its receiver is skipped now.
          if (busy.length === 0) this.leftForLook = false;
          const due = await this.options.store.dueDeliveries(new Date(), limit, this.holdMs, busy);
          this.moreDue = due.length === limit;
          for (const delivery of due) {
            this.track(this.attempt(delivery), receiverOf(delivery.url));
          }
        } catch (error) {
          this.options.logger.warn({ err: errorMessage(error) }, "could not read due webhook deliveries; will retry");
        }
      }
      await this.sleep(this.options.pollMs);
    }
  }

  /** The receiver's attempts in flight fill the share of the slots one receiver may have. */
  private hasAllSlots(receiver: string): boolean {
    return (this.perHost.get(receiver) ?? 0) >= this.perHostLimit;
  }

  /** How long a taken delivery is held: its attempt and the commit of its outcome; past that another sender may retry it. */
  private get holdMs(): number {
    return 2 * this.options.timeoutMs + 5_000;
  }

  /** Counts `attempt` in the sender's slots and its receiver's until it ends. */
  private track(attempt: Promise<void>, receiver: string): void {
    this.inFlight.add(attempt);
    this.perHost.set(receiver, (this.perHost.get(receiver) ?? 0) + 1);
    void attempt.finally(() => {
      this.inFlight.delete(attempt);
      const left = (this.perHost.get(receiver) ?? 1) - 1;
      if (left <= 0) this.perHost.delete(receiver);
      else this.perHost.set(receiver, left);
      // A slot is free. If the last look took all it could, more is likely due: look again
      // soon (attempts that end in one turn of the event loop share one look). If a delivery
      // this process committed was left for a look since the last one, look, batched like
      // pokes. Otherwise nothing new is due that the next poll would not find: an attempt
      // that failed is retried later, and other replicas' deliveries are found by the poll.
      if (this.moreDue)
        this.slotFreed ??= setImmediate(() => {
          this.slotFreed = undefined;
          this.wakeUp();
        });
      else if (this.leftForLook) this.poke();
    });
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    if (wake) wake();
    else this.woken = true;
  }

  /** Waits `ms`, or less when woken (a poke, a slot freed, stop). */
  private sleep(ms: number): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async attempt(delivery: WebhookDelivery): Promise<void> {
    const result = await this.post(delivery);
    const next = afterAttempt(delivery, result, new Date(), this.options.policy);
    const fields = { taskId: delivery.taskId, webhookId: delivery.id, sequence: delivery.sequence };
    try {
      await this.options.store.recordDelivery(next);
    } catch (error) {
      // Not recorded: its hold runs out and it is attempted again, with the same webhook-id.
      this.options.logger.warn({ ...fields, err: errorMessage(error) }, "could not record a webhook attempt; it will be repeated");
      return;
    }
    this.options.onOutcome?.(next);
    if (next.state === "delivered") return;
    const outcome = { ...fields, attempts: next.attempts, statusCode: next.lastStatusCode, err: next.lastError };
    if (next.state === "pending")
      this.options.logger.info({ ...outcome, nextAttemptAt: next.nextAttemptAt }, "webhook attempt failed; will retry");
    else this.options.logger.warn(outcome, `webhook delivery ${next.state}`);
  }

  /** One signer per secret (per API key with auth on). */
  private signer(owner: string): Webhook {
    let signer = this.signers.get(owner);
    if (!signer) {
      signer = new Webhook(webhookSecretFor(this.options.secret, owner));
      this.signers.set(owner, signer);
    }
    return signer;
  }

  /** One attempt, as a client span in the trace the task was submitted in (its deliveries are children of that Submit). */
  private post(delivery: WebhookDelivery): Promise<AttemptResult> {
    const attributes = {
      "http.request.method": "POST",
      "server.address": receiverOf(delivery.url),
      "rookery.task.id": delivery.taskId,
      "rookery.webhook.id": delivery.id,
      "rookery.webhook.attempt": delivery.attempts + 1,
    };
    return inSpan("webhook POST", { kind: SpanKind.CLIENT, attributes, parent: contextFrom(delivery.task.traceparent) }, async (span) => {
      const result = await this.attemptPost(delivery);
      if (result.statusCode !== undefined) span.setAttribute("http.response.status_code", result.statusCode);
      if (result.kind === "refused") failActiveSpan(result.error);
      return result;
    });
  }

  private async attemptPost(delivery: WebhookDelivery): Promise<AttemptResult> {
    try {
      const refusal = await this.options.guard.refusal(delivery.url);
      if (refusal) return { kind: "refused", error: `webhook URL refused: ${refusal}` };
      const body = toJsonString(WebhookPayloadSchema, webhookPayloadToPb(delivery));
      const signer = this.signer(delivery.owner ?? "");
      const timestamp = new Date();
      const headers = {
        "webhook-id": delivery.id,
        "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
        "webhook-signature": signer.sign(delivery.id, timestamp, body),
        "user-agent": "rookery-webhooks",
        ...traceHeaders(),
      };
      return await postWebhook(
        { url: delivery.url, headers, body },
        {
          timeoutMs: this.options.timeoutMs,
          lookup: this.options.guard.lookup,
          agents: this.agents,
          signal: this.shutdown.signal,
        },
      );
    } catch (error) {
      return { kind: "refused", error: `could not send: ${errorMessage(error)}` };
    }
  }
}
