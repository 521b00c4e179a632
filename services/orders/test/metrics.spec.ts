import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createClient } from "@dispatch/client";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { OrdersService } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import type { Server } from "@dispatch/runtime";
import { createTestDatabase, freePort, statusOf, type TestDatabase, testClient } from "@dispatch/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOrders } from "../src/main.ts";
import { startFakeCatalog } from "./fake-catalog.ts";

/** Prometheus' text format: the value of one series, by name and exact labels (undefined when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (.+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries(
      [...(m[1] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return undefined;
}

let db: TestDatabase;
let catalog: Awaited<ReturnType<typeof startFakeCatalog>>;
let server: Server;

beforeAll(async () => {
  db = await createTestDatabase();
  catalog = await startFakeCatalog();
  server = await startOrders({
    PORT: "0",
    ADMIN_PORT: "0",
    DATA_DIR: "memory://",
    LOG_LEVEL: "warn",
    CATALOG_URL: `127.0.0.1:${catalog.server.port}`,
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
});

afterAll(async () => {
  await server?.shutdown();
  await catalog?.server.shutdown();
  await db?.drop();
});

const scrape = async () => {
  const res = await fetch(`http://127.0.0.1:${server.adminPort}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
};

describe("/metrics on the admin port", () => {
  it("counts RPCs by service, method and code on both ends of a hop, with latency, in flight, DB and outbox", async () => {
    const before = await scrape();
    const orders = testClient(OrdersService, server.port);
    const userId = `user-${randomUUID()}`;
    for (let i = 0; i < 3; i++) {
      await orders.placeOrder({
        requestId: `req-${randomUUID()}`,
        userId,
        restaurantId: "rst-1",
        items: [{ menuItemId: "pizza-1", quantity: 1 }],
        deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" },
      });
    }
    expect((await statusOf(orders.getOrder({ orderId: randomUUID() }))).code).toBe(Code.NotFound);
    const text = await scrape();

    const rpc = (service: string, method: string) => ({
      grpc_type: "unary",
      grpc_service: service,
      grpc_method: method,
    });
    const place = rpc("dispatch.orders.v1.OrdersService", "PlaceOrder");
    const delta = (name: string, labels: Record<string, string>) =>
      (sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    expect(delta("grpc_server_started_total", place)).toBe(3);
    expect(delta("grpc_server_handled_total", { ...place, grpc_code: "OK" })).toBe(3);
    expect(delta("grpc_server_handling_seconds_count", place)).toBe(3);
    expect(
      sample(text, "grpc_server_handling_seconds_bucket", { ...place, le: "+Inf" }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      delta("grpc_server_handled_total", {
        ...rpc("dispatch.orders.v1.OrdersService", "GetOrder"),
        grpc_code: "NotFound",
      }),
    ).toBe(1);
    // orders -> catalog, counted by orders' client.
    const batch = rpc("dispatch.catalog.v1.CatalogService", "BatchGetMenuItems");
    expect(delta("grpc_client_handled_total", { ...batch, grpc_code: "OK" })).toBe(3);
    expect(delta("grpc_client_handling_seconds_count", batch)).toBe(3);
    expect(sample(text, "dispatch_grpc_server_in_flight")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "dispatch_outbox_backlog")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "dispatch_outbox_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(0);
    if (db.kind === "postgres") {
      expect(
        delta("dispatch_db_query_seconds_count", { operation: "insert", outcome: "ok" }),
      ).toBeGreaterThanOrEqual(3);
      // Back to 0 once idle: the outbox relay's round (or the scrape's own backlog query) may be in flight
      // at any one scrape on a busy machine, but nothing stays counted.
      let inFlight = sample(text, "dispatch_db_queries_in_flight");
      for (let i = 0; i < 20 && inFlight !== 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        inFlight = sample(await scrape(), "dispatch_db_queries_in_flight");
      }
      expect(inFlight).toBe(0);
      expect(sample(text, "dispatch_db_pool_size")).toBeGreaterThan(0);
    }
  });

  it("shows breaker transitions and state, transparent retries and a spent retry budget", async () => {
    const dead = await freePort();
    const client = createClient(CatalogService, {
      target: `127.0.0.1:${dead},127.0.0.1:${catalog.server.port}`,
      name: "metrics-test-catalog",
      breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 },
      retryBudget: { maxTokens: 2, tokenRatio: 0.1 },
    });
    for (let i = 0; i < 6; i++) await client.getMenu({ restaurantId: "rst-1" }).catch(() => {});
    const deadOnly = createClient(CatalogService, {
      target: `127.0.0.1:${dead}`,
      name: "metrics-test-dead",
      breaker: { volumeThreshold: 1_000_000 },
      retryBudget: { maxTokens: 2, tokenRatio: 0.1 },
    });
    for (let i = 0; i < 6; i++) {
      const err = await deadOnly.getMenu({ restaurantId: "rst-1" }).then(() => undefined, ConnectError.from);
      expect(err?.code).toBe(Code.Unavailable);
    }
    const text = await scrape();
    expect(
      sample(text, "dispatch_client_retries_total", {
        target: "metrics-test-catalog",
        grpc_method: "GetMenu",
        kind: "transparent",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, "dispatch_client_breaker_transitions_total", {
        target: "metrics-test-catalog",
        state: "open",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, "dispatch_client_breaker_state", {
        target: "metrics-test-catalog",
        endpoint: `http://127.0.0.1:${dead}`,
        grpc_method: "dispatch.catalog.v1.CatalogService/GetMenu",
      }),
    ).toBe(2);
    expect(
      sample(text, "dispatch_client_retry_budget_exhausted_total", { target: "metrics-test-dead" }),
    ).toBeGreaterThanOrEqual(1);
  });
});
