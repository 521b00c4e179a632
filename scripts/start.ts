/**
 * `pnpm start`: runs every service as its own process on embedded PGlite (.data/<service>), waits until
 * each reports SERVING over grpc.health.v1, prints the endpoints, and stops them all on Ctrl-C.
 *
 * Each service runs from a readable bundle of its sources (services/<svc>/.start/main.mjs, rebuilt when a
 * source changes): one file loads in ~0.5 s where the same sources through tsx took ~2.3 s, six times over
 * on two cores. A first start initializes one PGlite cluster and copies it for the other services instead
 * of running five initdbs at once. Every process that runs PGlite keeps its WebAssembly on V8's baseline
 * compiler (EMBEDDED_PGLITE_NODE_FLAGS). Figures: docs/BENCHMARKS.md, "Start-up and memory".
 *
 * Its ports are fixed and lie inside Linux's ephemeral range: it binds them all before any service starts
 * and hands each service its sockets (startService), so no connection made meanwhile can take one.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import { bundleForLocalRun } from "../packages/build/src/bundle.ts";
import { EMBEDDED_PGLITE_NODE_FLAGS, nodeFlagsFor } from "../packages/build/src/node-flags.ts";
import {
  busyPorts,
  type HeldPorts,
  holdPorts,
  PNPM_START_PORTS,
  START_SOCKETS,
  socketsOn,
  waitForPorts,
} from "./start-ports.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const dataRoot = resolve(root, process.env.DATA_ROOT ?? ".data");
const notify = "notifications=127.0.0.1:50055";
const services = [
  { name: "identity", db: true, env: {} },
  { name: "catalog", db: true, env: {} },
  {
    name: "orders",
    db: true,
    env: { CATALOG_URL: "127.0.0.1:50052", EVENT_SUBSCRIBERS: `gateway=127.0.0.1:50050,${notify}` },
  },
  { name: "payments", db: true, env: { EVENT_SUBSCRIBERS: `orders=127.0.0.1:50053,${notify}` } },
  { name: "notifications", db: true, env: {} },
  { name: "gateway", db: false, env: {} },
] as const;
type Service = (typeof services)[number];

/** The service's ports (START_SOCKETS), by the variable that names each. */
const socketsOf = (s: Service): Record<string, number> => START_SOCKETS[s.name];
/** Where the service answers grpc.health.v1: its internal port if it has one (the gateway), else PORT. */
const healthPort = (s: Service): number => socketsOf(s).INTERNAL_PORT ?? socketsOf(s).PORT!;

// The terminal pretty-printer (packages/runtime depends on it) is required by name from the bundle.
const prettyModules = dirname(
  dirname(createRequire(join(root, "packages/runtime/package.json")).resolve("pino-pretty/package.json")),
);

const children = new Map<string, ChildProcess>();
let stopping = false;

/**
 * Starts a service on the sockets bound for it (`held`), handed over by systemd's socket-activation protocol
 * (packages/runtime/src/inherited-sockets.ts): descriptors 3, 4, ... named in LISTEN_FDNAMES, and
 * LISTEN_PID, which only the child knows, set by a shell that then becomes the service (exec keeps the pid).
 * The launcher closes its own copies once the child has them.
 */
function startService(s: Service, bundle: string, held: HeldPorts): ChildProcess {
  const flags = s.db ? [...nodeFlagsFor(s.name), ...EMBEDDED_PGLITE_NODE_FLAGS] : nodeFlagsFor(s.name);
  const sockets = Object.entries(socketsOf(s));
  const child = spawn("/bin/sh", ["-c", 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, ...flags, bundle], {
    cwd: root,
    stdio: ["inherit", "inherit", "inherit", ...sockets.map(([, port]) => held.fd(port))],
    env: {
      ...process.env,
      NODE_PATH: [prettyModules, process.env.NODE_PATH].filter(Boolean).join(":"),
      ...Object.fromEntries(sockets.map(([name, port]) => [name, String(port)])),
      LISTEN_FDS: String(sockets.length),
      LISTEN_FDNAMES: sockets.map(([name]) => name).join(":"),
      // DATA_ROOT moves the PGlite folders (default .data/<service>) under another parent.
      DATA_DIR: join(dataRoot, s.name),
      ...s.env,
    },
  });
  held.release(sockets.map(([, port]) => port));
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

async function waitServing(name: string, port: number, timeoutMs = 180_000): Promise<void> {
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

/**
 * Another program listening on one of the ports is a reason to stop at once; a connection that closed a
 * moment ago and holds one as its local port (TIME_WAIT, up to 60 s) is waited out.
 */
async function portsFree(): Promise<void> {
  const busy = await busyPorts(PNPM_START_PORTS);
  if (busy.length === 0) return;
  const held = socketsOn(busy);
  const listeners = [...new Set(held.filter((s) => s.state === "LISTEN").map((s) => s.port))];
  if (listeners.length > 0) {
    console.error(
      `pnpm start: port ${listeners.join(", ")} already has a listener (another \`pnpm start\`, or another program); stop it first`,
    );
    process.exit(1);
  }
  console.error(
    `pnpm start: waiting for port ${busy.join(", ")}, held by connections that closed a moment ago:\n${held.map((s) => `  ${s.text}`).join("\n")}`,
  );
  await waitForPorts(65_000);
}

/** Binds every port before any service starts; one another program took since portsFree looked is waited for again. */
async function holdAll(): Promise<HeldPorts> {
  for (let attempt = 1; ; attempt++) {
    await portsFree();
    try {
      return await holdPorts(PNPM_START_PORTS);
    } catch (err) {
      if (attempt >= 3 || (err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    }
  }
}

try {
  const held = await holdAll();
  // The bundles build while the databases are made; the gateway, which has none, starts first.
  const databases = promisify(execFile)(process.execPath, [
    ...EMBEDDED_PGLITE_NODE_FLAGS,
    join(root, "packages/db/src/embedded-data-dirs.ts"),
    ...services.filter((s) => s.db).map((s) => join(dataRoot, s.name)),
  ]);
  databases.catch(() => {}); // awaited below, by the services that need it
  const bundles = bundleForLocalRun(services.map((s) => s.name));
  bundles.catch(() => {});
  await Promise.all(
    services.map(async (s) => {
      const { path } = (await bundles).get(s.name)!;
      if (s.db) await databases;
      if (!stopping) startService(s, path, held);
      await waitServing(s.name, healthPort(s));
    }),
  );
} catch (err) {
  console.error(String(err));
  await stopAll(1);
}

if (!stopping) {
  const app = "http://127.0.0.1:8080/dispatch.app.v1.AppService";
  const json = "-H 'content-type: application/json'";
  const internal = services
    .filter((s) => s.name !== "gateway")
    .map(
      (s) =>
        `  ${s.name.padEnd(14)} 127.0.0.1:${socketsOf(s).PORT}   gRPC (h2c); admin http://127.0.0.1:${socketsOf(s).ADMIN_PORT}`,
    )
    .join("\n");
  console.log(`
Dispatch is up (embedded PGlite under ${process.env.DATA_ROOT ?? ".data"}/). Ctrl-C stops everything.

  gateway        http://127.0.0.1:8080   the app's API: Connect (JSON, binary), gRPC-Web, gRPC
${internal}

Walk through the app (README.md explains each step):
  curl -s ${app}/SignUp ${json} -d '{"email":"ada@example.com","password":"correct horse battery"}'
  export TOKEN=...   # session.accessToken from that answer
  curl -s ${app}/ListRestaurants ${json} -d '{"pageSize":3}'
  curl -s ${app}/PlaceOrder ${json} -H "authorization: Bearer $TOKEN" -d '{"requestId":"demo-order-0001","restaurantId":"rst-001","items":[{"menuItemId":"rst-001-item-01","quantity":2}],"deliveryAddress":{"line1":"Torstrasse 1","city":"Berlin","countryCode":"DE"}}'
  curl -s ${app}/CreatePayment ${json} -H "authorization: Bearer $TOKEN" -d '{"idempotencyKey":"demo-pay-0001","orderId":"<order.id>"}'
  curl -s ${app}/ListActiveOrders ${json} -H "authorization: Bearer $TOKEN" -d '{}'

Internal services answer buf curl directly:
  pnpm exec buf curl --protocol grpc --http2-prior-knowledge --reflect --list-methods http://127.0.0.1:50053
`);
}
