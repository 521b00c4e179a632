export { type BreakerOptions, isCallerError } from "./breaker.ts";
export { type Client, type ClientOptions, closeClient, closeClients, createClient } from "./create-client.ts";
