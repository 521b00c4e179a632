/**
 * Prometheus metrics (prom-client), served on each service's admin port at /metrics. Names and labels
 * follow go-grpc-prometheus (grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
 * and friends), so existing gRPC dashboards work unchanged; Dispatch's own series start with dispatch_.
 * One registry per process, shared by the server, clients, database and background workers.
 */
import client from "prom-client";

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });

/** Latency buckets in seconds: sub-millisecond hops up to slow calls. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const kinds: Record<string, string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};
/** go-grpc-prometheus' grpc_type for a protobuf-es method kind. */
export const grpcType = (kind: string): string => kinds[kind] ?? kind;

/** gRPC status names as grpc-go prints them (codes.Code.String()). */
export const CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

function metric<T>(name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function counter(name: string, help: string, labelNames: string[] = []): client.Counter<string> {
  return metric(name, () => new client.Counter({ name, help, labelNames, registers: [registry] }));
}

export function gauge(
  name: string,
  help: string,
  labelNames: string[] = [],
  collect?: (this: client.Gauge<string>) => void | Promise<void>,
): client.Gauge<string> {
  return metric(
    name,
    () =>
      new client.Gauge({ name, help, labelNames, registers: [registry], ...(collect ? { collect } : {}) }),
  );
}

export function histogram(
  name: string,
  help: string,
  labelNames: string[] = [],
  buckets: number[] = LATENCY_BUCKETS,
): client.Histogram<string> {
  return metric(name, () => new client.Histogram({ name, help, labelNames, buckets, registers: [registry] }));
}

const RPC_LABELS = ["grpc_type", "grpc_service", "grpc_method"];

/** go-grpc-prometheus' three families for one side of a call. */
function rpcFamilies(side: "server" | "client") {
  const who = side === "server" ? "on the server" : "by clients";
  return {
    started: counter(`grpc_${side}_started_total`, `RPCs started ${who}.`, RPC_LABELS),
    handled: counter(`grpc_${side}_handled_total`, `RPCs completed ${who}, by status code.`, [
      ...RPC_LABELS,
      "grpc_code",
    ]),
    seconds: histogram(
      `grpc_${side}_handling_seconds`,
      side === "server"
        ? "Time from an RPC's arrival to its status, on the server."
        : "Time from a client starting an RPC to its status, retries included.",
      RPC_LABELS,
    ),
  };
}
const families = { server: rpcFamilies("server"), client: rpcFamilies("client") };

/**
 * One method's series on one side of the call, resolved once so that a call costs two increments and
 * one observation. The server and the client each extend it with their own series.
 */
export class RpcMethodMetrics {
  protected readonly labels: { grpc_type: string; grpc_service: string; grpc_method: string };
  private readonly family: ReturnType<typeof rpcFamilies>;
  private readonly started: client.Counter.Internal;
  private readonly seconds: client.Histogram.Internal<string>;
  private readonly handled: client.Counter.Internal[] = [];

  constructor(side: "server" | "client", kind: string, service: string, method: string) {
    this.family = families[side];
    this.labels = { grpc_type: grpcType(kind), grpc_service: service, grpc_method: method };
    this.started = this.family.started.labels(this.labels);
    this.seconds = this.family.seconds.labels(this.labels);
  }

  start(): void {
    this.started.inc();
  }

  done(code: number, seconds: number): void {
    let h = this.handled[code];
    if (!h) {
      h = this.family.handled.labels({ ...this.labels, grpc_code: CODE_NAMES[code] ?? String(code) });
      this.handled[code] = h;
    }
    h.inc();
    this.seconds.observe(seconds);
  }
}

const serverShed = counter(
  "dispatch_grpc_server_shed_total",
  "RPCs refused with RESOURCE_EXHAUSTED because the server was at MAX_IN_FLIGHT.",
  ["grpc_service", "grpc_method"],
);

export class ServerMethodMetrics extends RpcMethodMetrics {
  constructor(kind: string, service: string, method: string) {
    super("server", kind, service, method);
  }

  shed(): void {
    serverShed.inc({ grpc_service: this.labels.grpc_service, grpc_method: this.labels.grpc_method });
  }
}

const inFlightReaders = new Set<() => number>();
gauge("dispatch_grpc_server_in_flight", "RPCs the server is handling now.", [], function () {
  let n = 0;
  for (const read of inFlightReaders) n += read();
  this.set(n);
});

/** Counts a server's calls in flight when Prometheus scrapes; returns the function that stops it. */
export function trackInFlight(read: () => number): () => void {
  inFlightReaders.add(read);
  return () => inFlightReaders.delete(read);
}
