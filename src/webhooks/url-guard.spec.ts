// The guard decides from the URL and the addresses a resolver gives; these
// tests inject the resolver, so no name is looked up and no socket is opened.
import type { LookupAddress } from "node:dns";
import { describe, expect, it } from "vitest";
import { WebhookUrlGuard } from "./url-guard.js";
import { parseRetryAfter } from "./post.js";

const resolver =
  (table: Record<string, string[]>) =>
  async (host: string): Promise<LookupAddress[]> => {
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
    return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };

const names = resolver({
  "public.example": ["93.184.215.14"],
  "internal.example": ["10.1.2.3"],
  "rebind.example": ["93.184.215.14", "127.0.0.1"],
  "metadata.example": ["169.254.169.254"],
  "v6local.example": ["fd00:ec2::254"],
});

describe("WebhookUrlGuard.refusal", () => {
  const guard = new WebhookUrlGuard([], names);

  it("should accept https to a name that resolves only to public addresses", async () => {
    expect(await guard.refusal("https://public.example/hook")).toBeUndefined();
  });

  it.each([
    ["https://internal.example/", /10\.1\.2\.3/],
    ["https://rebind.example/", /127\.0\.0\.1/],
    ["https://metadata.example/", /169\.254\.169\.254/],
    ["https://v6local.example/", /fd00:ec2::254/],
    ["https://100.64.0.1/", /100\.64\.0\.1/],
    ["https://0.0.0.0/", /0\.0\.0\.0/],
    ["https://[fe80::1]/", /fe80::1/],
    ["https://[::ffff:a00:1]/", /::ffff:a00:1/],
    ["http://public.example/", /must be https/],
    ["https://user:pw@public.example/", /credentials/],
    ["https://nowhere.example/", /does not resolve/],
    ["not a url", /not a URL/],
  ])("should refuse %s", async (url, why) => {
    expect(await guard.refusal(url)).toMatch(why);
  });

  it("should allow loopback and plain http to hosts, addresses and ranges the allowlist names", async () => {
    const allowing = new WebhookUrlGuard(["localhost", "127.0.0.1", "10.0.0.0/8"], resolver({ localhost: ["127.0.0.1", "::1"] }));
    expect(await allowing.refusal("http://localhost:8080/")).toBeUndefined();
    expect(await allowing.refusal("http://127.0.0.1:9/")).toBeUndefined();
    expect(await allowing.refusal("http://10.9.8.7/")).toBeUndefined();
    expect(await allowing.refusal("https://[::1]/")).toMatch(/::1/);
  });
});

describe("WebhookUrlGuard.lookup (the connection's own resolution)", () => {
  const lookup = (guard: WebhookUrlGuard, host: string, all: boolean) =>
    new Promise<{ error: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
      guard.lookup(host, { all }, (error, address) => resolve({ error, address })),
    );

  it("should fail before connecting when a name resolves to an address the guard refuses", async () => {
    const { error } = await lookup(new WebhookUrlGuard([], names), "rebind.example", true);
    expect(error).toMatchObject({ code: "EREFUSED" });
  });

  it("should answer like dns.lookup for an allowed name, in both of its forms", async () => {
    const guard = new WebhookUrlGuard([], names);
    expect((await lookup(guard, "public.example", true)).address).toEqual([{ address: "93.184.215.14", family: 4 }]);
    expect((await lookup(guard, "public.example", false)).address).toBe("93.184.215.14");
  });
});

describe("parseRetryAfter", () => {
  it("should read seconds and HTTP dates, and ignore what it cannot read", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
