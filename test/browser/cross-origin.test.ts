// A web app on another origin (a page served on another loopback port) calls
// the API from a real Chromium with gRPC-Web and with Connect, Watch included,
// when ROOKERY_CORS_ORIGINS allows its origin; the browser refuses the calls of
// an origin that is not allowed.
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { bundleForBrowser } from "../../tools/build-dashboard.js";
import { ensureChromium, launchChromium, loopbackContext } from "../support/browser.js";
import { startHarness, type Harness } from "../support/harness.js";
import { itWith, toolchain } from "../support/toolchains.js";

type SubmitAndWatch = (baseUrl: string, protocol: "grpc-web" | "connect") => Promise<{ statuses?: string[]; error?: string }>;

const chain = toolchain("chromium", ensureChromium);
const it = itWith(chain);

/** Serves a blank page that loads the bundled cross-origin-app.ts. */
async function servePage(script: Buffer): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    if (req.url === "/app.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><script type="module" src="/app.js"></script>');
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe("a web app on another origin", () => {
  let h: Harness;
  let browser: Browser;
  let allowed: { server: Server; origin: string };
  let refused: { server: Server; origin: string };
  const dir = mkdtempSync(join(tmpdir(), "rookery-cors-"));

  beforeAll(async () => {
    if (chain.missing) return;
    await bundleForBrowser(join(import.meta.dirname, "cross-origin-app.ts"), join(dir, "app.js"));
    const script = readFileSync(join(dir, "app.js"));
    allowed = await servePage(script);
    refused = await servePage(script);
    h = await startHarness({ ROOKERY_CORS_ORIGINS: allowed.origin });
    browser = await launchChromium(chain.value!);
  }, 900_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    allowed?.server.close();
    refused?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const callFrom = async (origin: string, protocol: "grpc-web" | "connect") => {
    const { context, offLoopback } = await loopbackContext(browser);
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => "submitAndWatch" in globalThis);
    const api = `http://127.0.0.1:${h.rookery.httpPort}`;
    const result = await page.evaluate(
      ([base, p]) => (globalThis as unknown as { submitAndWatch: SubmitAndWatch }).submitAndWatch(base, p),
      [api, protocol] as const,
    );
    await context.close();
    expect(offLoopback).toEqual([]);
    return result;
  };

  for (const protocol of ["grpc-web", "connect"] as const) {
    it(`should let an allowed origin Submit and Watch to COMPLETED over ${protocol}`, async () => {
      const result = await callFrom(allowed.origin, protocol);
      expect(result.error).toBeUndefined();
      expect(result.statuses).toEqual(["PENDING", "RUNNING", "COMPLETED"]);
    });

    it(`should have the browser refuse a call over ${protocol} from an origin that is not allowed`, async () => {
      const before = (await h.connect.list({})).tasks.length;
      const result = await callFrom(refused.origin, protocol);
      expect(result.statuses).toBeUndefined();
      expect(result.error).toMatch(/Failed to fetch|NetworkError|fetch/i);
      expect((await h.connect.list({})).tasks.length).toBe(before); // the preflight was refused: nothing was submitted
    });
  }
});
