// The HTTP listener: @connectrpc/connect-node serving TaskService over the
// Connect protocol, gRPC-Web and gRPC, on HTTP/1.1 and h2c on one port (TLS:
// both through ALPN), with GET /metrics beside it.
import { once } from "node:events";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import { TaskService as TaskServiceDesc } from "../../gen/rookery/v1/task_service_pb.js";
import type { Logger } from "../logger.js";
import { connectHandler, REFUSED_REQUEST } from "./connect-handler.js";
import type { CallTrace, HandlerAdapter, UnaryMethod } from "./handler-adapter.js";
import { withCors } from "./cors.js";
import { closeIdleSessions, destroyIfSilent, keepHttp1OverTlsBounded } from "./idle-connections.js";
import { loadDashboard, type Dashboard, type PlainResponse } from "./dashboard.js";

export interface HttpListenerOptions {
  adapter: HandlerAdapter;
  metrics: Registry;
  host: string;
  port: number;
  shutdown: AbortSignal;
  tls?: { cert: string; key: string };
  /** Largest request body accepted. */
  readMaxBytes: number;
  /** A Watch whose client has not taken a written message for this long is cut off. */
  watchStallMs: number;
  /** A connection with no call in progress for this long is closed (idle-connections.ts). */
  idleConnectionMs: number;
  /** Origins whose web apps may call the API (CORS); "*" for any. */
  corsOrigins: string[];
  /** Serve the web dashboard on GET /. */
  dashboard: boolean;
  logger: Logger;
}

export interface HttpListener {
  port: number;
  close(graceMs: number): Promise<void>;
}

export async function startHttpListener(options: HttpListenerOptions): Promise<HttpListener> {
  const dashboard = options.dashboard ? loadDashboard() : undefined;
  const connect = connectHandler({
    routes: (router: ConnectRouter) => router.service(TaskServiceDesc, taskServiceImpl(options.adapter)),
    shutdown: options.shutdown,
    readMaxBytes: options.readMaxBytes,
    stallMs: options.watchStallMs,
    logger: options.logger,
    fallback: (req, res) => void serveFallback(options.metrics, dashboard, req, res as unknown as PlainResponse),
  });
  const handler = withCors(options.corsOrigins, connect);
  const server = options.tls
    ? secureServer(options.tls, handler, options.idleConnectionMs)
    : cleartextServer(handler, options.idleConnectionMs);
  server.listen(options.port, options.host);
  await once(server, "listening");
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async (graceMs) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const force = setTimeout(() => sockets.forEach((s) => s.destroy()), graceMs);
      await closed;
      clearTimeout(force);
    },
  };
}

export function taskServiceImpl(adapter: HandlerAdapter): ServiceImpl<typeof TaskServiceDesc> {
  // A request refused before decoding (connect-handler.ts) fails here, through the same error mapping.
  const context = (ctx: HandlerContext) => () => {
    const refused = ctx.values.get(REFUSED_REQUEST);
    if (refused) throw refused;
    return adapter.context(ctx.requestHeader.get("authorization") ?? undefined, ctx.signal);
  };
  const trace = (ctx: HandlerContext): CallTrace => {
    const traceparent = ctx.requestHeader.get("traceparent");
    const tracestate = ctx.requestHeader.get("tracestate");
    return { system: "connect_rpc", ...(traceparent ? { traceparent } : {}), ...(tracestate ? { tracestate } : {}) };
  };
  const unary =
    (method: UnaryMethod) =>
    (request: unknown, ctx: HandlerContext): Promise<never> =>
      adapter.unary(method, request, context(ctx), trace(ctx)) as Promise<never>;
  return {
    submit: unary("submit"),
    get: unary("get"),
    list: unary("list"),
    resume: unary("resume"),
    cancel: unary("cancel"),
    delete: unary("delete"),
    listWebhookDeliveries: unary("listWebhookDeliveries"),
    watch: (request, ctx) => adapter.watch(request, context(ctx), trace(ctx)) as AsyncIterable<never>,
  };
}

/** Serves requests of HTTP/1.1 and HTTP/2 alike (Connect's node handler). */
type RequestHandler = http.RequestListener & ((req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);

/** HTTP/1.1 and HTTP/2 over TLS, chosen by ALPN. */
function secureServer(tls: { cert: string; key: string }, handler: RequestHandler, idleConnectionMs: number): http2.Http2SecureServer {
  const server = http2.createSecureServer({ allowHTTP1: true, cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler);
  closeIdleSessions(server, idleConnectionMs);
  keepHttp1OverTlsBounded(server);
  return server;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Cleartext HTTP/1.1 and h2c (prior knowledge) on one port: the first bytes say
 * which. They are pushed back onto the socket before the socket is handed over;
 * both the HTTP/1 parser and an HTTP/2 session read what is buffered there first.
 */
function cleartextServer(handler: RequestHandler, idleConnectionMs: number): net.Server {
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  closeIdleSessions(h2, idleConnectionMs);
  return net.createServer((socket) => {
    // Until a server has the socket, its errors are ours to handle: a client (or a load
    // balancer's TCP health check) that resets the connection before its first bytes raised
    // an "error" with no listener, which ended the process.
    const dropped = () => socket.destroy();
    socket.on("error", dropped);
    const stopIdleClock = destroyIfSilent(socket, idleConnectionMs);
    // Bytes are read until they either differ from the HTTP/2 preface or hold all of it:
    // a first segment as short as one byte ("P", as in POST and PRI) decides nothing.
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const head = seen.subarray(0, HTTP2_PREFACE.length);
      const isPrefix = head.equals(HTTP2_PREFACE.subarray(0, head.length));
      if (isPrefix && head.length < HTTP2_PREFACE.length) return;
      socket.off("data", onData);
      socket.off("error", dropped); // the server it goes to handles them from here
      stopIdleClock();
      socket.pause();
      socket.unshift(seen);
      if (isPrefix) {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });
}

async function serveFallback(
  metrics: Registry,
  dashboard: Dashboard | undefined,
  req: { method?: string | undefined; url?: string | undefined },
  res: PlainResponse,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0]!;
  if (dashboard?.(req.method ?? "", path, res)) return;
  if (req.method === "GET" && path === "/metrics") {
    const body = await metrics.metrics();
    res.writeHead(200, { "content-type": metrics.contentType });
    res.end(body);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found\n");
}
