export { type BreakerOptions, CircuitOpenError, isCallerError } from "./breaker.ts";
export {
  attemptsOf,
  type Client,
  type ClientOptions,
  closeClient,
  closeClients,
  createClient,
} from "./create-client.ts";
export type { RetryBudgetOptions, RetryOptions } from "./retry-policy.ts";
