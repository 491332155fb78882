import { Option } from "commander";
import { describe, expect, it } from "vitest";
import { ConfigError, SETTINGS, loadConfig } from "./config.js";

describe("loadConfig()", () => {
  it("should apply the documented defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      host: "127.0.0.1",
      port: 50051,
      httpPort: 8080,
      store: "sqlite",
      sqlitePath: "./data/rookery.db",
      provider: "openai",
    });
  });

  it("should let flags win over env vars", () => {
    expect(loadConfig({ ROOKERY_PORT: "6000" }, { port: "7000" }).port).toBe(7000);
  });

  it("should name the env var and flag of a bad value", () => {
    expect(() => loadConfig({ ROOKERY_PORT: "seventy" })).toThrow(/invalid ROOKERY_PORT \(--port\) = "seventy"/);
    expect(() => loadConfig({ ROOKERY_STORE: "redis" })).toThrow(ConfigError);
    expect(() => loadConfig({ ROOKERY_PROVIDERS: "{nope" })).toThrow(/ROOKERY_PROVIDERS.*JSON object/);
  });

  it("should refuse a timer setting longer than a timer can wait (Node would fire it at once), and take the longest one", () => {
    expect(() => loadConfig({ ROOKERY_SWEEP_MS: "3000000000" })).toThrow(/ROOKERY_SWEEP_MS.*at most 2147483647 \(about 24\.8 days/);
    expect(() => loadConfig({ ROOKERY_WATCH_STALL_MS: "2147483648" })).toThrow(/ROOKERY_WATCH_STALL_MS/);
    expect(loadConfig({ ROOKERY_LEASE_MS: "2147483647" }).leaseMs).toBe(2147483647);
  });

  it("should refuse settings that only make sense together when one is missing", () => {
    expect(() => loadConfig({ ROOKERY_STORE: "mongodb" })).toThrow(/MONGODB_URI/);
    expect(() => loadConfig({ ROOKERY_TLS_CERT: "c.pem" })).toThrow(/together/);
  });

  it("should give every setting a flag whose commander attribute is the setting's name", () => {
    for (const [name, setting] of Object.entries(SETTINGS)) {
      expect(new Option(setting.flag).attributeName()).toBe(name);
    }
  });
});
