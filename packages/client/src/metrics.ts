import { CODE_NAMES, counter, gauge, grpcType, histogram } from "@dispatch/runtime";

/** Client-side series, as go-grpc-prometheus names them, plus Dispatch's breaker and retry series. */
const RPC = ["grpc_type", "grpc_service", "grpc_method"];
const started = counter("grpc_client_started_total", "RPCs started by clients.", RPC);
const handled = counter("grpc_client_handled_total", "RPCs completed by clients, by status code.", [
  ...RPC,
  "grpc_code",
]);
const seconds = histogram(
  "grpc_client_handling_seconds",
  "Time from a client starting an RPC to its status, retries included.",
  RPC,
);
const retries = counter(
  "dispatch_client_retries_total",
  "Extra attempts a client sent: transparent (the first never reached a server), policy (gRFC A6 retry), hedge.",
  ["target", "grpc_service", "grpc_method", "kind"],
);
const budgetExhausted = counter(
  "dispatch_client_retry_budget_exhausted_total",
  "Retries or hedges a client did not send because its retry budget was spent.",
  ["target"],
);
const breakerState = gauge(
  "dispatch_client_breaker_state",
  "Circuit breaker per endpoint and method: 0 closed, 1 half-open, 2 open.",
  ["target", "endpoint", "grpc_method"],
);
const breakerTransitions = counter(
  "dispatch_client_breaker_transitions_total",
  "Circuit breaker transitions, by the state entered.",
  ["target", "endpoint", "grpc_method", "state"],
);

export class ClientMethodMetrics {
  private readonly labels: Record<string, string>;
  private readonly startedChild;
  private readonly secondsChild;
  private readonly handledChildren: ReturnType<typeof handled.labels>[] = [];

  constructor(
    private readonly target: string,
    kind: string,
    service: string,
    method: string,
  ) {
    this.labels = { grpc_type: grpcType(kind), grpc_service: service, grpc_method: method };
    this.startedChild = started.labels(this.labels);
    this.secondsChild = seconds.labels(this.labels);
  }

  start(): number {
    this.startedChild.inc();
    return performance.now();
  }

  done(code: number, since: number): void {
    let h = this.handledChildren[code];
    if (!h) {
      h = handled.labels({ ...this.labels, grpc_code: CODE_NAMES[code] ?? String(code) });
      this.handledChildren[code] = h;
    }
    h.inc();
    this.secondsChild.observe((performance.now() - since) / 1000);
  }

  retry(kind: "transparent" | "policy" | "hedge"): void {
    retries.inc({
      target: this.target,
      grpc_service: this.labels.grpc_service!,
      grpc_method: this.labels.grpc_method!,
      kind,
    });
  }
}

export function budgetSpent(target: string): void {
  budgetExhausted.inc({ target });
}

const STATES = { closed: 0, halfOpen: 1, open: 2 } as const;
export function breakerChanged(
  target: string,
  endpoint: string,
  method: string,
  state: keyof typeof STATES,
): void {
  const labels = { target, endpoint, grpc_method: method };
  breakerState.set(labels, STATES[state]);
  breakerTransitions.inc({ ...labels, state: state === "halfOpen" ? "half_open" : state });
}
