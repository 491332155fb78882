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
import { afterAttempt, type AttemptResult, type RetryPolicy, type WebhookDelivery } from "../domain/webhooks.js";
import { errorMessage, type Logger } from "../logger.js";
import type { TaskStore } from "../store/task-store.js";
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

export class WebhookSender {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private wake: (() => void) | undefined;
  private woken = false;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly o: WebhookSenderOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** New deliveries may be due (this process committed one): look now rather than at the next poll. */
  poke(): void {
    this.wakeUp();
  }

  /** Stops taking deliveries and waits for the attempts in flight (each ends by its timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp();
    await this.loop;
    await Promise.all(this.inFlight);
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const free = this.o.concurrency - this.inFlight.size;
      if (free > 0) {
        try {
          // Held for the attempt and the commit of its outcome; past that another sender may retry it.
          const due = await this.o.store.dueDeliveries(new Date(), free, 2 * this.o.timeoutMs + 5_000);
          for (const delivery of due) this.track(this.attempt(delivery));
        } catch (error) {
          this.o.logger.warn({ err: errorMessage(error) }, "could not read due webhook deliveries; will retry");
        }
      }
      await this.sleep(this.o.pollMs);
    }
  }

  private track(attempt: Promise<void>): void {
    const wasFull = this.inFlight.size + 1 >= this.o.concurrency;
    this.inFlight.add(attempt);
    void attempt.finally(() => {
      this.inFlight.delete(attempt);
      // Every slot was taken: more may be due than it could take, so look again now.
      if (wasFull) this.wakeUp();
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
    const log = this.o.logger.child({ taskId: delivery.taskId, webhookId: delivery.id, sequence: delivery.sequence });
    const result = await this.post(delivery);
    const next = afterAttempt(delivery, result, new Date(), this.o.policy);
    try {
      await this.o.store.recordDelivery(next);
    } catch (error) {
      // Not recorded: its hold runs out and it is attempted again, with the same webhook-id.
      log.warn({ err: errorMessage(error) }, "could not record a webhook attempt; it will be repeated");
      return;
    }
    this.o.onOutcome?.(next);
    const fields = { attempts: next.attempts, statusCode: next.lastStatusCode, err: next.lastError };
    if (next.state === "delivered") log.debug(fields, "webhook delivered");
    else if (next.state === "pending") log.info({ ...fields, nextAttemptAt: next.nextAttemptAt }, "webhook attempt failed; will retry");
    else log.warn(fields, `webhook delivery ${next.state}`);
  }

  private async post(delivery: WebhookDelivery): Promise<AttemptResult> {
    try {
      const refusal = await this.o.guard.refusal(delivery.url);
      if (refusal) return { kind: "refused", error: `webhook URL refused: ${refusal}` };
      const body = toJsonString(WebhookPayloadSchema, webhookPayloadToPb(delivery));
      const signer = new Webhook(webhookSecretFor(this.o.secret, delivery.owner ?? ""));
      const timestamp = new Date();
      const headers = {
        "webhook-id": delivery.id,
        "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
        "webhook-signature": signer.sign(delivery.id, timestamp, body),
        "user-agent": "rookery-webhooks",
      };
      return await postWebhook({ url: delivery.url, headers, body }, { timeoutMs: this.o.timeoutMs, lookup: this.o.guard.lookup, agents: this.agents });
    } catch (error) {
      return { kind: "refused", error: `could not send: ${errorMessage(error)}` };
    }
  }
}
