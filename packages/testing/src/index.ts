export { type StatusSeen, statusOf } from "./errors.ts";
export { testClient } from "./grpc-client.ts";
export { freePort, type ServiceProcess, startServiceProcess } from "./service-process.ts";
export { createTestDatabase, type TestDatabase } from "./test-database.ts";
