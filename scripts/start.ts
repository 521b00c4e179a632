/**
 * `pnpm start`: runs every service as its own process on embedded PGlite (.data/<service>), waits until
 * each reports SERVING over grpc.health.v1, prints the endpoints, and stops them all on Ctrl-C.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const services = [
  { name: "catalog", port: 50052, env: {} },
  { name: "orders", port: 50053, env: { CATALOG_URL: "127.0.0.1:50052" } },
] as const;

const children = new Map<string, ChildProcess>();
let stopping = false;

function startService(s: (typeof services)[number]): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", `services/${s.name}/src/main.ts`], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, PORT: String(s.port), ADMIN_PORT: String(s.port + 1000), ...s.env },
  });
  child.on("exit", (code, signal) => {
    children.delete(s.name);
    if (!stopping) {
      console.error(`\n${s.name} exited (${signal ?? `code ${code}`}); stopping the others`);
      void stopAll(1);
    } else if (children.size === 0) process.exit(process.exitCode ?? 0);
  });
  children.set(s.name, child);
  return child;
}

async function waitServing(name: string, port: number, timeoutMs = 60_000): Promise<void> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await health.check({ service: "" }, { timeoutMs: 1000 });
      if (res.status === HealthCheckResponse_ServingStatus.SERVING) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until)
      throw new Error(`${name} did not report SERVING on :${port} within ${timeoutMs} ms`);
    if (!children.has(name)) throw new Error(`${name} exited before it was ready`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopAll(exitCode = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.exitCode = exitCode;
  if (children.size === 0) process.exit(exitCode);
  for (const child of children.values()) child.kill("SIGTERM");
  // Services drain in-flight calls first; give up after their grace period.
  setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
    process.exit(exitCode || 1);
  }, 15_000).unref();
}

process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

for (const s of services) startService(s);
try {
  await Promise.all(services.map((s) => waitServing(s.name, s.port)));
} catch (err) {
  console.error(String(err));
  await stopAll(1);
}
if (!stopping) {
  const curl = "pnpm exec buf curl --protocol grpc --http2-prior-knowledge --reflect";
  console.log(`
Dispatch is up (embedded PGlite under .data/). Ctrl-C stops everything.

  service   gRPC (h2c)         admin (healthz, readyz)
${services.map((s) => `  ${s.name.padEnd(9)} 127.0.0.1:${s.port}    http://127.0.0.1:${s.port + 1000}`).join("\n")}

Try:
  ${curl} --list-methods http://127.0.0.1:50053
  ${curl} -d '{"pageSize":3}' http://127.0.0.1:50052/dispatch.catalog.v1.CatalogService/ListRestaurants
  ${curl} -d '{"requestId":"demo-order-0001","userId":"user-1","restaurantId":"rst-001","items":[{"menuItemId":"rst-001-item-01","quantity":2}],"deliveryAddress":{"line1":"Torstrasse 1","city":"Berlin","countryCode":"DE"}}' http://127.0.0.1:50053/dispatch.orders.v1.OrdersService/PlaceOrder
  ${curl} -d '{"userId":"user-1"}' http://127.0.0.1:50053/dispatch.orders.v1.OrdersService/ListActiveOrders
`);
}
