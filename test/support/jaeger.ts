// A real Jaeger (v2, the OpenTelemetry-collector-based binary) for the trace
// tests: built from tools/jaeger (the Go module proxy) with the Go toolchain,
// cached under .cache/bin by a hash of its module files, started with memory
// storage, an OTLP/HTTP receiver and the query HTTP API on free loopback ports.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";
import { goBuildCached } from "./toolchains.js";

const SOURCE = resolve("tools/jaeger");

/** Builds the binary unless the cached one matches the module files (7 min cold on 2 cores; seconds warm). */
export function ensureJaeger(): string {
  return goBuildCached("jaeger", SOURCE, ["go.mod", "go.sum"], "github.com/jaegertracing/jaeger/cmd/jaeger", 1_200_000);
}

export interface Jaeger {
  /** Base URL of the OTLP/HTTP receiver: OTEL_EXPORTER_OTLP_ENDPOINT. */
  otlpEndpoint: string;
  /** Base URL of the query HTTP API (/api/traces/...). */
  queryUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts Jaeger on free ports. A port free when chosen can be taken before Jaeger
 * binds it (the suites run side by side): then it starts again on others.
 */
export async function startJaeger(bin: string): Promise<Jaeger> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(bin);
    } catch (error) {
      if (attempt === 5 || !String(error).includes("address already in use")) throw error;
    }
  }
}

async function startOnFreePorts(bin: string): Promise<Jaeger> {
  const [otlp, queryHttp, queryGrpc] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "rookery-jaeger-"));
  const config = join(dir, "config.yaml");
  writeFileSync(
    config,
    `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: []
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${queryHttp}
    grpc:
      endpoint: 127.0.0.1:${queryGrpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlp}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`,
  );
  const child: ChildProcess = spawn(bin, ["--config", config], { stdio: ["ignore", "ignore", "pipe"] });
  const stderr: string[] = [];
  child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  const closed = once(child, "close").catch(() => undefined); // its stderr read to the end
  const queryUrl = `http://127.0.0.1:${queryHttp}`;
  for (let waited = 0; ; waited += 100) {
    if (child.exitCode !== null) {
      await closed;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`jaeger exited (${child.exitCode}): ${stderr.join("")}`);
    }
    const ready = await fetch(`${queryUrl}/api/services`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (waited > 60_000) throw new Error(`jaeger did not answer in 60 s: ${stderr.join("")}`);
    await sleep(100);
  }
  return {
    otlpEndpoint: `http://127.0.0.1:${otlp}`,
    queryUrl,
    async stop() {
      if (child.exitCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; value: unknown }[];
  startTime: number;
}

/** The spans of one trace as Jaeger's query API returns them (empty until it has them). */
export async function traceSpans(jaeger: Jaeger, traceId: string): Promise<JaegerSpan[]> {
  const response = await fetch(`${jaeger.queryUrl}/api/traces/${traceId}`);
  if (!response.ok) return [];
  const body = (await response.json()) as { data?: { spans: JaegerSpan[] }[] };
  return body.data?.[0]?.spans ?? [];
}

export function tag(span: JaegerSpan, key: string): unknown {
  return span.tags.find((t) => t.key === key)?.value;
}
