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
  override readonly name = "ModelCallError";
}

export class ModelClient {
  private readonly clients = new Map<string, OpenAI>();

  constructor(private readonly options: ModelClientOptions) {}

  hasProvider(name: string): boolean {
    return name in this.options.providers;
  }

  async complete(request: ModelRequest): Promise<ModelReply> {
    const client = this.client(request.provider);
    try {
      const stream = client.chat.completions.stream(
        {
          model: request.model,
          messages: request.messages.map(toOpenAiMessage),
          ...(request.tools.length > 0 ? { tools: request.tools.map(toOpenAiTool) } : {}),
          stream_options: { include_usage: true },
        },
        { signal: request.signal },
      );
      const completion = await stream.finalChatCompletion();
      const message = completion.choices[0]?.message;
      if (!message) throw new ModelCallError("the model returned no choices");
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
