// Model calls through the official `openai` SDK against any OpenAI-compatible
// endpoint. The SDK does the retrying: 408/409/429/5xx and connection errors,
// with capped exponential backoff and jitter, honouring Retry-After.
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import type { ChatMessage, ToolDefinition } from "../domain/task.js";
import { ModelCallError, MalformedResponseError } from "./model-errors.js";
import { ReplyAssembler, type ModelReply, type ReplyDelta } from "./reply-assembler.js";
import { errorMessage } from "../logger.js";
import { SpanKind, inSpan, traceHeaders } from "../telemetry/spans.js";
import type { ModelCallObservation } from "../metrics.js";

export type { ModelReply, ReplyDelta };

export interface ProviderSettings {
  baseURL?: string;
  apiKey?: string;
}

export interface ModelClientOptions {
  providers: Record<string, ProviderSettings>;
  timeoutMs: number;
  maxRetries: number;
  /** Largest reply (text plus tool-call arguments, UTF-8 bytes) one call may return. */
  maxReplyBytes: number;
  /** Record the messages sent and the reply on the call's span (ROOKERY_TRACE_CONTENT). */
  traceContent?: boolean;
  /** Told of each call's duration, outcome and tokens (metrics). */
  onCall?: (call: ModelCallObservation) => void;
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
      if (this.options.traceContent) span.setAttribute("gen_ai.input.messages", JSON.stringify(request.messages.map(toOpenAiMessage)));
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
    const client = this.client(request.provider);
    // The SDK leaves an abort listener on the signal it is given; a signal per call keeps
    // a long run's signal from collecting one per iteration.
    const call = new AbortController();
    const forward = () => call.abort(request.signal.reason);
    request.signal.addEventListener("abort", forward, { once: true });
    try {
      // The raw chunks, not the SDK's ChatCompletionStream helper: see reply-assembler.ts.
      const stream = await client.chat.completions.create(
        {
          model: request.model,
          messages: request.messages.map(toOpenAiMessage),
          ...(request.tools.length > 0 ? { tools: request.tools.map(toOpenAiTool) } : {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: call.signal, headers: traceHeaders() },
      );
      const reply = new ReplyAssembler(`${request.provider}/${request.model}`, this.options.maxReplyBytes);
      for await (const chunk of stream) {
        const delta = reply.add(chunk);
        if (request.onDelta && (delta.text || delta.toolCalls.length > 0)) request.onDelta(delta, retry);
      }
      return reply.finish();
    } catch (error) {
      request.signal.throwIfAborted();
      throw describeFailure(error, request);
    } finally {
      request.signal.removeEventListener("abort", forward);
      // Ends the HTTP request when the reply was refused part way (too large, malformed).
      call.abort();
    }
  }

  private client(provider: string): OpenAI {
    let client = this.clients.get(provider);
    if (client) return client;
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
    client = new OpenAI({
      apiKey: settings.apiKey,
      ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
      timeout: this.options.timeoutMs,
      maxRetries: this.options.maxRetries,
    });
    this.clients.set(provider, client);
    return client;
  }
}

function describeFailure(error: unknown, request: ModelRequest): ModelCallError {
  const where = `${request.provider}/${request.model}`;
  if (error instanceof ModelCallError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new ModelCallError(`model call to ${where} timed out`, "provider_error", { cause: error });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new ModelCallError(`could not reach ${where}: ${error.message}`, "provider_error", { cause: error });
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

function toOpenAiTool(t: ToolDefinition): ChatCompletionTool {
  return { type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } };
}
