// The output of one iteration of one running task, held in memory while it
// streams: what live watchers on this process read, from any position.
import { partLength, partsFrom, type OutputChunk, type OutputPart, type PlacedPart } from "../domain/output.js";

export class OutputLog {
  private placed: PlacedPart[] = [];
  private length = 0;
  /** Where the current attempt began: a retried call's output follows the dropped one's positions. */
  private start = 0;

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

  /** Everything from `from` (or from where the current attempt began, if later); undefined when nothing is there. */
  read(from: number): OutputChunk | undefined {
    const at = Math.max(from, this.start);
    if (at >= this.length) return undefined;
    return {
      taskId: this.taskId,
      iteration: this.iteration,
      attempt: this.currentAttempt,
      offset: at,
      endOffset: this.length,
      parts: partsFrom(this.placed.slice(this.firstEndingAfter(at)), at).map((p) => p.part),
    };
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
