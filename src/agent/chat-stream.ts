// One streamed chat-completion request through the official `openai` SDK, read
// chunk by chunk into a ModelReply. Runs on the main thread or in a model
// worker (model-worker.ts) alike: its input and output are plain data.
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import type { ChatMessage, ToolDefinition } from "../domain/task.js";
import { errorMessage } from "../logger.js";
import { ModelCallError, MalformedResponseError, StalledReplyError } from "./model-errors.js";
import { boundsFor, providerFetch } from "./provider-fetch.js";
import { ReplyAssembler, type ModelReply, type ReplyDelta } from "./reply-assembler.js";

export interface ProviderSettings {
  baseURL?: string;
  apiKey?: string;
}

/** Everything one request needs, as plain data (it may cross to a worker thread). */
export interface ChatCall {
  provider: string;
  model: string;
  messages: ChatCompletionMessageParam[];
  tools: ChatCompletionTool[];
  /** Sent with the request (the caller's traceparent). */
  headers: Record<string, string>;
}

export interface SdkSettings {
  timeoutMs: number;
  maxRetries: number;
  /** Largest reply (text plus tool-call arguments, UTF-8 bytes) one call may return. */
  maxReplyBytes: number;
  /** Longest a call may take, from its request to its reply's end, however steadily the chunks come. */
  maxReplyMs: number;
}

/** The SDK client of a provider; the SDK does the retrying (408/409/429/5xx, connection errors). */
export function sdkClient(settings: ProviderSettings, sdk: Omit<SdkSettings, "maxReplyMs">): OpenAI {
  return new OpenAI({
    apiKey: settings.apiKey,
    ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
    timeout: sdk.timeoutMs,
    maxRetries: sdk.maxRetries,
    // Node's HTTP client rather than the global fetch: less CPU a call, and no redirect followed.
    fetch: providerFetch(boundsFor(sdk.maxReplyBytes, sdk.timeoutMs)),
  });
}

/**
 * Makes the request and reads the reply as it streams, telling `onDelta` what each
 * chunk added. Fails only with a ModelCallError (or the signal's reason once aborted).
 */
export async function streamChat(
  client: OpenAI,
  call: ChatCall,
  limits: Pick<SdkSettings, "maxReplyBytes" | "timeoutMs" | "maxReplyMs">,
  signal: AbortSignal,
  onDelta: (delta: ReplyDelta) => void,
): Promise<ModelReply> {
  // The SDK leaves an abort listener on the signal it is given; a controller per call keeps
  // a long run's signal from collecting one per iteration.
  const request = new AbortController();
  const forward = () => request.abort(signal.reason);
  signal.addEventListener("abort", forward, { once: true });
  const where = `${call.provider}/${call.model}`;
  // The SDK's timeout ends when the reply's headers arrive; a provider that then sends
  // nothing (or only keep-alive comments) would hold the run for good. So the same timeout
  // bounds each wait for the next chunk too. And chunks that keep coming without ending the
  // reply (ones that add nothing, or a character a minute) would too: the call as a whole,
  // from its request to its reply's end (the SDK's retries included), is bounded by maxReplyMs.
  const stall = new ReplyTimer(limits.timeoutMs, limits.maxReplyMs, (why) =>
    request.abort(
      new StalledReplyError(
        why === "stalled"
          ? `model call to ${where} stalled: no chunk of its reply for ${limits.timeoutMs} ms (ROOKERY_MODEL_TIMEOUT_MS)`
          : `model call to ${where} did not finish within ${limits.maxReplyMs} ms (ROOKERY_MAX_REPLY_MS); it was stopped`,
      ),
    ),
  );
  let readToEnd = false;
  try {
    stall.begin();
    // The raw chunks, not the SDK's ChatCompletionStream helper: see reply-assembler.ts.
    const stream = await client.chat.completions.create(
      {
        model: call.model,
        messages: call.messages,
        ...(call.tools.length > 0 ? { tools: call.tools } : {}),
        stream: true,
        stream_options: { include_usage: true },
      },
      { signal: request.signal, headers: call.headers },
    );
    const reply = new ReplyAssembler(where, limits.maxReplyBytes);
    stall.streaming();
    for await (const chunk of stream) {
      stall.reset();
      const delta = reply.add(chunk);
      if (delta.text || delta.toolCalls.length > 0) onDelta(delta);
    }
    readToEnd = true;
    return reply.finish();
  } catch (error) {
    signal.throwIfAborted();
    if (request.signal.reason instanceof StalledReplyError) throw request.signal.reason;
    throw describeFailure(error, where);
  } finally {
    stall.stop();
    signal.removeEventListener("abort", forward);
    // A reply refused part way (too large, malformed): end its HTTP request. The SDK's stream
    // does so too when the loop leaves it early; this guards every other way out. A reply read
    // to its end is not aborted: that would cost an AbortError and its listeners for nothing,
    // ~100 µs a call (bench/RESULTS.md, issue 16 figure 1).
    if (!readToEnd) request.abort();
  }
}

/**
 * Calls `onEnd` once `maxMs` pass since begin() ("too long"), or, once the reply streams,
 * `stallMs` with no reset ("stalled"). One timer for the whole call, not one per chunk: a
 * chunk only notes its time, and the timer, when it fires early, waits out the rest.
 */
class ReplyTimer {
  private began = 0;
  private last = 0;
  private isStreaming = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stallMs: number,
    private readonly maxMs: number,
    private readonly onEnd: (why: "stalled" | "too long") => void,
  ) {}

  /** The call starts: it may take maxMs in all. */
  begin(): void {
    this.began = performance.now();
    this.arm(this.maxMs);
  }

  /** Its reply starts to stream: from now on no two chunks may be more than stallMs apart. */
  streaming(): void {
    this.isStreaming = true;
    this.reset();
    clearTimeout(this.timer);
    this.arm(Math.min(this.stallMs, this.began + this.maxMs - this.last));
  }

  reset(): void {
    this.last = performance.now();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const now = performance.now();
      const untilEnd = this.began + this.maxMs - now;
      const untilStall = this.isStreaming ? this.last + this.stallMs - now : Infinity;
      if (untilEnd <= 0) this.onEnd("too long");
      else if (untilStall <= 0) this.onEnd("stalled");
      else this.arm(Math.min(untilStall, untilEnd));
    }, ms);
  }
}

function describeFailure(error: unknown, where: string): ModelCallError {
  if (error instanceof ModelCallError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new ModelCallError(`model call to ${where} timed out`, "provider_error", { cause: error });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    // The SDK's own message is "Connection error."; the fetch error under it says what happened.
    return new ModelCallError(`could not reach ${where}: ${causes(error.cause) || error.message}`, "provider_error", { cause: error });
  }
  // A model endpoint answers; it does not redirect, and following one would send the
  // conversation to another address (provider-fetch.ts never does).
  if (error instanceof OpenAI.APIError && typeof error.status === "number" && error.status >= 300 && error.status < 400) {
    return new ModelCallError(
      `model call to ${where} was answered with a redirect (HTTP ${error.status}), which Rookery does not follow: set the provider's base URL to the address it redirects to`,
      "provider_error",
      { cause: error },
    );
  }
  if (error instanceof OpenAI.APIError) {
    // What the SDK retries (408, 409, 429, 5xx) is the provider failing; any other answer is a refusal.
    const status: number = typeof error.status === "number" ? error.status : 0;
    const failing = status === 0 || status === 408 || status === 409 || status === 429 || status >= 500;
    return new ModelCallError(
      `model call to ${where} failed with HTTP ${error.status ?? "?"}: ${error.message}`,
      failing ? "provider_error" : "provider_refused",
      { cause: error },
    );
  }
  // The SDK reports an unparseable body or stream chunk as a SyntaxError (or an OpenAIError about it).
  if (error instanceof SyntaxError || (error instanceof OpenAI.OpenAIError && /JSON|parse/i.test(error.message))) {
    return new MalformedResponseError(`model call to ${where} returned a malformed response: ${error.message}`, { cause: error });
  }
  const reason = errorMessage(error);
  return new ModelCallError(`model call to ${where} failed: ${reason}`, "provider_error", { cause: error });
}

/** The messages of an error's chain of causes, joined (fetch's own error says little; its causes say what). */
function causes(error: unknown): string {
  const messages: string[] = [];
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) messages.push(e.message);
  return messages.join(": ");
}

// A run sends its whole conversation with every call, and a conversation only grows, so
// each message is converted once rather than once per call: at 1,000 iterations the
// conversions were most of the main thread's allocations, and so of its garbage-collection
// pauses (bench/RESULTS.md, issue 16, 3f). A message is never changed once it is in a
// conversation, so a converted one stays right.
const converted = new WeakMap<ChatMessage, ChatCompletionMessageParam>();

export function toOpenAiMessages(messages: readonly ChatMessage[]): ChatCompletionMessageParam[] {
  return messages.map((m) => {
    let message = converted.get(m);
    if (!message) converted.set(m, (message = toOpenAiMessage(m)));
    return message;
  });
}

function toOpenAiMessage(m: ChatMessage): ChatCompletionMessageParam {
  switch (m.role) {
    case "system":
      return { role: "system", content: m.content };
    case "user":
      return { role: "user", content: m.content };
    case "tool":
      return { role: "tool", content: m.content, tool_call_id: m.toolCallId ?? "" };
    case "assistant":
      return {
        role: "assistant",
        content: m.content,
        ...(m.toolCalls?.length
          ? {
              tool_calls: m.toolCalls.map((c) => ({
                id: c.id,
                type: "function" as const,
                function: { name: c.name, arguments: c.arguments },
              })),
            }
          : {}),
      };
  }
}

export function toOpenAiTool(t: ToolDefinition): ChatCompletionTool {
  return { type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } };
}
