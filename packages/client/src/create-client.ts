import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient as createConnectClient } from "@connectrpc/connect";
import type { Logger } from "pino";
import { type BalancingOptions, type OutlierOptions, parseTarget } from "./balancer.ts";
import type { BreakerOptions } from "./breaker.ts";
import { DispatchTransport, type HedgingOptions } from "./dispatch-transport.ts";
import type { RetryBudgetOptions, RetryOptions } from "./retry-policy.ts";
import { closeAllSessions } from "./sessions.ts";

export type { Client };

export interface ClientOptions {
  /**
   * "host:port", "http://host:port", a comma list of them, or "dns:///name:port" (every A/AAAA record an
   * endpoint, re-resolved periodically: a Kubernetes headless Service).
   */
  target: string;
  /** The called service's name, for logs and error messages. Default: the target. */
  name?: string;
  /** Deadline of a call unless the call sets its own. Default 5000 ms. */
  timeoutMs?: number;
  breaker?: BreakerOptions;
  /** Retries of NO_SIDE_EFFECTS / IDEMPOTENT methods (gRFC A6). Default: 3 attempts on UNAVAILABLE; false: none. */
  retry?: RetryOptions | false;
  /** The per-client retry budget (A6 throttling). */
  retryBudget?: RetryBudgetOptions;
  /** Hedging for NO_SIDE_EFFECTS methods (gRFC A6); off by default. */
  hedging?: HedgingOptions;
  /** round_robin (default) or p2c; DNS re-resolution interval. */
  balancing?: BalancingOptions;
  /** Outlier ejection of endpoints that refuse connections or fail repeatedly. */
  outlier?: OutlierOptions;
  logger?: Logger;
}

const transports = new WeakMap<object, DispatchTransport>();
const all = new Set<DispatchTransport>();

/**
 * A typed promise client for a generated service: `await client.getMenu({ restaurantId })`.
 * Inside a handler, the incoming call's deadline, cancellation and request id carry over.
 */
export function createClient<S extends DescService>(service: S, opts: ClientOptions): Client<S> {
  const transport = new DispatchTransport({
    name: opts.name ?? opts.target,
    target: parseTarget(opts.target),
    timeoutMs: opts.timeoutMs ?? 5000,
    breaker: opts.breaker ?? {},
    retry: opts.retry ?? {},
    retryBudget: opts.retryBudget ?? {},
    hedging: opts.hedging,
    balancing: opts.balancing ?? {},
    outlier: opts.outlier ?? {},
    logger: opts.logger,
  });
  const client = createConnectClient(service, transport);
  transports.set(client, transport);
  all.add(transport);
  return client;
}

/** Attempts a client has sent (first attempts and retries), for tests and metrics. */
export function attemptsOf(client: object): number {
  return transports.get(client)?.attempts ?? 0;
}

/** The transport behind a client: its balancer and breakers, for tests and metrics. */
export function transportOf(client: object): DispatchTransport | undefined {
  return transports.get(client);
}

/** Stops a client's breakers (their timers). Connections are shared; closeClients() closes them. */
export function closeClient(client: object): void {
  const t = transports.get(client);
  t?.breakers.shutdown();
  t?.balancer.close();
  if (t) all.delete(t);
}

/** Stops every client and closes every connection (at shutdown, after the last call). */
export async function closeClients(): Promise<void> {
  for (const t of all) {
    t.breakers.shutdown();
    t.balancer.close();
  }
  all.clear();
  closeAllSessions();
}
