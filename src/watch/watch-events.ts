// One Watch stream: every stored event after `afterSequence`, then live ones,
// in order, with no gap and no duplicate, ending after a terminal status.
//
// The rule that makes it gap-free: an event is delivered only if its sequence
// is exactly last+1. Live events from the feed are used when they are next in
// line; anything else (a gap, an overflowed inbox, an event written by another
// replica) is read from the store, which is the source of truth. The inbox is
// bounded, so a slow reader costs at most `inboxLimit` queued events.
//
// With an OutputCursor (Watch with include_output) the same loop also sends
// the model's output between the events: see output-cursor.ts for its rules.
import { TaskNotFoundError } from "../domain/errors.js";
import type { OutputChunk } from "../domain/output.js";
import { isTerminal, type TaskEvent } from "../domain/task.js";
import type { TaskStore } from "../store/task-store.js";
import type { EventFeed } from "./event-feed.js";
import type { OutputCursor } from "./output-cursor.js";

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

/** Events, and with a cursor the output between them; an item is a TaskEvent or an OutputChunk. */
export async function* watchStream(options: WatchOptions, cursor?: OutputCursor): AsyncGenerator<TaskEvent | OutputChunk> {
  const { store, feed, taskId, signal, pollMs } = options;
  const batch = options.batch ?? 256;
  const inbox = new Inbox(options.inboxLimit ?? 256, signal);
  const unsubscribe = feed.subscribe(
    taskId,
    (e) => inbox.push(e),
    () => inbox.length,
    () => inbox.markDeleted(),
  );
  const unsubscribeOutput = cursor?.subscribe(() => inbox.poke());
  let last = options.afterSequence;
  let readStore = true; // first the stored events after afterSequence
  let poked = false;
  let emptyPolls = 0;
  try {
    if (cursor) await cursor.start();
    for (;;) {
      if (inbox.deleted) throw new TaskNotFoundError(taskId);
      let delivered = false;
      for (let next = inbox.take(last); next; next = inbox.take(last)) {
        const rest = cursor && (await cursor.before(next));
        if (rest) yield rest;
        yield next;
        cursor?.after(next);
        last = next.sequence;
        delivered = true;
        if (endsWatch(next)) return;
      }
      // Woken by a live event that was next in line, with nothing left over, or by new
      // output only: the store has nothing newer to tell. Otherwise (a gap, an overflow,
      // a poll for other replicas' events) it is read.
      if (readStore || (!delivered && !poked) || inbox.length > 0) {
        const stored = await store.events(taskId, last, batch);
        for (const event of stored) {
          const rest = cursor && (await cursor.before(event));
          if (rest) yield rest;
          yield event;
          cursor?.after(event);
          last = event.sequence;
          if (endsWatch(event)) return;
        }
        if (stored.length === batch) continue;
        // Another replica may have deleted it: on a shared store, every few polls that find
        // nothing ask whether the task still exists (a delete under way is seen at once).
        emptyPolls = stored.length === 0 && readStore ? emptyPolls + 1 : 0;
        if (store.sharesOutput && emptyPolls % EXISTENCE_CHECK_EVERY === 1 && !(await store.get(taskId))) {
          throw new TaskNotFoundError(taskId);
        }
      }
      const output = cursor && (await cursor.next());
      if (output) {
        yield output;
        readStore = false;
        poked = true; // nothing new in the store on this account
        continue;
      }
      // Every pollMs the store is read: events written by other replicas, and with a cursor
      // the output they keep there.
      // Events left in the inbox now are past a gap (the next one is missing): read the store.
      const gap = inbox.hasAfter(last);
      const woke = gap ? "pushed" : await inbox.wait(pollMs);
      readStore = gap || woke === "timeout" || inbox.takeOverflowed();
      poked = woke === "poked";
      signal.throwIfAborted();
    }
  } finally {
    unsubscribe();
    unsubscribeOutput?.();
    inbox.close();
  }
}

/** Polls of a shared store that find nothing, per check that the task still exists. */
const EXISTENCE_CHECK_EVERY = 4;

type Woke = "pushed" | "poked" | "timeout";

class Inbox {
  private events: TaskEvent[] = [];
  private wake: ((why: Woke) => void) | undefined;
  private overflowed = false;
  private pokedMeanwhile = false;
  /** The task was deleted in this process. */
  deleted = false;

  /** Wakes a wait when the stream's signal aborts; registered once per stream, not per wait. */
  private readonly onAbort = () => this.wake?.("timeout");

  constructor(
    private readonly limit: number,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  close(): void {
    this.signal.removeEventListener("abort", this.onAbort);
  }

  push(event: TaskEvent): void {
    // Past the limit, drop everything: the watcher will read the store instead.
    if (this.events.length < this.limit) this.events.push(event);
    else {
      this.events.length = 0;
      this.overflowed = true;
    }
    this.wake?.("pushed");
  }

  markDeleted(): void {
    this.deleted = true;
    this.wake?.("pushed");
  }

  /** Wakes the stream without an event (new output to send); remembered until it next waits. */
  poke(): void {
    if (this.wake) this.wake("poked");
    else this.pokedMeanwhile = true;
  }

  /** True once after events were dropped: they must be read from the store. */
  takeOverflowed(): boolean {
    const was = this.overflowed;
    this.overflowed = false;
    return was;
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

  /** Resolves when an event is pushed, the stream is poked, or `ms` pass (or the signal aborts) first. */
  wait(ms: number): Promise<Woke> {
    if (this.pokedMeanwhile) {
      this.pokedMeanwhile = false;
      return Promise.resolve("poked");
    }
    if (this.signal.aborted) return Promise.resolve("timeout");
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake?.("timeout"), ms);
      this.wake = (why) => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(why);
      };
    });
  }
}
