// One attempt of a delivery: a signed POST that follows no redirect and gives
// up after a timeout. What came of it is an AttemptResult; it never throws.
import http from "node:http";
import https from "node:https";
import type { AttemptResult } from "../domain/webhooks.js";

export interface PostTarget {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface PostOptions {
  timeoutMs: number;
  /** dns.lookup replacement that refuses disallowed addresses (url-guard.ts). */
  lookup: NonNullable<http.RequestOptions["lookup"]>;
  agents: { http: http.Agent; https: https.Agent };
  /** Aborted when the server shuts down: the attempt ends at once, as failed. */
  signal: AbortSignal;
}

/** The most of an answer's body drained to keep its connection: a webhook's answer has no use for more. */
const MAX_DRAINED_BYTES = 64 * 1024;

export function postWebhook(target: PostTarget, options: PostOptions): Promise<AttemptResult> {
  return new Promise((resolve) => {
    const url = new URL(target.url);
    const secure = url.protocol === "https:";
    const request = (secure ? https : http).request(url, {
      method: "POST",
      headers: { ...target.headers, "content-type": "application/json", "content-length": Buffer.byteLength(target.body) },
      lookup: options.lookup,
      agent: secure ? options.agents.https : options.agents.http,
    });
    let settled = false;
    const settle = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    // The timeout bounds the whole exchange, the answer's body too: a receiver that answers
    // and then sends without end loses the connection, not a socket of the sender for good.
    const timer = setTimeout(() => {
      settle({ kind: "refused", error: `no answer within ${options.timeoutMs} ms` });
      request.destroy();
    }, options.timeoutMs);
    const onAbort = () => {
      settle({ kind: "refused", error: "interrupted: the server shut down during the attempt" });
      request.destroy();
    };
    if (options.signal.aborted) onAbort();
    options.signal.addEventListener("abort", onAbort, { once: true });
    request.on("close", () => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
    });
    request.on("error", (error: NodeJS.ErrnoException) => settle({ kind: "refused", error: connectionError(error) }));
    request.on("response", (response) => {
      settle(resultOf(response));
      // The body is not read, only drained so the connection can be reused; past a bound the
      // connection is dropped instead. The outcome is already decided by the status.
      let drained = 0;
      response.on("data", (chunk: Buffer) => {
        drained += chunk.length;
        if (drained > MAX_DRAINED_BYTES) request.destroy();
      });
      response.on("error", () => undefined);
    });
    request.end(target.body);
  });
}

function resultOf(response: http.IncomingMessage): AttemptResult {
  const statusCode = response.statusCode ?? 0;
  if (statusCode >= 200 && statusCode < 300) return { kind: "delivered", statusCode };
  if (statusCode === 410) return { kind: "gone", statusCode: 410 };
  const retryAfterMs = parseRetryAfter(response.headers["retry-after"]);
  const error =
    statusCode >= 300 && statusCode < 400
      ? `HTTP ${statusCode}: redirects are not followed${response.headers.location ? ` (to ${String(response.headers.location).slice(0, 200)})` : ""}`
      : `HTTP ${statusCode}`;
  return { kind: "refused", statusCode, error, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1_000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function connectionError(error: NodeJS.ErrnoException): string {
  return error.code ? `${error.code}: ${error.message}` : error.message;
}
