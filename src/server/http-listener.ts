// The HTTP listener: @connectrpc/connect-node serving TaskService over the
// Connect protocol, gRPC-Web and gRPC, on HTTP/1.1 and h2c on one port (TLS:
// both through ALPN), with GET /metrics beside it.
import { once } from "node:events";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { TaskService as TaskServiceDesc } from "../../gen/rookery/v1/task_service_pb.js";
import type { HandlerAdapter, UnaryMethod } from "./handler-adapter.js";

export interface HttpListenerOptions {
  adapter: HandlerAdapter;
  metrics: Registry;
  host: string;
  port: number;
  shutdown: AbortSignal;
  tls?: { cert: string; key: string };
  /** Largest request body accepted. */
  readMaxBytes: number;
}

export interface HttpListener {
  port: number;
  close(graceMs: number): Promise<void>;
}

export async function startHttpListener(o: HttpListenerOptions): Promise<HttpListener> {
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) => router.service(TaskServiceDesc, taskServiceImpl(o.adapter)),
    shutdownSignal: o.shutdown,
    readMaxBytes: o.readMaxBytes,
    fallback: (req, res) => void serveFallback(o.metrics, req, res as unknown as FallbackResponse),
  });
  const server = o.tls
    ? http2.createSecureServer({ allowHTTP1: true, cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, handler)
    : cleartextServer(handler);
  server.listen(o.port, o.host);
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

function taskServiceImpl(adapter: HandlerAdapter): ServiceImpl<typeof TaskServiceDesc> {
  const context = (ctx: HandlerContext) => () => adapter.context(ctx.requestHeader.get("authorization") ?? undefined, ctx.signal);
  const unary =
    (method: UnaryMethod) =>
    (request: unknown, ctx: HandlerContext): Promise<never> =>
      adapter.unary(method, request, context(ctx)) as Promise<never>;
  return {
    submit: unary("submit"),
    get: unary("get"),
    list: unary("list"),
    resume: unary("resume"),
    cancel: unary("cancel"),
    watch: (request, ctx) => adapter.watch(request, context(ctx)) as AsyncIterable<never>,
  };
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Cleartext HTTP/1.1 and h2c (prior knowledge) on one port: the first bytes say
 * which. They are pushed back onto the socket before the socket is handed over;
 * both the HTTP/1 parser and an HTTP/2 session read what is buffered there first.
 */
function cleartextServer(handler: http.RequestListener & ((req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void)): net.Server {
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  return net.createServer((socket) => {
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const head = first.subarray(0, HTTP2_PREFACE.length);
      if (head.equals(HTTP2_PREFACE.subarray(0, head.length))) {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    });
  });
}

interface FallbackResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body?: string): unknown;
}

async function serveFallback(
  metrics: Registry,
  req: { method?: string | undefined; url?: string | undefined },
  res: FallbackResponse,
): Promise<void> {
  if (req.method === "GET" && req.url === "/metrics") {
    const body = await metrics.metrics();
    res.writeHead(200, { "content-type": metrics.contentType });
    res.end(body);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found\n");
}
