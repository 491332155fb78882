// Serves the web dashboard (web/, built into web/dist by `npm install`) on the
// HTTP listener: GET / and its two assets, read once at startup. The page holds
// no task data: it fetches everything through the API like any client, so the
// API's auth applies to it unchanged. Its Content-Security-Policy allows nothing
// from another origin (scripts, styles, API calls, frames).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const DASHBOARD_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web", "dist");

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

interface Asset {
  body: Buffer;
  type: string;
}

/** What the listener's own routes (the dashboard, /metrics) need of a response, HTTP/1.1 or HTTP/2 alike. */
export interface PlainResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body?: string | Buffer): unknown;
}

export type Dashboard = (method: string, path: string, res: PlainResponse) => boolean;

/** The handler for the dashboard's paths; answers false for any other path. Unbuilt (no web/dist): / says how to build it. */
export function loadDashboard(dir = DASHBOARD_DIR): Dashboard {
  const assets = existsSync(join(dir, "index.html")) ? readAssets(dir) : undefined;
  return (method, path, res) => {
    if (method !== "GET" && method !== "HEAD") return false;
    const file = path === "/" || path === "/index.html" ? "/index.html" : path;
    if (!assets) {
      if (file !== "/index.html") return false;
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
      res.end("The dashboard is not built: run `npm run build:web` (npm install does it).\n");
      return true;
    }
    const asset = assets.get(file);
    if (!asset) return false;
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": asset.type, "content-length": String(asset.body.length) });
    res.end(method === "HEAD" ? undefined : asset.body);
    return true;
  };
}

function readAssets(dir: string): Map<string, Asset> {
  const read = (path: string, type: string): [string, Asset] => [path, { body: readFileSync(join(dir, path)), type }];
  return new Map([
    read("/index.html", "text/html; charset=utf-8"),
    read("/assets/app.js", "text/javascript; charset=utf-8"),
    read("/assets/app.css", "text/css; charset=utf-8"),
  ]);
}
