import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { services } from "@dispatch/build/src/dockerfile.ts";
import { nodeFlagsFor } from "@dispatch/build/src/node-flags.ts";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { NotificationsService } from "@dispatch/gen/dispatch/notifications/v1/notifications_pb.ts";
import { OrdersService } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { PaymentsService } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { createTestDatabase, freePort, type TestDatabase } from "@dispatch/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildah, containerProcess, inspectImage, runContainer, runIn } from "./buildah.ts";

/**
 * Builds every service's image from its own Dockerfile with buildah (no Docker engine here), on bases
 * assembled from this machine's Node 24 (no registry reachable), then runs each image as a container
 * with its own entrypoint and user, and checks it reaches SERVING, passes its HEALTHCHECK command and
 * answers a call. The gateway runs last, wired to the other five containers.
 */
process.env.TEST_DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const exec = promisify(execFile);
const LAYER_LIMIT = 5 * 1024 * 1024;

interface Running {
  service: string;
  ports: Record<string, number>;
  container: string;
  stop(): Promise<{ code: number | null; output: string }>;
}
const running: Running[] = [];
const databases: TestDatabase[] = [];
const figures: Record<string, unknown>[] = [];

beforeAll(async () => {
  await exec("bash", [join(repo, "deploy/images/local-bases.sh"), process.execPath]).catch(
    (e: { message: string; stderr?: string }) => {
      throw new Error(`${e.message}\n${e.stderr ?? ""}`);
    },
  );
});

afterAll(async () => {
  for (const r of running.reverse()) await r.stop().catch(() => {});
  for (const d of databases) await d.drop().catch(() => {});
  // Keep the local bases (they make the next run fast); the service images are rebuilt every run.
  for (const s of services) await buildah(["rmi", `dispatch/${s.service}:test`]).catch(() => {});
  await buildah(["rmi", "--prune"]).catch(() => {});
  mkdirSync(join(repo, "deploy/images/.results"), { recursive: true });
  writeFileSync(join(repo, "deploy/images/.results/images.json"), `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`[images] ${JSON.stringify(figures)}`);
});

async function waitServing(port: number, ms: number): Promise<number> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    try {
      const r = await health.check({}, { timeoutMs: 500 });
      if (r.status === HealthCheckResponse_ServingStatus.SERVING) return performance.now() - t0;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not SERVING on ${port} within ${ms} ms`);
}

function client<S extends DescService>(service: S, port: number) {
  return createClient(service, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
}

/** One real call per service, through its public contract. */
const calls: Record<string, (port: number) => Promise<unknown>> = {
  identity: async (port) => {
    const { keys } = await client(IdentityService, port).getJwks({});
    expect(keys.length).toBeGreaterThan(0);
  },
  catalog: async (port) => {
    const { restaurants } = await client(CatalogService, port).listRestaurants({ pageSize: 5 });
    expect(Array.isArray(restaurants)).toBe(true);
  },
  orders: async (port) => {
    const { orders } = await client(OrdersService, port).listActiveOrders({ userId: "image-test-user" });
    expect(orders).toEqual([]);
  },
  payments: async (port) => {
    const err = await client(PaymentsService, port)
      .getPayment({ paymentId: "00000000-0000-4000-8000-000000000000" })
      .then(() => undefined, ConnectError.from);
    expect(err?.code).toBe(Code.NotFound);
  },
  notifications: async (port) => {
    const { notifications } = await client(NotificationsService, port).listNotifications({
      userId: "image-test-user",
    });
    expect(notifications).toEqual([]);
  },
};

describe.each(services)("image of $service", (spec) => {
  const image = `dispatch/${spec.service}:test`;

  it("builds from its Dockerfile: a thin layer on a slim base, non-root, health-checked", async () => {
    const t0 = performance.now();
    await buildah(
      [
        "bud",
        "--isolation",
        "chroot",
        "--format",
        "docker",
        "--layers=false",
        "--build-arg",
        "BUILD_BASE=dispatch-local/node-build:24",
        "--build-arg",
        "RUNTIME_BASE=dispatch-local/node-runtime:24",
        "-f",
        `services/${spec.service}/Dockerfile`,
        "-t",
        image,
        ".",
      ],
      repo,
    );
    const buildMs = performance.now() - t0;
    const config = await inspectImage(image);
    const base = await inspectImage("dispatch-local/node-runtime:24");
    const added = config.layers.slice(base.layers.length).reduce((a, b) => a + b, 0);
    expect(config.layers.slice(0, base.layers.length)).toEqual(base.layers);
    expect(added).toBeLessThanOrEqual(LAYER_LIMIT);
    expect(config.user).toBe("65532:65532");
    expect(config.entrypoint).toEqual(["node", ...nodeFlagsFor(spec.service), "/app/dist/main.mjs"]);
    expect(config.healthcheck).toEqual(["CMD", "node", "/app/dist/health-probe.mjs"]);
    expect(config.exposed.sort()).toEqual(spec.ports.map((p) => `${p}/tcp`).sort());
    expect(config.env.NODE_ENV).toBe("production");

    // Only what the service runs: the bundle, the probe and its migrations; no node_modules, no npm.
    const ctr = await buildah(["from", image]);
    try {
      const root = await buildah(["mount", ctr]);
      const { stdout } = await exec("find", [join(root, "app"), "-type", "f"]);
      const files = stdout
        .trim()
        .split("\n")
        .map((f) => f.slice(root.length));
      expect(
        files.filter((f) => !/^\/app\/(dist\/(main|health-probe)\.mjs|migrations\/.+)$/.test(f)),
      ).toEqual([]);
      const { stdout: managers } = await exec("find", [
        root,
        "-name",
        "node_modules",
        "-o",
        "-name",
        "npm*",
        "-o",
        "-name",
        "pnpm*",
      ]);
      expect(managers.trim()).toBe("");
    } finally {
      await buildah(["rm", ctr]);
    }
    figures.push({ service: spec.service, addedLayerBytes: added, buildMs: Math.round(buildMs) });
  });

  it("runs as a container: SERVING, its HEALTHCHECK passes, answers a call, drains on SIGTERM", async () => {
    const config = await inspectImage(image);
    const ports: Record<string, number> = {};
    const env: Record<string, string> = { LOG_LEVEL: "info" };
    for (const name of ["PORT", "ADMIN_PORT", "INTERNAL_PORT"]) {
      if (config.env[name]) {
        ports[name] = await freePort();
        env[name] = String(ports[name]);
      }
    }
    if (spec.service !== "gateway") {
      const db = await createTestDatabase(`dispatch_img_${spec.service}`);
      databases.push(db);
      env.DATABASE_URL = db.url!;
    }
    const url = (svc: string) => {
      const r = running.find((x) => x.service === svc);
      return r ? `127.0.0.1:${r.ports.PORT}` : "127.0.0.1:1";
    };
    for (const svc of ["identity", "catalog", "orders", "payments"])
      env[`${svc.toUpperCase()}_URL`] = url(svc);
    if (spec.service === "identity") delete env.IDENTITY_URL;

    const container = await buildah(["from", image]);
    if (env.DATABASE_URL) {
      // What the Kubernetes migration Job runs; the service then starts with MIGRATIONS=wait.
      const stdout = await runIn(container, { DATABASE_URL: env.DATABASE_URL }, [
        ...config.entrypoint,
        "migrate",
      ]);
      expect(stdout).toContain(`${spec.service}: migrations applied`);
      env.MIGRATIONS = "wait";
    }
    const started = performance.now();
    const proc = runContainer(container, config.entrypoint, env);
    const grpcPort = ports.INTERNAL_PORT ?? ports.PORT!;
    const stop = async () => {
      const pid = containerProcess(proc.child, "/app/dist/main.mjs");
      if (pid) process.kill(pid, "SIGTERM");
      const code = await Promise.race([
        proc.exited,
        new Promise<null>((r) => setTimeout(() => r(null), 15_000)),
      ]);
      if (code === null) proc.child.kill("SIGKILL");
      await buildah(["rm", container]).catch(() => {});
      return { code, output: proc.output() };
    };
    try {
      const servingMs = await waitServing(grpcPort, 30_000);
      const startMs = performance.now() - started;

      // The image's own HEALTHCHECK command, run inside the container as Docker would.
      const probe = await runIn(container, env, config.healthcheck!.slice(1)).then(
        () => 0,
        (e: { code?: number }) => e.code ?? 1,
      );
      expect(probe).toBe(0);

      if (spec.service === "gateway") {
        // The public edge, over Connect JSON on HTTP/1.1, reaching catalog's container behind it.
        const res = await fetch(`http://127.0.0.1:${ports.PORT}/dispatch.app.v1.AppService/ListRestaurants`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        const body = await res.text();
        expect(res.status, body).toBe(200);
        expect(JSON.parse(body)).toHaveProperty("restaurants");
      } else {
        await calls[spec.service]!(grpcPort);
      }
      figures.push({
        service: spec.service,
        startToServingMs: Math.round(startMs),
        pollMs: Math.round(servingMs),
      });
    } catch (err) {
      const { output } = await stop();
      throw new Error(`${(err as Error).message}\n--- container output ---\n${output}`);
    }
    running.push({ service: spec.service, ports, container, stop });
    if (spec.service === "gateway") {
      // Stop them all, newest first: each must drain and exit 0 on SIGTERM, as under docker stop.
      for (const r of running.splice(0).reverse()) {
        const { code, output } = await r.stop();
        expect(code, `${r.service}:\n${output}`).toBe(0);
        expect(output).toContain('"msg":"stopped"');
      }
    }
  });
});
