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

function metric<T>(name: string, make: (name: string) => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make(name);
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

type Labels = Record<string, string>;
type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

/**
 * A metric family whose series are plain objects the hot path bumps: the RPC families change on every
 * call, and prom-client's own `inc`/`observe` hash and validate the label set each time (~4 % of a hop's
 * CPU in `pnpm bench:profile`). Each caller resolves its series once and then adds to numbers; the
 * registry reads the family like any prom-client metric (it asks for `get()` and `reset()`).
 */
abstract class Family<Cell extends { readonly labels: Labels }> {
  readonly aggregator = "sum";
  abstract readonly type: string;
  private readonly cells = new Map<string, Cell>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    registry.registerMetric(this as unknown as client.Metric);
  }

  protected abstract create(labels: Labels): Cell;
  protected abstract samples(cell: Cell): Sample[];
  protected abstract zero(cell: Cell): void;

  /** The series for `labels`, created at zero; keep it. */
  series(labels: Labels): Cell {
    const key = JSON.stringify(labels);
    let cell = this.cells.get(key);
    if (!cell) {
      cell = this.create(labels);
      this.cells.set(key, cell);
    }
    return cell;
  }

  get() {
    const values = [...this.cells.values()].flatMap((c) => this.samples(c));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const c of this.cells.values()) this.zero(c);
  }
}

/** A counter family: add to a series' `value`. */
class CounterFamily extends Family<{ readonly labels: Labels; value: number }> {
  readonly type = "counter";
  protected create(labels: Labels) {
    return { labels, value: 0 };
  }
  protected samples(c: { labels: Labels; value: number }): Sample[] {
    return [{ labels: c.labels, value: c.value }];
  }
  protected zero(c: { value: number }): void {
    c.value = 0;
  }
}

/** One histogram series: a count per bucket (not cumulative; the last is above every bound). */
export interface HistogramCell {
  readonly labels: Labels;
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A histogram family; `observe` is a bucket search and three adds. */
class HistogramFamily extends Family<HistogramCell> {
  readonly type = "histogram";

  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
  ) {
    super(name, help);
  }

  observe(cell: HistogramCell, value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
    cell.count++;
  }

  protected create(labels: Labels): HistogramCell {
    return { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  protected samples(c: HistogramCell): Sample[] {
    const bucket = `${this.name}_bucket`;
    const out: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += c.counts[i]!;
      out.push({ labels: { le: this.buckets[i]!, ...c.labels }, value: cumulative, metricName: bucket });
    }
    out.push({ labels: { le: "+Inf", ...c.labels }, value: c.count, metricName: bucket });
    out.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
    out.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    return out;
  }

  protected zero(c: HistogramCell): void {
    c.counts.fill(0);
    c.sum = 0;
    c.count = 0;
  }
}

/** go-grpc-prometheus' three families for one side of a call. */
function rpcFamilies(side: "server" | "client") {
  const who = side === "server" ? "on the server" : "by clients";
  return {
    started: metric(`grpc_${side}_started_total`, (name) => new CounterFamily(name, `RPCs started ${who}.`)),
    handled: metric(
      `grpc_${side}_handled_total`,
      (name) => new CounterFamily(name, `RPCs completed ${who}, by status code.`),
    ),
    seconds: metric(
      `grpc_${side}_handling_seconds`,
      (name) =>
        new HistogramFamily(
          name,
          side === "server"
            ? "Time from an RPC's arrival to its status, on the server."
            : "Time from a client starting an RPC to its status, retries included.",
          LATENCY_BUCKETS,
        ),
    ),
  };
}
const families = { server: rpcFamilies("server"), client: rpcFamilies("client") };

/**
 * One method's series on one side of the call, resolved once so that a call costs two additions and
 * one bucket search. The server and the client each extend it with their own series.
 */
export class RpcMethodMetrics {
  protected readonly labels: { grpc_type: string; grpc_service: string; grpc_method: string };
  private readonly family: ReturnType<typeof rpcFamilies>;
  private readonly started: { value: number };
  private readonly seconds: HistogramCell;
  private readonly handled: { value: number }[] = [];

  constructor(side: "server" | "client", kind: string, service: string, method: string) {
    this.family = families[side];
    this.labels = { grpc_type: grpcType(kind), grpc_service: service, grpc_method: method };
    this.started = this.family.started.series(this.labels);
    this.seconds = this.family.seconds.series(this.labels);
  }

  start(): void {
    this.started.value++;
  }

  done(code: number, seconds: number): void {
    let h = this.handled[code];
    if (!h) {
      h = this.family.handled.series({ ...this.labels, grpc_code: CODE_NAMES[code] ?? String(code) });
      this.handled[code] = h;
    }
    h.value++;
    this.family.seconds.observe(this.seconds, seconds);
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
