/**
 * OpenTelemetry tracing. Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (or a test installs an exporter):
 * then every gRPC hop gets a SERVER span (parent taken from the caller's W3C `traceparent`) and a CLIENT
 * span (its context injected into the outgoing call), database statements get CLIENT spans, and outbox
 * events carry the trace context to their consumers. Sampling is parent-based with a ratio for new
 * traces (OTEL_TRACES_SAMPLER_ARG, default 0.05: 5 %). Off means off: no spans, no context, no cost.
 */
import { randomBytes } from "node:crypto";
import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { currentCall } from "./call-context.ts";

/** The trace context outgoing work continues: the current call's, else OpenTelemetry's active one. */
function activeContext(): Context {
  return currentCall()?.traceSpan?.context ?? context.active();
}

let tracer: Tracer | undefined;
let provider: TracerProvider | undefined;
/** Share of new traces sampled; decided here, before any span exists, so an unsampled call costs nothing. */
let rootRatio = 0.05;

/**
 * The context of every call not sampled: one shared non-recording span, so such a call allocates no span
 * or context. Each such call still gets its own trace and span ids (random, or the caller's trace id) for
 * its log lines and for the traceparent (flags 00) it passes on, so the services behind follow the
 * decision instead of sampling fragments, and every line of the request shares one trace_id.
 */
const UNSAMPLED_CONTEXT = trace.setSpan(
  ROOT_CONTEXT,
  trace.wrapSpanContext({
    traceId: randomBytes(16).toString("hex"),
    spanId: randomBytes(8).toString("hex"),
    traceFlags: TraceFlags.NONE,
  }),
);
const UNSAMPLED_SPAN = trace.getSpan(UNSAMPLED_CONTEXT)!;

// Ids of unsampled calls: unique per process (a random prefix) and cheap (a counter), because every call
// needs them for its log line; they never reach a sampler's ratio decision (downstream follows flags 00).
const TRACE_PREFIX = randomBytes(8).toString("hex");
const SPAN_PREFIX = randomBytes(4).toString("hex");
let idCounter = 0;
const nextTraceId = () => TRACE_PREFIX + (++idCounter).toString(16).padStart(16, "0");
const nextSpanId = () => SPAN_PREFIX + (++idCounter % 0xffffffff).toString(16).padStart(8, "0");

/** A call the sampler left out: shared context, own ids, nothing to end. A class, so no closure per call. */
class UnsampledSpan implements OpenSpan {
  readonly span = UNSAMPLED_SPAN;
  readonly context = UNSAMPLED_CONTEXT;
  readonly sampled = false;
  readonly spanId = nextSpanId();
  constructor(readonly traceId: string) {}
  end(): void {}
}

function unsampled(traceId: string = nextTraceId()): OpenSpan {
  return new UnsampledSpan(traceId);
}
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;
const sampledRoot = () => Math.random() < rootRatio;

export interface TracingOptions {
  service: string;
  /** Where spans go; default OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT. */
  exporter?: SpanExporter;
  /** Share of new traces sampled (a caller's decision is always followed). Default OTEL_TRACES_SAMPLER_ARG or 0.05. */
  ratio?: number;
  /** Export each span as it ends (tests); default batches. */
  immediate?: boolean;
}

/**
 * Starts tracing for the process, once; later calls (several services in one test process) reuse it.
 * Without an exporter and without OTEL_EXPORTER_OTLP_ENDPOINT it does nothing.
 */
export function startTracing(opts: TracingOptions): void {
  if (tracer) return;
  const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!opts.exporter && !endpoint) return;
  const envRatio = Number(process.env.OTEL_TRACES_SAMPLER_ARG);
  const ratio =
    opts.ratio ?? (Number.isFinite(envRatio) && process.env.OTEL_TRACES_SAMPLER_ARG ? envRatio : 0.05);
  const exporter = opts.exporter ?? new OTLPTraceExporter();
  rootRatio = ratio;
  provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME ?? opts.service }),
    // Roots are decided by sampledRoot() before a span is made; the SDK follows parents.
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [
      opts.immediate ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  tracer = trace.getTracer("dispatch");
}

/** Flushes and stops tracing (at shutdown, and between tests). */
export async function stopTracing(): Promise<void> {
  const p = provider;
  tracer = undefined;
  provider = undefined;
  if (!p) return;
  await p.forceFlush();
  await p.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
}

/** Spans of a gRPC hop end with the call's status; server spans are errors only for server faults. */
const SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

export interface OpenSpan {
  readonly span: Span;
  readonly context: Context;
  /** False for a call the sampler left out: no span is recorded, but it has ids for logs and downstream. */
  readonly sampled: boolean;
  readonly traceId: string;
  readonly spanId: string;
  end(code: number, message?: string): void;
}

function open(span: Span, ctx: Context, errorCodes: (code: number) => boolean): OpenSpan {
  const ids = span.spanContext();
  return {
    span,
    context: ctx,
    sampled: true,
    traceId: ids.traceId,
    spanId: ids.spanId,
    end(code, message) {
      span.setAttribute("rpc.grpc.status_code", code);
      if (errorCodes(code)) span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
      span.end();
    },
  };
}

type HeaderSource = Record<string, string | string[] | undefined> | Headers;
/**
 * Not `instanceof Headers`: the first read of the global `Headers` makes node load undici (27–33 ms on
 * this machine), and a server's first call (its first health check, at start-up) would pay for it. A
 * plain header record has no `get` function: its values are strings.
 */
const isHeaders = (c: HeaderSource): c is Headers => typeof (c as Headers).get === "function";
const getter = {
  keys: (c: HeaderSource) => (isHeaders(c) ? [...c.keys()] : Object.keys(c)),
  get: (c: HeaderSource, key: string) => {
    const v = isHeaders(c) ? (c.get(key) ?? undefined) : c[key];
    return Array.isArray(v) ? v[0] : v;
  },
};

/** A SERVER span for an incoming call, child of the caller's traceparent (if any). Undefined when off. */
export function serverSpan(
  headers: HeaderSource,
  service: string,
  method: string,
  attributes: Attributes = {},
): OpenSpan {
  const left = leftOut(headers);
  if (left) return left;
  const parent = propagation.extract(ROOT_CONTEXT, headers, getter);
  const span = tracer!.startSpan(
    `${service}/${method}`,
    {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, ...attributes },
    },
    parent,
  );
  return open(span, trace.setSpan(parent, span), (c) => SERVER_ERRORS.has(c));
}

/**
 * A CONSUMER span for handling one event of several received in one call (HandleEvents), child of the
 * trace context the event carries, so each event's handling joins the trace of the request that wrote it.
 * Run the handling with it as the call's `traceSpan` (runInCall) for its SQL spans and calls to nest under
 * it; `end(code)` marks any code but OK an error.
 */
export function consumerSpan(
  carrier: Record<string, string>,
  name: string,
  attributes: Attributes = {},
): OpenSpan {
  const left = leftOut(carrier);
  if (left) return left;
  const parent = propagation.extract(ROOT_CONTEXT, carrier, getter);
  const span = tracer!.startSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent);
  return open(span, trace.setSpan(parent, span), (c) => c !== 0);
}

/**
 * The unsampled span of a call or event continued from `carrier` that gets no recorded span, or undefined
 * when it gets one (tracing on, and the caller sampled it, or a new trace the ratio picked). Decided
 * before anything of a span is built: an unsampled call, the usual one, pays for nothing more.
 */
function leftOut(carrier: HeaderSource): OpenSpan | undefined {
  const traceparent = getter.get(carrier, "traceparent");
  const caller = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  // Tracing off: the call still has W3C ids (the caller's trace id, or a new one) for its log lines and
  // for the services it calls, so one request shares one trace_id everywhere.
  if (!tracer) return unsampled(caller?.[1]);
  if (!caller) {
    // No (valid) caller context: a new trace, sampled at the configured ratio.
    if (!sampledRoot()) return unsampled();
  } else if (!(Number.parseInt(caller[2]!, 16) & 1)) {
    // The caller did not sample: follow it, keeping its trace id for the logs.
    return unsampled(caller[1]);
  }
  return undefined;
}

/** A CLIENT span for an outgoing call, child of the current span; its context goes into `headers`. */
export function clientSpan(
  service: string,
  method: string,
  target: string,
  headers?: Headers,
): OpenSpan | undefined {
  if (!tracer) {
    const call = currentCall()?.traceSpan;
    if (call && headers) injectInto(headers, call);
    return call;
  }
  const parent = activeContext();
  const current = trace.getSpan(parent);
  if (current ? !(current.spanContext().traceFlags & TraceFlags.SAMPLED) : !sampledRoot()) {
    // Not sampled: no client span; the call's own ids (flags 00) go downstream.
    const call = currentCall()?.traceSpan;
    const unsampledCall = call && !call.sampled ? call : unsampled(call?.traceId);
    if (headers) injectInto(headers, unsampledCall);
    return unsampledCall;
  }
  const span = tracer.startSpan(
    `${service}/${method}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        "rpc.system": "grpc",
        "rpc.service": service,
        "rpc.method": method,
        "server.address": target,
      },
    },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  if (headers) propagation.inject(ctx, headers, { set: (h: Headers, k: string, v: string) => h.set(k, v) });
  return open(span, ctx, (c) => c !== 0);
}

/** Writes the current trace context into `carrier` (e.g. an outbox event's trace_context). */
export function injectContext(carrier: Record<string, string>): void {
  const call = currentCall()?.traceSpan;
  if (call && !call.sampled) carrier.traceparent = `00-${call.traceId}-${call.spanId}-00`;
  else if (tracer) propagation.inject(activeContext(), carrier);
}

/** Runs `fn` as a child of the trace context in `carrier` (an event's), under a span named `name`. */
export function withContextFrom<T>(
  carrier: Record<string, string>,
  name: string,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  if (!tracer) return fn();
  const traceparent = carrier.traceparent;
  if (traceparent === undefined ? !sampledRoot() : traceparent.endsWith("-00"))
    return context.with(UNSAMPLED_CONTEXT, fn);
  const parent = propagation.extract(ROOT_CONTEXT, carrier);
  const span = tracer.startSpan(name, { kind: SpanKind.PRODUCER, attributes }, parent);
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A CLIENT span for a database statement under the current span, or undefined (off, or no current span). */
export function dbSpan(operation: string): Span | undefined {
  if (!tracer) return undefined;
  const parent = activeContext();
  const current = trace.getSpan(parent);
  if (!current || !(current.spanContext().traceFlags & TraceFlags.SAMPLED)) return undefined;
  return tracer.startSpan(
    operation.toUpperCase(),
    {
      kind: SpanKind.CLIENT,
      attributes: { "db.system.name": "postgresql", "db.operation.name": operation.toUpperCase() },
    },
    parent,
  );
}

/** trace_id and span_id of the current span, for log lines. */
export function logIds(): { trace_id?: string; span_id?: string } {
  const call = currentCall()?.traceSpan;
  if (call) return { trace_id: call.traceId, span_id: call.spanId };
  if (!tracer) return {};
  const s = trace.getSpan(context.active())?.spanContext();
  return s && s.traceFlags & TraceFlags.SAMPLED ? { trace_id: s.traceId, span_id: s.spanId } : {};
}

/** Puts a call's trace context (default: the current one) into outgoing call headers. */
export function injectInto(headers: Headers, span?: OpenSpan): void {
  if (span && !span.sampled) headers.set("traceparent", `00-${span.traceId}-${span.spanId}-00`);
  else if (tracer)
    propagation.inject(span?.context ?? activeContext(), headers, {
      set: (h: Headers, k: string, v: string) => h.set(k, v),
    });
}

/** Exports what is buffered (at shutdown). */
export async function flushTracing(): Promise<void> {
  await provider?.forceFlush();
}
