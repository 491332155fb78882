// The dashboard's static files: served with the CSP, only on the dashboard's
// paths, and a clear answer when the build is missing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONTENT_SECURITY_POLICY, loadDashboard, type PlainResponse } from "./dashboard.js";

function recorder() {
  const seen: { status?: number; headers?: Record<string, string>; body?: string } = {};
  const res: PlainResponse = {
    writeHead: (status, headers) => Object.assign(seen, { status, headers }),
    end: (body) => Object.assign(seen, { body: body?.toString() }),
  };
  return { res, seen };
}

describe("loadDashboard", () => {
  const dir = mkdtempSync(join(tmpdir(), "rookery-dashboard-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), "<!doctype html>");
  writeFileSync(join(dir, "assets", "app.js"), "console.log(1)");
  writeFileSync(join(dir, "assets", "app.css"), "body{}");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("should serve the page at / with the Content-Security-Policy and nosniff", () => {
    const { res, seen } = recorder();
    expect(loadDashboard(dir)("GET", "/", res)).toBe(true);
    expect(seen.status).toBe(200);
    expect(seen.body).toBe("<!doctype html>");
    expect(seen.headers).toMatchObject({
      "content-security-policy": CONTENT_SECURITY_POLICY,
      "x-content-type-options": "nosniff",
      "content-type": "text/html; charset=utf-8",
    });
  });

  it("should serve the script with a JavaScript type, and leave other paths and methods alone", () => {
    const dashboard = loadDashboard(dir);
    const { res, seen } = recorder();
    expect(dashboard("GET", "/assets/app.js", res)).toBe(true);
    expect(seen.headers?.["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(dashboard("GET", "/assets/../index.html", recorder().res)).toBe(false);
    expect(dashboard("GET", "/metrics", recorder().res)).toBe(false);
    expect(dashboard("POST", "/", recorder().res)).toBe(false);
  });

  it("should answer / with 503 and how to build it when the build is missing", () => {
    const { res, seen } = recorder();
    expect(loadDashboard(join(dir, "nowhere"))("GET", "/", res)).toBe(true);
    expect(seen.status).toBe(503);
    expect(seen.body).toContain("npm run build:web");
  });
});
