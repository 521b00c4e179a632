export type { BalancingOptions, Endpoint, OutlierOptions } from "./balancer.ts";
export { parseTarget } from "./balancer.ts";
export { type BreakerOptions, CircuitOpenError, isCallerError } from "./breaker.ts";
export {
  attemptsOf,
  type Client,
  type ClientOptions,
  closeClient,
  closeClients,
  createClient,
  transportOf,
} from "./create-client.ts";
export type { HedgingOptions } from "./dispatch-transport.ts";
export type { RetryBudgetOptions, RetryOptions } from "./retry-policy.ts";
export { neverSent } from "./retry-policy.ts";
export { callUndecoded } from "./undecoded.ts";
