// The Node request handler of the HTTP listener: connect-node's router and its
// universal request/response bridges (what connectNodeAdapter does), with two
// things that adapter cannot be told to do:
//   - a binary request message that does not decode answers INVALID_ARGUMENT
//     (connect answers INTERNAL, "parse binary"), as on the grpc-js listener,
//     and one past readMaxBytes answers RESOURCE_EXHAUSTED, as a JSON one does;
//   - a Watch stream whose client stops reading is cut off after `stallMs`
//     (connect-node would wait for 'drain' forever), as on the grpc-js listener;
//   - a timeout longer than Node can time is dropped (deadlines.ts).
import * as http2 from "node:http2";
import type * as http from "node:http";
import { fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { readAllBytes, type UniversalServerRequest, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import { InvalidArgumentError } from "../domain/errors.js";
import { isUntimeable, TIMEOUT_HEADERS } from "./deadlines.js";
import type { Logger } from "../logger.js";
import { errorMessage } from "../logger.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** Set when the request message was refused (too large, or it did not decode): the handler throws it instead of running. */
export const REFUSED_REQUEST = createContextKey<Error | undefined>(undefined, { description: "request refused before decoding" });

export interface ConnectHandlerOptions {
  routes: (router: ConnectRouter) => void;
  shutdown: AbortSignal;
  readMaxBytes: number;
  /** A server stream whose client has not taken a written message for this long is cut off. */
  stallMs: number;
  fallback: (req: NodeRequest, res: NodeResponse) => void;
  logger: Logger;
}

export function connectHandler(options: ConnectHandlerOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    shutdownSignal: options.shutdown,
    readMaxBytes: options.readMaxBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
    // Strict JSON, as protojson's default: an unknown field or enum name is INVALID_ARGUMENT,
    // never silently dropped (a dropped status filter would answer an unfiltered page).
    jsonOptions: { ignoreUnknownFields: false },
  });
  options.routes(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = handlers.get(req.url?.split("?", 1)[0] ?? "");
    if (!handler) return options.fallback(req, res);
    const request = universalRequestFromNodeRequest(req, res as never, undefined, createContextValues());
    for (const name of TIMEOUT_HEADERS) if (isUntimeable(name, request.header.get(name))) request.header.delete(name);
    checkedRequest(request, handler.method.input, options.readMaxBytes)
      .then(handler)
      .then((response) => {
        const body = handler.method.methodKind === "server_streaming" ? cutOffWhenStalled(response, res, options.stallMs) : response;
        return universalResponseToNodeResponse(body, res);
      })
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.logger.warn({ method: handler.method.name, err: String(reason) }, "could not answer a call on the HTTP listener");
      });
  };
}

const ENVELOPED = new Set([
  "application/connect+proto",
  "application/grpc",
  "application/grpc+proto",
  "application/grpc-web",
  "application/grpc-web+proto",
]);

/**
 * Reads the single request message of a binary call and checks that it decodes.
 * A refused one (past readMaxBytes, or malformed) is recorded in REFUSED_REQUEST
 * and replaced by an empty message, so that connect answers the error the handler
 * then throws in the protocol the client speaks. JSON, compressed and other
 * requests pass as they are (connect checks their size itself).
 */
async function checkedRequest(request: UniversalServerRequest, input: DescMessage, readMaxBytes: number): Promise<UniversalServerRequest> {
  const type = (request.header.get("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
  const enveloped = ENVELOPED.has(type);
  const compressed = ["content-encoding", "connect-content-encoding", "grpc-encoding"].some((h) => {
    const value = request.header.get(h);
    return value !== null && value !== "identity";
  });
  if ((type !== "application/proto" && !enveloped) || compressed || !isByteStream(request.body)) return request;

  let bytes: Uint8Array;
  try {
    // With the length the client announced, a body past the limit is refused before it is read.
    bytes = await readAllBytes(request.body, readMaxBytes, request.header.get("content-length"));
  } catch (error) {
    // Past readMaxBytes, or shorter or longer than announced: an answer in connect's words.
    // Anything else is the body failing (the client went away): nobody to answer.
    if (error instanceof ConnectError) return refused(request, enveloped, error);
    throw error;
  }
  let message = bytes;
  if (enveloped) {
    // One envelope: flags (1 byte), length (4 bytes, big-endian), the message. Anything
    // else is left for connect to refuse in its own words.
    const length = bytes.length >= 5 ? new DataView(bytes.buffer, bytes.byteOffset).getUint32(1) : -1;
    if (length !== bytes.length - 5 || (bytes[0]! & 0b1) !== 0) return { ...request, body: replay(bytes) };
    message = bytes.subarray(5);
  }
  try {
    fromBinary(input, message);
    return { ...request, body: replay(bytes) };
  } catch (error) {
    return refused(request, enveloped, InvalidArgumentError.field("request", `is not a valid ${input.typeName}: ${errorMessage(error)}`));
  }
}

/** The request with `reason` recorded for the handler to throw, and an empty message in place of its body. */
function refused(request: UniversalServerRequest, enveloped: boolean, reason: Error): UniversalServerRequest {
  request.contextValues?.set(REFUSED_REQUEST, reason);
  const empty = enveloped ? new Uint8Array(5) : new Uint8Array(0);
  const header = new Headers(request.header);
  header.set("content-length", String(empty.length));
  return { ...request, header, body: replay(empty) };
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

async function* replay(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/**
 * connect-node asks for the next chunk of a response only once the previous one
 * is written and drained. A client that stops reading therefore leaves a chunk
 * unasked-for; after `stallMs` the stream is reset with ENHANCE_YOUR_CALM, which
 * gRPC clients report as RESOURCE_EXHAUSTED (the grpc-js listener's answer), and
 * the Watch behind it is released. Over HTTP/1.1 the connection is closed.
 */
function cutOffWhenStalled(response: UniversalServerResponse, res: NodeResponse, stallMs: number): UniversalServerResponse {
  const body = response.body;
  if (!body) return response;
  return {
    ...response,
    body: (async function* () {
      let timer: NodeJS.Timeout | undefined;
      try {
        for await (const chunk of body) {
          timer = setTimeout(() => cutOff(res), stallMs);
          timer.unref();
          yield chunk;
          // Asked for the next chunk: the one before is written and drained.
          clearTimeout(timer);
        }
      } finally {
        clearTimeout(timer);
      }
    })(),
  };
}

function cutOff(res: NodeResponse): void {
  if ("stream" in res) res.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  else res.destroy();
}
