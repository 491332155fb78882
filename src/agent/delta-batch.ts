// A model call's deltas on their way from a model worker to the main thread,
// sent once per turn of the worker's event loop rather than one message a chunk:
// the chunks of one read of the socket go together, and those of the read that
// ends the reply go with it. Every message between threads costs both of them
// CPU (a short reply's own delta was a third of its messages; bench/RESULTS.md,
// issue 16), and so does every part the main thread appends to the output.
import type { ReplyDelta } from "./reply-assembler.js";

export class DeltaBatch {
  private deltas: ReplyDelta[] = [];
  private flush: NodeJS.Immediate | undefined;

  /** `send` takes the batch at the end of the turn it was started in. */
  constructor(private readonly send: (deltas: ReplyDelta[]) => void) {}

  add(delta: ReplyDelta): void {
    const last = this.deltas.at(-1);
    if (!last || !joined(last, delta)) this.deltas.push(delta);
    this.flush ??= setImmediate(() => this.send(this.take()));
  }

  /** The deltas not sent yet, for the call's last message. */
  take(): ReplyDelta[] {
    clearImmediate(this.flush);
    this.flush = undefined;
    const deltas = this.deltas;
    this.deltas = [];
    return deltas;
  }
}

/**
 * Joins `next` onto `last` when it only continues it: text after text, or more arguments
 * of the call `last` ends with. The output's positions are the same either way
 * (domain/output.ts); the main thread then takes one part for a turn's tokens, not one a chunk.
 */
function joined(last: ReplyDelta, next: ReplyDelta): boolean {
  if (next.toolCalls.length === 0) {
    if (last.toolCalls.length > 0) return false;
    last.text += next.text;
    return true;
  }
  const [piece, ...more] = next.toolCalls;
  const end = last.toolCalls.at(-1);
  if (next.text !== "" || more.length > 0 || !end || !piece || piece.index !== end.index || piece.id !== undefined) return false;
  end.arguments += piece.arguments;
  return true;
}
