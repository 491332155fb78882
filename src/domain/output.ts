// Model output as it streams, before its iteration is stored. An iteration's
// output is a sequence of parts (assistant text, or a piece of a tool call) in
// the order the model produced them. Positions count UTF-16 code units of text
// and tool-call arguments, plus one for the start of each tool call (its id and
// name), so that any position falls between two units and a watcher can resume
// from exactly where it stopped. Pure: no I/O.

export interface ToolCallPiece {
  /** Position of the call in the assistant message. */
  index: number;
  /** Set on the piece that starts the call (that start is one unit long). */
  id?: string;
  name?: string;
  arguments: string;
}

export type OutputPart = { text: string } | { call: ToolCallPiece };

/** A part and where it sits in the iteration's output. */
export interface PlacedPart {
  offset: number;
  part: OutputPart;
}

/** A run of an iteration's output, from `offset` to `endOffset`. */
export interface OutputChunk {
  taskId: string;
  iteration: number;
  /** Grows whenever the iteration's output starts over (a retried call, or a new run). */
  attempt: number;
  offset: number;
  endOffset: number;
  parts: OutputPart[];
}

/** Which of a task's stored output to remove: iterations before one, or attempts before one. */
export type OutputBefore = { iteration: number } | { attempt: number };

/** What a chunk says, merged for the wire: all its text, and each tool call's pieces joined. */
export interface MergedOutput {
  text: string;
  toolCalls: ToolCallPiece[];
}

/** Attempts of one run: a run numbered `runs` numbers its model calls' attempts from runs × this. */
export const ATTEMPTS_PER_RUN = 32;

export function attemptOf(runs: number, retry: number): number {
  return runs * ATTEMPTS_PER_RUN + Math.min(retry, ATTEMPTS_PER_RUN - 1);
}

/** The run an attempt belongs to (see attemptOf). */
export function runOf(attempt: number): number {
  return Math.floor(attempt / ATTEMPTS_PER_RUN);
}

export function partLength(part: OutputPart): number {
  if ("text" in part) return part.text.length;
  return (part.call.id !== undefined ? 1 : 0) + part.call.arguments.length;
}

/** The parts from position `from` on; a part that straddles it is cut there. */
export function partsFrom(placed: readonly PlacedPart[], from: number): PlacedPart[] {
  const out: PlacedPart[] = [];
  for (const { offset, part } of placed) {
    const end = offset + partLength(part);
    if (end <= from) continue;
    if (offset >= from) {
      out.push({ offset, part });
      continue;
    }
    const skip = from - offset;
    if ("text" in part) {
      out.push({ offset: from, part: { text: part.text.slice(skip) } });
    } else {
      // The start of the call (id and name) is its first unit.
      const started = part.call.id !== undefined;
      const args = part.call.arguments.slice(started ? skip - 1 : skip);
      out.push({ offset: from, part: { call: { index: part.call.index, arguments: args } } });
    }
  }
  return out;
}

export function mergeParts(parts: readonly OutputPart[]): MergedOutput {
  let text = "";
  const calls = new Map<number, ToolCallPiece>();
  for (const part of parts) {
    if ("text" in part) {
      text += part.text;
      continue;
    }
    const { index, id, name, arguments: args } = part.call;
    const call = calls.get(index) ?? { index, arguments: "" };
    if (id !== undefined) call.id = id;
    if (name !== undefined) call.name = name;
    call.arguments += args;
    calls.set(index, call);
  }
  return { text, toolCalls: [...calls.values()] };
}
