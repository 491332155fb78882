// OpenTelemetry tracing, configured by the standard OTEL_* variables. With no
// OTLP endpoint set (or OTEL_TRACES_EXPORTER=none) nothing is set up: the
// @opentelemetry/api calls in spans.ts then hit its no-op tracer, which costs
// next to nothing. Only this file imports the SDK.
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";

export interface Tracing {
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/** True when the environment asks for traces to be exported over OTLP. */
export function tracingWanted(env: Record<string, string | undefined>): boolean {
  if ((env.OTEL_TRACES_EXPORTER ?? "otlp").split(",").every((e) => e.trim() === "none")) return false;
  if (env.OTEL_SDK_DISABLED === "true") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Registers a tracer provider exporting over OTLP/HTTP (protobuf) in batches, with the
 * sampler, service name and endpoints the OTEL_* variables give; undefined when tracing
 * is not wanted.
 */
export function startTracing(env: Record<string, string | undefined> = process.env): Tracing | undefined {
  if (!tracingWanted(env)) return undefined;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? "rookery",
      [ATTR_SERVICE_VERSION]: "0.1.0",
    }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  // Also installs the AsyncLocalStorage context manager and the W3C trace context propagator.
  provider.register();
  return { shutdown: () => provider.shutdown() };
}
