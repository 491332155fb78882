// One Watch stream: every stored event after `afterSequence`, then live ones,
// in order, with no gap and no duplicate, ending after a terminal status.
//
// The rule that makes it gap-free: an event is delivered only if its sequence
// is exactly last+1. Live events from the feed are used when they are next in
// line; anything else (a gap, an overflowed inbox, an event written by another
// replica) is read from the store, which is the source of truth. The inbox is
// bounded, so a slow reader costs at most `inboxLimit` queued events.
import { isTerminal, type TaskEvent } from "../domain/task.js";
import type { TaskStore } from "../store/task-store.js";
import type { EventFeed } from "./event-feed.js";

export interface WatchOptions {
  store: TaskStore;
  feed: EventFeed;
  taskId: string;
  afterSequence: number;
  signal: AbortSignal;
  /** How often to look in the store for events written elsewhere. */
  pollMs: number;
  /** Live events held for this watcher before it falls back to the store. */
  inboxLimit?: number;
  /** Store page size. */
  batch?: number;
}

export function endsWatch(event: TaskEvent): boolean {
  return event.kind === "status_changed" && isTerminal(event.status);
}

export async function* watchEvents(options: WatchOptions): AsyncGenerator<TaskEvent> {
  const { store, feed, taskId, signal, pollMs } = options;
  const batch = options.batch ?? 256;
  const inbox = new Inbox(options.inboxLimit ?? 256);
  const unsubscribe = feed.subscribe(taskId, (e) => inbox.push(e), () => inbox.length);
  let last = options.afterSequence;
  let readStore = true; // first the stored events after afterSequence
  try {
    for (;;) {
      let delivered = false;
      for (let next = inbox.take(last); next; next = inbox.take(last)) {
        yield next;
        last = next.sequence;
        delivered = true;
        if (endsWatch(next)) return;
      }
      // Woken by a live event that was next in line, with nothing left over: the
      // store has nothing newer to tell. Otherwise (a gap, an overflow, a poll
      // for other replicas' events) it is read.
      if (readStore || !delivered || inbox.length > 0) {
        const stored = await store.events(taskId, last, batch);
        for (const event of stored) {
          yield event;
          last = event.sequence;
          if (endsWatch(event)) return;
        }
        if (stored.length === batch) continue;
      }
      readStore = inbox.hasAfter(last) || !(await inbox.wait(pollMs, signal));
      signal.throwIfAborted();
    }
  } finally {
    unsubscribe();
  }
}

class Inbox {
  private events: TaskEvent[] = [];
  private wake: (() => void) | undefined;

  constructor(private readonly limit: number) {}

  push(event: TaskEvent): void {
    // Past the limit, drop everything: the watcher will read the store instead.
    if (this.events.length < this.limit) this.events.push(event);
    else this.events.length = 0;
    this.wake?.();
  }

  /** Removes and returns the event with sequence last+1; drops events at or before `last`. */
  take(last: number): TaskEvent | undefined {
    if (this.events.length === 0) return undefined;
    if (this.events.some((e) => e.sequence <= last)) this.events = this.events.filter((e) => e.sequence > last);
    const index = this.events.findIndex((e) => e.sequence === last + 1);
    return index < 0 ? undefined : this.events.splice(index, 1)[0];
  }

  get length(): number {
    return this.events.length;
  }

  hasAfter(last: number): boolean {
    return this.events.some((e) => e.sequence > last);
  }

  /** Resolves true when an event is pushed, false when `ms` pass (or the signal aborts) first. */
  wait(ms: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (pushed: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", aborted);
        this.wake = undefined;
        resolve(pushed);
      };
      const aborted = () => done(false);
      const timer = setTimeout(aborted, ms);
      signal.addEventListener("abort", aborted, { once: true });
      this.wake = () => done(true);
    });
  }
}
