import { pino, type Logger } from "pino";
import { logTraceFields } from "./telemetry/spans.js";

export type { Logger };

/** Log lines are written in blocks of this many bytes, or whatever is there every FLUSH_MS. */
const BLOCK_BYTES = 4096;
const FLUSH_MS = 100;

/**
 * Structured JSON logs on stdout (pretty-print them with `pino-pretty` if you like).
 * Written asynchronously and in blocks: a busy server logs a few lines per task; a
 * blocking write per line cost ~6% of its CPU, and an asynchronous write per line
 * still ~4% (bench/RESULTS.md, issue 16 figure 2). A line waits at most FLUSH_MS for
 * its block to fill; pino writes what is buffered on exit, so only a SIGKILL can
 * lose lines, those of its last FLUSH_MS.
 */
export function createLogger(level: string): Logger {
  // Each line logged inside a span carries its trace_id and span_id.
  return pino(
    { name: "rookery", level, mixin: logTraceFields },
    pino.destination({ dest: 1, sync: false, minLength: BLOCK_BYTES, periodicFlush: FLUSH_MS }),
  );
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
