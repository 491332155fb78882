// In-process fan-out of committed events. Stores publish here after each
// commit (see publishing-store.ts); watchers and the supervisor subscribe.
// Events written by another process reach watchers through the store instead
// (watch-events.ts polls it), so this feed is a latency shortcut, never the
// source of truth.
import type { TaskEvent } from "../domain/task.js";

export type EventListener = (event: TaskEvent) => void;

/** A per-task subscription; `queued` says how many events it holds undelivered. */
interface Subscription {
  listener: EventListener;
  queued?: () => number;
  deleted?: () => void;
}

export class EventFeed {
  private readonly byTask = new Map<string, Set<Subscription>>();
  private readonly everyTask = new Set<EventListener>();
  private readonly deletions = new Set<(taskId: string) => void>();

  publish(event: TaskEvent): void {
    for (const { listener } of this.byTask.get(event.taskId) ?? []) listener(event);
    for (const listener of this.everyTask) listener(event);
  }

  /** The task was deleted: its subscribers hear it once. */
  publishDeleted(taskId: string): void {
    for (const { deleted } of this.byTask.get(taskId) ?? []) deleted?.();
    for (const listener of this.deletions) listener(taskId);
  }

  /** Deletions of every task; returns the unsubscribe function. */
  subscribeDeletions(listener: (taskId: string) => void): () => void {
    this.deletions.add(listener);
    return () => this.deletions.delete(listener);
  }

  /** Events of one task (and its deletion); returns the unsubscribe function. */
  subscribe(taskId: string, listener: EventListener, queued?: () => number, deleted?: () => void): () => void {
    let subscriptions = this.byTask.get(taskId);
    if (!subscriptions) {
      subscriptions = new Set();
      this.byTask.set(taskId, subscriptions);
    }
    const subscription: Subscription = { listener, ...(queued ? { queued } : {}), ...(deleted ? { deleted } : {}) };
    subscriptions.add(subscription);
    return () => {
      subscriptions.delete(subscription);
      if (subscriptions.size === 0) this.byTask.delete(taskId);
    };
  }

  /** The most events any one subscription holds undelivered now. */
  maxQueued(): number {
    let max = 0;
    for (const subscriptions of this.byTask.values()) {
      for (const s of subscriptions) max = Math.max(max, s.queued?.() ?? 0);
    }
    return max;
  }

  /** Events of every task. */
  subscribeAll(listener: EventListener): () => void {
    this.everyTask.add(listener);
    return () => this.everyTask.delete(listener);
  }

  /** Number of per-task subscriptions open now (a gauge for metrics and tests). */
  watcherCount(): number {
    let n = 0;
    for (const listeners of this.byTask.values()) n += listeners.size;
    return n;
  }
}
