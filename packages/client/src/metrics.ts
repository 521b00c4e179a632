import { counter, gauge, RpcMethodMetrics } from "@dispatch/runtime";

/** Dispatch's client series beside go-grpc-prometheus' grpc_client_* (RpcMethodMetrics). */
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

export class ClientMethodMetrics extends RpcMethodMetrics {
  constructor(
    private readonly target: string,
    kind: string,
    service: string,
    method: string,
  ) {
    super("client", kind, service, method);
  }

  retry(kind: "transparent" | "policy" | "hedge"): void {
    retries.inc({
      target: this.target,
      grpc_service: this.labels.grpc_service,
      grpc_method: this.labels.grpc_method,
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
