import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@dispatch/gen/grpc/health/v1/health_pb.ts";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
/** Stops a service once the test process that started it is gone (exit-with-parent.ts). */
const exitWithParent = new URL("./exit-with-parent.ts", import.meta.url).href;

/**
 * Ports this process has handed out. None is bound until the test's server starts, so a test that asks for
 * several at once (a container's public, internal and admin ports) could be handed one twice: the
 * gateway's image test lost a CI run to it (EADDRINUSE on its second listener).
 */
const handedOut = new Set<number>();

/**
 * A port nothing listens on, for a server a test starts. Taken below Linux's ephemeral range (32768+):
 * a port the kernel handed out for `listen(0)` and that was closed again can be handed to any outgoing
 * connection (PostgreSQL, a gRPC client) before the service binds it, and CI once lost a run to that
 * (notifications: EADDRINUSE). Random, so parallel test files rarely pick the same one; a service that
 * still finds it taken is started again on another (startServiceProcess).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!handedOut.has(port) && (await canListen(port))) return handOut(port);
  }
  for (;;) {
    const srv = createServer();
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const { port } = srv.address() as { port: number };
    srv.close();
    await once(srv, "close");
    if (!handedOut.has(port)) return handOut(port);
  }
}

function handOut(port: number): number {
  handedOut.add(port);
  return port;
}

async function canListen(port: number): Promise<boolean> {
  const srv = createServer();
  srv.listen(port, "0.0.0.0");
  try {
    await once(srv, "listening");
  } catch {
    return false;
  }
  srv.close();
  await once(srv, "close");
  return true;
}

export interface ServiceProcess {
  port: number;
  child: ChildProcess;
  /** Everything the process wrote, for assertions and for debugging failed tests. */
  output(): string;
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs a service's main.ts as its own process (as `pnpm start` and the images do) and resolves once it
 * reports SERVING on grpc.health.v1. Tests of one service use it to run another without importing it.
 */
export async function startServiceProcess(
  service: string,
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(service, env, timeoutMs);
    } catch (err) {
      // The port freePort() found was taken before the service bound it: again, on another.
      if (env.PORT || attempt >= 3 || !String((err as Error).message).includes("EADDRINUSE")) throw err;
    }
  }
}

async function startOnce(
  service: string,
  env: Record<string, string | undefined>,
  timeoutMs: number,
): Promise<ServiceProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--import", exitWithParent, `services/${service}/src/main.ts`],
    {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PORT: String(port),
        ADMIN_PORT: "0",
        LOG_LEVEL: "warn",
        DATA_DIR: "memory://",
        ...env,
      },
    },
  );
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${service} exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await health.check({ service: "" }, { timeoutMs: 1000 });
      if (res.status === HealthCheckResponse_ServingStatus.SERVING) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      child.kill("SIGKILL");
      throw new Error(`${service} was not SERVING within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    port,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
