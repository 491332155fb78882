import { z } from "zod";
import type { ToolDefinition } from "../../domain/task.js";
import { calculator } from "./calculator.js";
import { currentTime } from "./current-time.js";
import type { Hooks } from "../../hooks.js";
import { errorMessage } from "../../logger.js";
import type { ServerTool } from "./tool.js";

export const SERVER_TOOLS: readonly ServerTool[] = [currentTime, calculator];

export class ToolRegistry {
  private readonly byName: Map<string, ServerTool>;
  private cachedDefinitions: ToolDefinition[] | undefined;

  constructor(
    tools: readonly ServerTool[] = SERVER_TOOLS,
    private readonly hooks?: Hooks,
  ) {
    this.byName = new Map(tools.map((t) => [t.name, t]));
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The server tools as the model sees them: name, description, JSON schema. */
  definitions(): readonly ToolDefinition[] {
    // Built once: converting the zod schemas costs more than the rest of a short task.
    this.cachedDefinitions ??= [...this.byName.values()].map((t) => ({
      name: t.name,
      description: t.description,
      parameters: z.toJSONSchema(t.schema),
    }));
    return this.cachedDefinitions;
  }

  /** Runs a tool; bad arguments or a failing tool become an "error: ..." result for the model. */
  async run(name: string, argumentsJson: string, signal: AbortSignal): Promise<string> {
    const tool = this.byName.get(name);
    if (!tool) return `error: unknown tool "${name}"`;
    let raw: unknown;
    try {
      raw = argumentsJson.trim() === "" ? {} : JSON.parse(argumentsJson);
    } catch {
      return "error: arguments are not valid JSON";
    }
    const parsed = tool.schema.safeParse(raw);
    if (!parsed.success) return `error: invalid arguments: ${z.prettifyError(parsed.error)}`;
    try {
      this.hooks?.reached("tool_registry.before_tool_run");
      return await tool.run(parsed.data, signal);
    } catch (error) {
      signal.throwIfAborted();
      return `error: ${errorMessage(error)}`;
    }
  }
}
