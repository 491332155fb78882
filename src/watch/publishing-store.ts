// Decorates a TaskStore so that every committed event is published to the
// in-process EventFeed, whoever wrote it (API handler or supervisor), and every
// webhook delivery committed with one is handed to the sender. As the
// one place every write passes, it also makes each create and commit a short
// span of the trace active then (a claim is recorded in its run's trace by the
// supervisor, as the task it claims is known only after it).
import type { OutputBefore, OutputChunk } from "../domain/output.js";
import type { WebhookDelivery } from "../domain/webhooks.js";
import type { Decide, Committed } from "../domain/transitions.js";
import { inSpanIfTraced } from "../telemetry/spans.js";
import type { EventFeed } from "./event-feed.js";
import type { CreateOptions, CreateResult, DeliveryPage, ListQuery, TaskStore } from "../store/task-store.js";

export class PublishingStore implements TaskStore {
  private deliverySink: ((delivery: WebhookDelivery) => void) | undefined;

  constructor(
    private readonly inner: TaskStore,
    private readonly feed: EventFeed,
  ) {}

  async create(draft: Committed, options?: CreateOptions): Promise<CreateResult> {
    const result = await storeSpan("create", () => this.inner.create(draft, options));
    return result.created ? this.published(result) : result;
  }

  /** Hands each webhook delivery this process commits to `sink` (the sender), once its commit is done. */
  onDelivery(sink: (delivery: WebhookDelivery) => void): void {
    this.deliverySink = sink;
  }

  async commit(id: string, decide: Decide): Promise<Committed> {
    return this.published(await storeSpan(`commit ${decide.verb}`, () => this.inner.commit(id, decide)));
  }

  async claimNext(decide: Decide): Promise<Committed | undefined> {
    const claimed = await this.inner.claimNext(decide);
    return claimed && this.published(claimed);
  }

  get = (id: string) => this.inner.get(id);
  list = (query: ListQuery) => this.inner.list(query);
  events = (taskId: string, after: number, limit: number) => this.inner.events(taskId, after, limit);
  renewLease = (id: string, token: string, expiresAt: Date) => this.inner.renewLease(id, token, expiresAt);
  get sharesOutput(): boolean {
    return this.inner.sharesOutput;
  }
  appendOutput = (chunk: OutputChunk) => this.inner.appendOutput(chunk);
  readOutput = (taskId: string, iteration: number, minAttempt: number, from: number) =>
    this.inner.readOutput(taskId, iteration, minAttempt, from);
  noteOutputWatcher = (taskId: string, until: Date) => this.inner.noteOutputWatcher(taskId, until);
  hasOutputWatcher = (taskId: string, now: Date) => this.inner.hasOutputWatcher(taskId, now);
  deleteOutput = (taskId: string, before: OutputBefore) => this.inner.deleteOutput(taskId, before);
  expired = (now: Date, limit: number) => this.inner.expired(now, limit);
  purgeable = (now: Date, limit: number) => this.inner.purgeable(now, limit);
  dueDeliveries = (now: Date, limit: number, leaseMs: number, skipReceivers?: string[]) =>
    this.inner.dueDeliveries(now, limit, leaseMs, skipReceivers);
  holdDelivery = (delivery: WebhookDelivery, now: Date, leaseMs: number) => this.inner.holdDelivery(delivery, now, leaseMs);
  recordDelivery = (delivery: WebhookDelivery) => this.inner.recordDelivery(delivery);
  deliveries = (taskId: string, page: DeliveryPage) => this.inner.deliveries(taskId, page);
  statusCounts = () => this.inner.statusCounts();
  ping = () => this.inner.ping();

  /** Deletes, then tells this process's watchers and runs of the task that it is gone. */
  async delete(id: string, ifPurgeDueAt?: Date): Promise<boolean> {
    const deleted = await this.inner.delete(id, ifPurgeDueAt);
    if (deleted) this.feed.publishDeleted(id);
    return deleted;
  }
  close = () => this.inner.close();

  private published<T extends Committed>(committed: T): T {
    this.feed.publish(committed.event);
    if (committed.delivery) this.deliverySink?.(committed.delivery);
    return committed;
  }
}

function storeSpan<T>(what: string, work: () => Promise<T>): Promise<T> {
  return inSpanIfTraced(`rookery.store ${what}`, { "rookery.store.operation": what }, work);
}
