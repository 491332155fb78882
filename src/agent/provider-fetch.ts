// The `fetch` the openai SDK calls a provider with (its `fetch` option): Node's
// own HTTP client on keep-alive agents, in place of the global fetch (undici's
// WHATWG fetch). The SDK reads the Response it returns as it reads any.
//
// Why: under load the global fetch was the largest part of a model call's CPU
// (a WHATWG Request and its Headers, a chain of AbortSignals, the body written
// as a stream, chunk by chunk). With this one a model worker spent ~100–150 µs
// less per call (bench/RESULTS.md, issue 16, 1c).
//
// What it does not do, on purpose:
//   - follow a redirect: a model endpoint answers, and following one would send
//     the conversation elsewhere. A 3xx is returned as it is, and the SDK reports
//     it as an APIError (chat-stream.ts says what it means);
//   - ask for a compressed reply: an event stream is read as it arrives. A reply
//     compressed anyway (gzip, deflate, br) is decompressed.
//
// What it bounds: the SDK keeps an event stream's line until its end, and an error
// reply's body whole, in memory. A provider that never ends a line (or an error
// body) would grow the process until it died; here such a reply is stopped at a
// bound set from ROOKERY_MAX_REPLY_BYTES (see ResponseBounds).
import http from "node:http";
import https from "node:https";
import { Readable, pipeline } from "node:stream";
import zlib from "node:zlib";
import type { ClientOptions } from "openai";
import { ReplyTooLargeError } from "./model-errors.js";

/** The fetch the SDK takes, as it declares it. */
export type Fetch = NonNullable<ClientOptions["fetch"]>;

export interface ResponseBounds {
  /** The longest line of an event stream (a reply of maxReplyBytes in one chunk, JSON-escaped, fits). */
  lineBytes: number;
  /** The largest body of an error reply (non-2xx), which the SDK reads whole. */
  errorBodyBytes: number;
  /** The longest an error reply's body may take to arrive: the SDK reads it after its own timeout has ended. */
  errorBodyMs: number;
}

/** The bounds for replies of at most `maxReplyBytes` (ROOKERY_MAX_REPLY_BYTES), from a provider given `timeoutMs` (ROOKERY_MODEL_TIMEOUT_MS). */
export function boundsFor(maxReplyBytes: number, timeoutMs: number): ResponseBounds {
  // JSON escapes a character in at most 6 bytes (\u0000); a chunk's other fields are small.
  return { lineBytes: 6 * maxReplyBytes + 64 * 1024, errorBodyBytes: 1024 * 1024, errorBodyMs: timeoutMs };
}

/** A fetch with keep-alive agents of its own: one per SDK client (one per provider per thread). */
export function providerFetch(bounds: ResponseBounds): Fetch {
  const agents = { "http:": new http.Agent({ keepAlive: true }), "https:": new https.Agent({ keepAlive: true }) };
  return (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return Promise.reject(new TypeError("fetch failed", { cause: new Error(`unsupported protocol ${url.protocol}`) }));
    }
    if (init.body != null && typeof init.body !== "string") {
      // The SDK sends its JSON as a string; nothing else is expected here.
      return Promise.reject(new TypeError("fetch failed", { cause: new Error("only a string body is supported") }));
    }
    return send(url, init, url.protocol === "https:" ? https.request : http.request, agents[url.protocol], bounds);
  };
}

function send(url: URL, init: RequestInit, request: typeof http.request, agent: http.Agent, bounds: ResponseBounds): Promise<Response> {
  const signal = init.signal ?? undefined;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    const call = request(url, { method: init.method ?? "GET", headers, agent, signal }, (response) => {
      try {
        resolve(toResponse(response, bounds));
      } catch (error) {
        response.destroy();
        reject(new TypeError("fetch failed", { cause: error }));
      }
    });
    // Aborted (the SDK's timeout or its caller): Node's AbortError, which the SDK recognises by name.
    call.on("error", (error) => reject(signal?.aborted ? error : new TypeError("fetch failed", { cause: error })));
    // Closed with no response and no error (an unrequested protocol upgrade, say): never left pending.
    call.on("close", () => reject(new TypeError("fetch failed", { cause: new Error("the connection closed before a response") })));
    call.end(typeof init.body === "string" ? init.body : undefined);
  });
}

/** Statuses whose Response has no body (the Response constructor refuses one). */
const NO_BODY = new Set([204, 205, 304]);

function toResponse(response: http.IncomingMessage, bounds: ResponseBounds): Response {
  const status = response.statusCode ?? 0;
  // A Response can only carry 200–599: a provider's other codes are a failure of the call.
  if (status < 200 || status > 599) throw new Error(`the provider answered with HTTP status ${status}`);
  const headers = new Headers();
  const raw = response.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  if (NO_BODY.has(status)) {
    response.resume();
    return new Response(null, { status, statusText: response.statusMessage, headers });
  }
  const stream = decoded(response);
  if (status < 300) bound(stream, bounds.lineBytes, true);
  else {
    bound(stream, bounds.errorBodyBytes, false);
    boundInTime(stream, bounds.errorBodyMs);
  }
  const body = Readable.toWeb(stream) as ReadableStream<Uint8Array>;
  return new Response(body, { status, statusText: response.statusMessage, headers });
}

/** Ends `stream` with a ReplyTooLargeError once more than `max` bytes come without a newline (`perLine`), or at all. */
function bound(stream: Readable, max: number, perLine: boolean): void {
  let count = 0;
  stream.on("data", (chunk: Buffer) => {
    const newline = perLine ? chunk.lastIndexOf(10) : -1;
    count = newline < 0 ? count + chunk.length : chunk.length - newline - 1;
    if (count <= max) return;
    const what = perLine ? "a line of the provider's event stream" : "the provider's error reply";
    stream.destroy(new ReplyTooLargeError(`${what} passed ${max} bytes without ending; the call was stopped`));
  });
}

/** Ends `stream` with an error unless it has ended within `ms` (an error reply trickling in would hold the call for good). */
function boundInTime(stream: Readable, ms: number): void {
  const timer = setTimeout(() => stream.destroy(new Error(`the provider's error reply did not end within ${ms} ms`)), ms).unref();
  stream.once("close", () => clearTimeout(timer));
}

/** A decompressor per content-encoding (a Map: a provider's header names no prototype's key). */
const DECODERS = new Map<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress>([
  ["gzip", () => zlib.createGunzip()],
  ["x-gzip", () => zlib.createGunzip()],
  ["deflate", () => zlib.createInflate()],
  ["br", () => zlib.createBrotliDecompress()],
]);

function decoded(response: http.IncomingMessage): Readable {
  const decoder = DECODERS.get(response.headers["content-encoding"]?.trim().toLowerCase() ?? "");
  if (!decoder) return response;
  // An error on either side (a reset connection, bad compressed data) ends the decoder with it.
  return pipeline(response, decoder(), () => undefined);
}
