// Model calls through the official `openai` SDK against any OpenAI-compatible
// endpoint. The SDK does the retrying: 408/409/429/5xx and connection errors,
// with capped exponential backoff and jitter, honouring Retry-After.
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import type { ChatMessage, ToolCall, ToolDefinition, Usage } from "../domain/task.js";

export interface ProviderSettings {
  baseURL?: string;
  apiKey?: string;
}

export interface ModelClientOptions {
  providers: Record<string, ProviderSettings>;
  timeoutMs: number;
  maxRetries: number;
}

export interface ModelRequest {
  provider: string;
  model: string;
  messages: ChatMessage[];
  tools: ToolDefinition[];
  signal: AbortSignal;
}

export interface ModelReply {
  content: string;
  toolCalls: ToolCall[];
  usage: Usage;
}

/** The model call failed for good (after the SDK's retries); `message` says why. */
export class ModelCallError extends Error {
  override readonly name: string = "ModelCallError";
}

/** The endpoint answered, but not with a chat completion we could read. Retryable. */
class MalformedResponseError extends ModelCallError {
  override readonly name: string = "MalformedResponseError";
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
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export class ModelClient {
  private readonly clients = new Map<string, OpenAI>();

  constructor(private readonly options: ModelClientOptions) {}

  hasProvider(name: string): boolean {
    return name in this.options.providers;
  }

  /**
   * One model call. HTTP-level failures are retried inside the SDK; a response
   * that arrives but cannot be parsed is retried here, as many times, with the
   * same kind of capped, jittered backoff.
   */
  async complete(request: ModelRequest): Promise<ModelReply> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.completeOnce(request);
      } catch (error) {
        if (!(error instanceof MalformedResponseError) || attempt >= this.options.maxRetries) throw error;
        await abortableDelay(backoffMs(attempt), request.signal);
      }
    }
  }

  private async completeOnce(request: ModelRequest): Promise<ModelReply> {
    const client = this.client(request.provider);
    // The SDK leaves an abort listener on the signal it is given; a signal per call keeps
    // a long run's signal from collecting one per iteration.
    const call = new AbortController();
    const forward = () => call.abort(request.signal.reason);
    request.signal.addEventListener("abort", forward, { once: true });
    try {
      const stream = client.chat.completions.stream(
        {
          model: request.model,
          messages: request.messages.map(toOpenAiMessage),
          ...(request.tools.length > 0 ? { tools: request.tools.map(toOpenAiTool) } : {}),
          stream_options: { include_usage: true },
        },
        { signal: call.signal },
      );
      const completion = await stream.finalChatCompletion();
      const message = completion.choices[0]?.message;
      if (!message) throw new MalformedResponseError("the model returned no choices");
      return {
        content: message.content ?? "",
        toolCalls: (message.tool_calls ?? []).flatMap((c) =>
          c.type === "function" ? [{ id: c.id, name: c.function.name, arguments: c.function.arguments }] : [],
        ),
        usage: {
          promptTokens: completion.usage?.prompt_tokens ?? 0,
          completionTokens: completion.usage?.completion_tokens ?? 0,
          totalTokens: completion.usage?.total_tokens ?? 0,
        },
      };
    } catch (error) {
      request.signal.throwIfAborted();
      throw describeFailure(error, request);
    } finally {
      request.signal.removeEventListener("abort", forward);
    }
  }

  private client(provider: string): OpenAI {
    let client = this.clients.get(provider);
    if (client) return client;
    const settings = this.options.providers[provider];
    if (!settings) {
      throw new ModelCallError(`unknown provider "${provider}"`);
    }
    if (!settings.apiKey) {
      throw new ModelCallError(
        `no API key for provider "${provider}": set OPENAI_API_KEY (and OPENAI_BASE_URL for an ` +
          `OpenAI-compatible server such as Ollama) or ROOKERY_PROVIDER_${provider.toUpperCase()}_API_KEY, then Resume the task`,
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
    return new ModelCallError(`model call to ${where} timed out`, { cause: error });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new ModelCallError(`could not reach ${where}: ${error.message}`, { cause: error });
  }
  if (error instanceof OpenAI.APIError) {
    return new ModelCallError(`model call to ${where} failed with HTTP ${error.status ?? "?"}: ${error.message}`, {
      cause: error,
    });
  }
  // The SDK reports an unparseable body or stream chunk as a SyntaxError (or an OpenAIError about it).
  if (error instanceof SyntaxError || (error instanceof OpenAI.OpenAIError && /JSON|parse/i.test(error.message))) {
    return new MalformedResponseError(`model call to ${where} returned a malformed response: ${error.message}`, { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new ModelCallError(`model call to ${where} failed: ${reason}`, { cause: error });
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
