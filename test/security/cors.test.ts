// CORS on the HTTP listener: web apps on the allowed origins may call the API
// (preflight answered, headers exposed); any other origin's preflight is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/harness.js";

const ALLOWED = "https://app.example.com";

describe("CORS with ROOKERY_CORS_ORIGINS", () => {
  let h: Harness;
  let base = "";
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_CORS_ORIGINS: `${ALLOWED}, https://other.example.com` });
    base = `http://127.0.0.1:${h.rookery.httpPort}/rookery.v1.TaskService`;
  });
  afterAll(async () => {
    await h.close();
  });

  const preflight = (origin: string) =>
    fetch(`${base}/Submit`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" },
    });

  it("should answer an allowed origin's preflight with the methods and headers gRPC-Web and Connect need", async () => {
    const response = await preflight(ALLOWED);
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    const methods = response.headers.get("access-control-allow-methods")!;
    expect(methods).toContain("POST");
    const headers = response.headers.get("access-control-allow-headers")!.toLowerCase();
    for (const h of ["content-type", "connect-protocol-version", "x-grpc-web", "authorization", "traceparent"])
      expect(headers).toContain(h);
  });

  it("should refuse another origin's preflight with 403 and no CORS headers", async () => {
    const response = await preflight("https://evil.example.com");
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("should let an allowed origin read a Connect call's answer and the gRPC-Web trailers", async () => {
    const response = await fetch(`${base}/Submit`, {
      method: "POST",
      headers: { origin: ALLOWED, "content-type": "application/json", "connect-protocol-version": "1" },
      body: JSON.stringify({ prompt: "from a browser" }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    const exposed = response.headers.get("access-control-expose-headers")!.toLowerCase();
    for (const h of ["grpc-status", "grpc-message", "grpc-status-details-bin"]) expect(exposed).toContain(h);
    expect(((await response.json()) as { task: { prompt: string } }).task.prompt).toBe("from a browser");
  });

  it("should add no CORS headers for another origin's actual request", async () => {
    const response = await fetch(`${base}/List`, {
      method: "POST",
      headers: { origin: "https://evil.example.com", "content-type": "application/json", "connect-protocol-version": "1" },
      body: "{}",
    });
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("CORS by default", () => {
  it("should allow no origin: a preflight is refused", async () => {
    const h = await startHarness();
    try {
      const response = await fetch(`http://127.0.0.1:${h.rookery.httpPort}/rookery.v1.TaskService/Get`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
      });
      expect(response.status).toBe(403);
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await h.close();
    }
  });
});
