// The output of one iteration of one running task, held in memory while it
// streams: what live watchers on this process read, from any position.
import { partLength, partsFrom, type OutputChunk, type OutputPart, type PlacedPart } from "../domain/output.js";

/** Distinct ranges remembered: watchers fall into a few groups by where they are. */
const RECENT_READS = 8;

export class OutputLog {
  private placed: PlacedPart[] = [];
  private length = 0;
  /** Where the current attempt began: a retried call's output follows the dropped one's positions. */
  private start = 0;
  /** The last few reads, by range: see read(). */
  private readonly recent = new Map<string, OutputChunk>();

  constructor(
    readonly taskId: string,
    readonly iteration: number,
    private currentAttempt: number,
  ) {}

  get attempt(): number {
    return this.currentAttempt;
  }

  get end(): number {
    return this.length;
  }

  /** Drops the output so far: the iteration starts over under `attempt`, at the position it had reached. */
  restart(attempt: number): void {
    this.currentAttempt = attempt;
    this.placed = [];
    this.start = this.length;
  }

  append(part: OutputPart): void {
    const length = partLength(part);
    if (length === 0) return;
    this.placed.push({ offset: this.length, part });
    this.length += length;
  }

  /**
   * Everything from `from` (or from where the current attempt began, if later); undefined
   * when nothing is there. Watchers woken together read the same range: they get the same
   * object, which the listeners then encode once for all of them.
   */
  read(from: number): OutputChunk | undefined {
    const at = Math.max(from, this.start);
    if (at >= this.length) return undefined;
    const key = `${this.currentAttempt}:${at}:${this.length}`;
    const cached = this.recent.get(key);
    if (cached) return cached;
    const chunk: OutputChunk = {
      taskId: this.taskId,
      iteration: this.iteration,
      attempt: this.currentAttempt,
      offset: at,
      endOffset: this.length,
      parts: partsFrom(this.placed.slice(this.firstEndingAfter(at)), at).map((p) => p.part),
    };
    if (this.recent.size >= RECENT_READS) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(key, chunk);
    return chunk;
  }

  /** Index of the first part that ends after `position` (binary search: watchers read often). */
  private firstEndingAfter(position: number): number {
    let low = 0;
    let high = this.placed.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      const { offset, part } = this.placed[mid]!;
      if (offset + partLength(part) <= position) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
