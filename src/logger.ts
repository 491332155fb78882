import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs on stdout (pretty-print them with `pino-pretty` if you like). */
export function createLogger(level: string): Logger {
  return pino({ name: "rookery", level });
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
