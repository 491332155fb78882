// CORS for the HTTP listener, so that web apps on other origins can call the
// API with gRPC-Web or Connect. Only origins in ROOKERY_CORS_ORIGINS are
// allowed (none by default); the methods and headers come from connect's own
// `cors` constants, plus the headers Rookery reads (authorization, traceparent).
import { cors } from "@connectrpc/connect";

/** What CORS needs of a request and a response, HTTP/1.1 or HTTP/2 alike. */
interface CorsRequest {
  method?: string | undefined;
  headers: { origin?: string | string[] | undefined };
}
interface CorsResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

const ALLOW_HEADERS = [...cors.allowedHeaders, "Authorization", "Traceparent", "Tracestate"].join(", ");
const ALLOW_METHODS = cors.allowedMethods.join(", ");
const EXPOSE_HEADERS = cors.exposedHeaders.join(", ");
/** How long a browser may keep a preflight's answer. */
const MAX_AGE_SECONDS = 7200;

/**
 * Wraps the listener: a preflight (OPTIONS with Origin) from an allowed origin is
 * answered here (204), from any other with 403; an actual request from an allowed
 * origin gets the CORS response headers. Requests without Origin pass untouched.
 */
export function withCors<Listener extends (req: never, res: never) => void>(allowedOrigins: string[], next: Listener): Listener {
  const anyOrigin = allowedOrigins.includes("*");
  const allowed = new Set(allowedOrigins.map((o) => o.toLowerCase()));
  const listener = (req: CorsRequest, res: CorsResponse): void => {
    const pass = () => (next as unknown as (req: CorsRequest, res: CorsResponse) => void)(req, res);
    const origin = req.headers.origin;
    if (typeof origin !== "string") return pass();
    const ok = anyOrigin || allowed.has(origin.toLowerCase());
    if (req.method === "OPTIONS") {
      if (!ok) {
        res.writeHead(403, { "content-type": "text/plain", vary: "Origin" });
        res.end(`origin ${origin} is not allowed (ROOKERY_CORS_ORIGINS)\n`);
        return;
      }
      res.writeHead(204, {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": ALLOW_METHODS,
        "access-control-allow-headers": ALLOW_HEADERS,
        "access-control-max-age": String(MAX_AGE_SECONDS),
        vary: "Origin",
      });
      res.end();
      return;
    }
    if (ok) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
      res.setHeader("vary", "Origin");
    }
    pass();
  };
  return listener as unknown as Listener;
}
