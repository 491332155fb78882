import type { z } from "zod";

/** A tool the server runs itself, its arguments described and checked by a zod schema. */
export interface ServerTool<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  schema: S;
  run(args: z.infer<S>, signal: AbortSignal): Promise<string> | string;
}

export function defineTool<S extends z.ZodType>(tool: ServerTool<S>): ServerTool {
  return tool;
}
