// Connections with no call in progress are closed after ROOKERY_IDLE_CONNECTION_MS, so
// clients that leak connections (or open them and never speak) cannot hold sockets
// and file descriptors for good. A call in progress, however quiet (a Watch waiting
// for its task's next event), keeps its connection.
//
// - gRPC listener: grpc-js's own `grpc.max_connection_idle_ms` (a GOAWAY once no
//   stream has been open for that long).
// - HTTP listener, HTTP/2 (h2c and over TLS): the same rule, here.
// - HTTP listener, cleartext, before a client's first bytes say HTTP/1.1 or h2c: the
//   same time, here.
// - HTTP/1.1: Node's own bounds (an idle keep-alive connection closes after 5 s, a
//   request's head must arrive within 60 s; over TLS see keepHttp1OverTlsBounded);
//   a TLS handshake must end within 120 s.
import type * as http2 from "node:http2";
import type * as net from "node:net";

/** Closes each HTTP/2 session of `server` (with a GOAWAY) once it has had no stream open for `idleMs`. */
export function closeIdleSessions(server: http2.Http2Server | http2.Http2SecureServer, idleMs: number): void {
  server.on("session", (session: http2.ServerHttp2Session) => {
    let open = 0;
    const closeIfIdle = () => {
      if (open === 0) session.close();
    };
    // A timer that fired while a stream was open is started again by refresh() when the
    // last one closes: the session closes after a whole idleMs with none open.
    const timer = setTimeout(closeIfIdle, idleMs).unref();
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      open += 1;
      stream.once("close", () => {
        open -= 1;
        if (open === 0) timer.refresh();
      });
    });
    session.once("close", () => clearTimeout(timer));
  });
}

/** Destroys `socket` if it stays silent for `idleMs`; the returned function stops the clock. */
export function destroyIfSilent(socket: net.Socket, idleMs: number): () => void {
  const destroy = () => socket.destroy();
  socket.setTimeout(idleMs, destroy);
  return () => {
    socket.setTimeout(0);
    socket.off("timeout", destroy);
  };
}

/** http.Server's default keepAliveTimeout. */
const HTTP1_KEEP_ALIVE_MS = 5_000;

/**
 * HTTP/1.1 over an HTTP/2 secure server (allowHTTP1) reads its keep-alive timeout from
 * the server. Node 20 gives that server none (Node 24 does), so an idle keep-alive
 * connection stayed open for good; this gives it http.Server's default.
 */
export function keepHttp1OverTlsBounded(server: http2.Http2SecureServer): void {
  Object.assign(server, { keepAliveTimeout: HTTP1_KEEP_ALIVE_MS });
}
