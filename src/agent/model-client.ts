// Model calls through the official `openai` SDK against any OpenAI-compatible
// endpoint. The SDK does the retrying: 408/409/429/5xx and connection errors,
// with capped exponential backoff and jitter, honouring Retry-After. The call
// itself (chat-stream.ts) runs in a model worker thread when there are any
// (model-worker-pool.ts); spans, metrics and the retries of malformed replies
// stay here, on the main thread.
import type OpenAI from "openai";
import type { ChatMessage, ToolDefinition } from "../domain/task.js";
import { sdkClient, streamChat, toOpenAiMessages, toOpenAiTool, type ChatCall, type ProviderSettings } from "./chat-stream.js";
import { ModelCallError } from "./model-errors.js";
import type { ModelWorkerPool } from "./model-worker-pool.js";
import type { ModelReply, ReplyDelta } from "./reply-assembler.js";
import { SpanKind, inSpan, traceHeaders } from "../telemetry/spans.js";
import type { ModelCallObservation } from "../metrics.js";

export type { ModelReply, ReplyDelta, ProviderSettings };

export interface ModelClientOptions {
  providers: Record<string, ProviderSettings>;
  timeoutMs: number;
  maxRetries: number;
  /** Largest reply (text plus tool-call arguments, UTF-8 bytes) one call may return. */
  maxReplyBytes: number;
  /** Longest a call may take, from its request to its reply's end, however steadily the chunks come. */
  maxReplyMs: number;
  /** Record the messages sent and the reply on the call's span (ROOKERY_TRACE_CONTENT). */
  traceContent?: boolean;
  /** Told of each call's duration, outcome and tokens (metrics). */
  onCall?: (call: ModelCallObservation) => void;
  /** Worker threads to make the calls in (ROOKERY_MODEL_WORKERS); without, they run on this thread. */
  workers?: ModelWorkerPool;
}

export interface ModelRequest {
  provider: string;
  model: string;
  messages: ChatMessage[];
  tools: ToolDefinition[];
  signal: AbortSignal;
  /**
   * Called with what each streamed chunk added, as it arrives, and the number of the
   * attempt (0, then 1, ... when a malformed reply is retried and the output starts over).
   */
  onDelta?: (delta: ReplyDelta, retry: number) => void;
  /**
   * A key of the run's own, when its calls only ever append to `messages`: a model worker then
   * keeps them from one call to the next and is handed only the new ones. End it with
   * `endConversation` when the run is over.
   */
  conversation?: string;
}

/** 0.5 s doubling to at most 8 s, times a random factor in [0.75, 1] (as the SDK does). */
function backoffMs(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 8_000) * (1 - Math.random() * 0.25);
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export class ModelClient {
  private readonly clients = new Map<string, OpenAI>();

  constructor(private readonly options: ModelClientOptions) {}

  /**
   * One model call. HTTP-level failures are retried inside the SDK; a response
   * that arrives but cannot be parsed is retried here, as many times, with the
   * same kind of capped, jittered backoff.
   */
  async complete(request: ModelRequest): Promise<ModelReply> {
    // A `chat` span per call (GenAI conventions); the request carries its traceparent on.
    const attributes = {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": request.provider,
      "gen_ai.request.model": request.model,
    };
    return inSpan(`chat ${request.model}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      if (this.options.traceContent) span.setAttribute("gen_ai.input.messages", JSON.stringify(toOpenAiMessages(request.messages)));
      const started = performance.now();
      const observe = (outcome: string, usage?: ModelReply["usage"]) =>
        this.options.onCall?.({
          provider: request.provider,
          model: request.model,
          seconds: (performance.now() - started) / 1000,
          outcome,
          inputTokens: usage?.promptTokens ?? 0,
          outputTokens: usage?.completionTokens ?? 0,
        });
      let reply: ModelReply;
      try {
        reply = await this.completeWithRetries(request);
      } catch (error) {
        observe(error instanceof ModelCallError ? error.code : request.signal.aborted ? "aborted" : "internal");
        throw error;
      }
      observe("ok", reply.usage);
      span.setAttributes({
        "gen_ai.response.model": reply.model ?? request.model,
        "gen_ai.usage.input_tokens": reply.usage.promptTokens,
        "gen_ai.usage.output_tokens": reply.usage.completionTokens,
        "gen_ai.response.finish_reasons": reply.finishReason ? [reply.finishReason] : [],
      });
      if (this.options.traceContent) {
        const output = {
          role: "assistant",
          content: reply.content,
          ...(reply.toolCalls.length > 0 ? { tool_calls: reply.toolCalls } : {}),
        };
        span.setAttribute("gen_ai.output.messages", JSON.stringify([output]));
      }
      return reply;
    });
  }

  /** The run that made calls under `conversation` is over. */
  endConversation(conversation: string): void {
    this.options.workers?.endConversation(conversation);
  }

  private async completeWithRetries(request: ModelRequest): Promise<ModelReply> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.completeOnce(request, attempt);
      } catch (error) {
        if (!(error instanceof ModelCallError && error.retryable) || attempt >= this.options.maxRetries) throw error;
        await abortableDelay(backoffMs(attempt), request.signal);
      }
    }
  }

  private async completeOnce(request: ModelRequest, retry: number): Promise<ModelReply> {
    const settings = this.settings(request.provider);
    const call: ChatCall = {
      provider: request.provider,
      model: request.model,
      messages: toOpenAiMessages(request.messages),
      tools: request.tools.map(toOpenAiTool),
      headers: traceHeaders(),
    };
    const onDelta = (delta: ReplyDelta) => request.onDelta?.(delta, retry);
    if (this.options.workers) return this.options.workers.call(call, request.signal, onDelta, request.conversation);
    return streamChat(this.client(request.provider, settings), call, this.options, request.signal, onDelta);
  }

  /** The provider's settings; refuses an unknown provider or one without a key (before any worker is asked). */
  private settings(provider: string): ProviderSettings {
    const settings = this.options.providers[provider];
    if (!settings) {
      throw new ModelCallError(`unknown provider "${provider}"`, "provider_refused");
    }
    if (!settings.apiKey) {
      throw new ModelCallError(
        `no API key for provider "${provider}": set OPENAI_API_KEY (and OPENAI_BASE_URL for an ` +
          `OpenAI-compatible server such as Ollama), or give it an apiKey in ROOKERY_PROVIDERS, then Resume the task`,
        "provider_refused",
      );
    }
    return settings;
  }

  /** The provider's SDK client, for calls made on this thread. */
  private client(provider: string, settings: ProviderSettings): OpenAI {
    let client = this.clients.get(provider);
    if (client) return client;
    client = sdkClient(settings, this.options);
    this.clients.set(provider, client);
    return client;
  }
}
