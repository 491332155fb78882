// Span helpers the rest of the code calls; only @opentelemetry/api is used
// here, so without a registered provider (setup.ts) every span is a no-op.
// Names and attributes follow the OpenTelemetry GenAI and RPC conventions.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from "@opentelemetry/api";

const tracer = () => trace.getTracer("rookery");

/** Runs `work` in a new span (a child of `parent`, else of the active context), ending it after. */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context; links?: Link[] },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes ? { attributes: options.attributes } : {}),
      ...(options.links ? { links: options.links } : {}),
    },
    parent,
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        failed(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** Runs `work` in a span only when a trace is active (a write made outside any, such as a claim poll, makes no trace of its own). */
export function inSpanIfTraced<T>(name: string, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  return trace.getActiveSpan() ? inSpan(name, { attributes }, () => work()) : work();
}

/** A span of something that already happened (from `start` to `end`), in the active context. */
export function pastSpan(name: string, start: Date, end: Date, attributes: Attributes): void {
  tracer().startSpan(name, { startTime: start, attributes }, context.active()).end(end);
}

/** Marks a span failed with the error (its message is the status description). */
export function failed(span: Span, error: unknown, message?: string): void {
  const text = message ?? (error instanceof Error ? error.message : String(error));
  span.recordException(error instanceof Error ? error : new Error(text));
  span.setStatus({ code: SpanStatusCode.ERROR, message: text });
}

/** Marks the active span failed with `reason` (a task's failure, say). */
export function failActiveSpan(reason: string, attributes?: Attributes): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  if (attributes) span.setAttributes(attributes);
  span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
}

/** The context a W3C `traceparent` (and `tracestate`) names; the root context when absent or malformed. */
export function contextFrom(traceparent: string | undefined, tracestate?: string): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent, ...(tracestate ? { tracestate } : {}) });
}

/** The active span's context as a `traceparent`, to store with a task or send on; undefined without a sampled span. */
export function currentTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/** Headers that carry the active trace context to another service (the model provider). */
export function traceHeaders(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** trace_id and span_id of the active span, for log lines; empty without one. */
export function logTraceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  return traceFlags === 0 && traceId === "00000000000000000000000000000000" ? {} : { trace_id: traceId, span_id: spanId };
}

export { SpanKind };
