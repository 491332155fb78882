// Builds one model reply from the chunks of a streamed chat completion.
//
// The chunks come from a provider and are untrusted: every field is checked
// for its type before it is used, and nothing a chunk carries can throw
// anything but a ModelCallError. (The SDK's own ChatCompletionStream helper
// throws from a detached promise when no chunk carries a choice, which killed
// the process; reading the raw chunks here avoids that helper altogether.)
import type { OutputPart, ToolCallPiece } from "../domain/output.js";
import type { ToolCall, Usage } from "../domain/task.js";
import { MalformedResponseError, ReplyTooLargeError } from "./model-errors.js";

export interface ModelReply {
  content: string;
  toolCalls: ToolCall[];
  usage: Usage;
  /** The model name the provider says answered (may differ from the one asked for). */
  model?: string;
  finishReason?: string;
}

/** What one chunk added: assistant text, and pieces of tool calls (the stream's own output parts). */
export interface ReplyDelta {
  text: string;
  toolCalls: ToolCallPiece[];
}

/** What a delta adds to the iteration's output, as parts in order: its text, then its pieces of calls. */
export function outputParts(delta: ReplyDelta): OutputPart[] {
  return [...(delta.text ? [{ text: delta.text }] : []), ...delta.toolCalls.map((call) => ({ call }))];
}

interface PartialCall {
  id: string;
  name: string;
  arguments: string;
}

/** More parallel tool calls than any model makes; bounds the index a chunk may name. */
const MAX_TOOL_CALLS = 128;

export class ReplyAssembler {
  private content = "";
  private readonly calls = new Map<number, PartialCall>();
  private usage: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
  private sawChoice = false;
  private bytes = 0;
  private model: string | undefined;
  private finishReason: string | undefined;

  /** `maxBytes` caps the text and tool-call arguments of the reply (UTF-8 bytes). */
  constructor(
    private readonly where: string,
    private readonly maxBytes: number,
  ) {}

  /** Takes one chunk; returns what it added (empty when it added no text). */
  add(chunk: unknown): ReplyDelta {
    const delta: ReplyDelta = { text: "", toolCalls: [] };
    if (!isObject(chunk)) throw this.malformed("a chunk is not a JSON object");
    // Both only label the call's trace span: kept short whatever the provider sends.
    if (typeof chunk.model === "string") this.model = chunk.model.slice(0, 256);
    if (isObject(chunk.usage)) this.usage = readUsage(chunk.usage);
    if (chunk.choices === undefined || chunk.choices === null) return delta;
    if (!Array.isArray(chunk.choices)) throw this.malformed("`choices` is not an array");
    // One completion is asked for (n = 1): only choice 0 counts.
    const choice: unknown = chunk.choices.find((c: unknown) => isObject(c) && (c.index ?? 0) === 0);
    if (!isObject(choice)) return delta;
    this.sawChoice = true;
    if (typeof choice.finish_reason === "string") this.finishReason = choice.finish_reason.slice(0, 64);
    const d = choice.delta;
    if (d === undefined || d === null) return delta;
    if (!isObject(d)) throw this.malformed("`delta` is not an object");
    if (d.content !== undefined && d.content !== null) {
      if (typeof d.content !== "string") throw this.malformed("`delta.content` is not a string");
      this.grow(d.content);
      this.content += d.content;
      delta.text = d.content;
    }
    if (d.tool_calls !== undefined && d.tool_calls !== null) {
      if (!Array.isArray(d.tool_calls)) throw this.malformed("`delta.tool_calls` is not an array");
      for (const raw of d.tool_calls as unknown[]) {
        const piece = this.addToolCall(raw);
        // A chunk that only repeats what is held adds nothing to the output.
        if (piece.id !== undefined || piece.arguments !== "") delta.toolCalls.push(piece);
      }
    }
    return delta;
  }

  /** The whole reply; throws when the stream ended without one. */
  finish(): ModelReply {
    if (!this.sawChoice) throw this.malformed("the stream ended without any choice (the provider sent no reply)");
    const toolCalls = [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, c]) => {
        if (!c.id || !c.name) throw this.malformed(`tool call ${index} has no ${c.id ? "name" : "id"}`);
        return { id: c.id, name: c.name, arguments: c.arguments };
      });
    // Each call's result is matched to it by id (a client's Resume too): two calls under one
    // id could not both be answered, and the provider would refuse the next request.
    const ids = new Set<string>();
    for (const c of toolCalls) {
      if (ids.has(c.id)) throw this.malformed(`two tool calls have the id "${c.id}"`);
      ids.add(c.id);
    }
    return {
      content: this.content,
      toolCalls,
      usage: this.usage,
      ...(this.model ? { model: this.model } : {}),
      ...(this.finishReason ? { finishReason: this.finishReason } : {}),
    };
  }

  private addToolCall(raw: unknown): ToolCallPiece {
    if (!isObject(raw)) throw this.malformed("a tool call delta is not an object");
    const index = raw.index ?? 0;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= MAX_TOOL_CALLS) {
      throw this.malformed(`a tool call index is not an integer from 0 to ${MAX_TOOL_CALLS - 1}`);
    }
    let call = this.calls.get(index);
    if (!call) {
      call = { id: "", name: "", arguments: "" };
      this.calls.set(index, call);
    }
    // The id and the name are whole identifiers, not pieces: some providers send them again
    // in every chunk of a call, or send an empty name after the first, so a non-empty one
    // replaces what is held and is never appended (as the openai SDK's own accumulator does).
    const held = { id: call.id, name: call.name };
    if (raw.id !== undefined && raw.id !== null) {
      if (typeof raw.id !== "string" || raw.id.length > 256)
        throw this.malformed("a tool call id is not a string of at most 256 characters");
      if (raw.id !== "") call.id = raw.id;
    }
    const fn = raw.function;
    if (fn !== undefined && fn !== null && !isObject(fn)) throw this.malformed("a tool call's `function` is not an object");
    if (fn?.name !== undefined && fn.name !== null) {
      if (typeof fn.name !== "string" || fn.name.length > 256)
        throw this.malformed("a tool name is not a string of at most 256 characters");
      if (fn.name !== "") call.name = fn.name;
    }
    // The piece that starts the call carries its id and name (one position: domain/output.ts);
    // one that only repeats them carries neither. A provider that changes either restates both.
    const out: ToolCallPiece = { index, arguments: "" };
    if (call.id !== "" && (call.id !== held.id || call.name !== held.name)) {
      out.id = call.id;
      if (call.name !== "") out.name = call.name;
    }
    if (fn?.arguments !== undefined && fn.arguments !== null) {
      if (typeof fn.arguments !== "string") throw this.malformed("tool call arguments are not a string");
      this.grow(fn.arguments);
      call.arguments += fn.arguments;
      out.arguments = fn.arguments;
    }
    return out;
  }

  private grow(text: string): void {
    this.bytes += Buffer.byteLength(text, "utf8");
    if (this.bytes > this.maxBytes) {
      throw new ReplyTooLargeError(
        `the reply of ${this.where} passed ${this.maxBytes} bytes (ROOKERY_MAX_REPLY_BYTES); the call was stopped and nothing of it was stored`,
      );
    }
  }

  private malformed(what: string): MalformedResponseError {
    return new MalformedResponseError(`model call to ${this.where} returned a malformed response: ${what}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readUsage(u: Record<string, unknown>): Usage {
  const count = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0);
  return {
    promptTokens: count(u.prompt_tokens),
    completionTokens: count(u.completion_tokens),
    totalTokens: count(u.total_tokens),
  };
}
