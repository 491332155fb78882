import { pino, type Logger } from "pino";
import { logTraceFields } from "./telemetry/spans.js";

export type { Logger };

/**
 * Structured JSON logs on stdout (pretty-print them with `pino-pretty` if you like).
 * Written asynchronously: a busy server logs a few lines per task, and a blocking
 * write per line cost ~6% of its CPU. pino flushes what is buffered on exit.
 */
export function createLogger(level: string): Logger {
  // Each line logged inside a span carries its trace_id and span_id.
  return pino({ name: "rookery", level, mixin: logTraceFields }, pino.destination({ dest: 1, sync: false }));
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
