import { randomUUID } from "node:crypto";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTracing, stopTracing } from "../packages/runtime/src/index.ts";
import { createTestDatabase, freePort, type TestDatabase } from "../packages/testing/src/index.ts";
import { startCatalog } from "../services/catalog/src/main.ts";
import { startGateway } from "../services/gateway/src/main.ts";
import { startIdentity } from "../services/identity/src/main.ts";
import { startOrders } from "../services/orders/src/main.ts";

/**
 * One PlaceOrder through the gateway, traced with an in-memory exporter: the platform-level test that
 * needs several services in one process (services themselves never import each other).
 */
const exporter = new InMemorySpanExporter();
const dbs: TestDatabase[] = [];
const stops: (() => Promise<void>)[] = [];
let url: string;

beforeAll(async () => {
  startTracing({ service: "dispatch-test", exporter, immediate: true, ratio: 1 });
  const [idDb, catDb, ordDb] = await Promise.all([1, 2, 3].map(() => createTestDatabase()));
  dbs.push(idDb!, catDb!, ordDb!);
  const base = { ADMIN_PORT: "0", DATA_DIR: "memory://", LOG_LEVEL: "warn" };
  const db = (d: TestDatabase) => (d.url ? { DATABASE_URL: d.url } : {});
  const identity = await startIdentity({ ...base, PORT: "0", ...db(idDb!) });
  const catalog = await startCatalog({ ...base, PORT: "0", ...db(catDb!) });
  const gwInternal = await freePort();
  const orders = await startOrders({
    ...base,
    PORT: "0",
    ...db(ordDb!),
    CATALOG_URL: `127.0.0.1:${catalog.port}`,
    EVENT_SUBSCRIBERS: `gateway=127.0.0.1:${gwInternal}`,
  });
  const gateway = await startGateway({
    ...base,
    PORT: "0",
    INTERNAL_PORT: String(gwInternal),
    IDENTITY_URL: `127.0.0.1:${identity.port}`,
    CATALOG_URL: `127.0.0.1:${catalog.port}`,
    ORDERS_URL: `127.0.0.1:${orders.port}`,
    PAYMENTS_URL: `127.0.0.1:${await freePort()}`,
  });
  url = `http://127.0.0.1:${gateway.port}/dispatch.app.v1.AppService`;
  stops.push(gateway.shutdown, orders.shutdown, catalog.shutdown, identity.shutdown);
}, 120_000);

afterAll(async () => {
  for (const stop of stops) await stop();
  await stopTracing();
  for (const d of dbs) await d.drop();
});

async function app(method: string, body: unknown, token?: string) {
  const res = await fetch(`${url}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe(`tracing (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("follows one PlaceOrder from the gateway through orders and catalog into SQL and the outbox, in one trace", async () => {
    const up = await app("SignUp", {
      email: `trace-${randomUUID()}@example.com`,
      password: "a long enough password",
      displayName: "Trace",
    });
    const token = (up.session as { accessToken: string }).accessToken;
    const restaurants = (await app("ListRestaurants", { pageSize: 5 })).restaurants as {
      id: string;
      open: boolean;
    }[];
    const restaurant = restaurants.find((r) => r.open)!;
    const items = (await app("GetMenu", { restaurantId: restaurant.id })).items as {
      id: string;
      available: boolean;
    }[];
    exporter.reset();

    await app(
      "PlaceOrder",
      {
        requestId: `req-${randomUUID()}`,
        restaurantId: restaurant.id,
        items: [{ menuItemId: items.find((i) => i.available)!.id, quantity: 1 }],
        deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" },
      },
      token,
    );

    const byName = (spans: ReadableSpan[], name: string, kind: number) =>
      spans.filter((s) => s.name === name && s.kind === kind);
    const SERVER = 1;
    const CLIENT = 2;
    // Wait for the outbox relay's delivery of OrderPlaced to the gateway (the trace's last hop): the
    // HandleEvent and the relay's "outbox deliver" span, both in this order's trace (the sign-up's events
    // may be delivered first, in their own). The deliver span ends after the HandleEvent: only once the
    // relay has the reply.
    let spans: ReadableSpan[] = [];
    for (let i = 0; i < 200; i++) {
      spans = exporter.getFinishedSpans();
      const traceIds = new Set(
        byName(spans, "dispatch.app.v1.AppService/PlaceOrder", SERVER).map((s) => s.spanContext().traceId),
      );
      const inTrace = (s: ReadableSpan) => traceIds.has(s.spanContext().traceId);
      const handled = byName(spans, "dispatch.events.v1.EventSubscriberService/HandleEvent", SERVER);
      if (handled.some(inTrace) && spans.some((s) => s.name === "outbox deliver" && inTrace(s))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [edge] = byName(spans, "dispatch.app.v1.AppService/PlaceOrder", SERVER);
    expect(edge, spans.map((s) => s.name).join(", ")).toBeDefined();
    const traceId = edge!.spanContext().traceId;
    const trace = spans.filter((s) => s.spanContext().traceId === traceId);
    const parentOf = (s: ReadableSpan) =>
      trace.find((p) => p.spanContext().spanId === s.parentSpanContext?.spanId);
    const one = (name: string, kind: number) => {
      const found = byName(trace, name, kind);
      expect(found, `${name} (kind ${kind}) in the trace`).toHaveLength(1);
      return found[0]!;
    };

    const toOrders = one("dispatch.orders.v1.OrdersService/PlaceOrder", CLIENT);
    const orders = one("dispatch.orders.v1.OrdersService/PlaceOrder", SERVER);
    const toCatalog = one("dispatch.catalog.v1.CatalogService/BatchGetMenuItems", CLIENT);
    const catalog = one("dispatch.catalog.v1.CatalogService/BatchGetMenuItems", SERVER);
    expect(parentOf(toOrders)).toBe(edge);
    expect(parentOf(orders)).toBe(toOrders);
    expect(parentOf(toCatalog)).toBe(orders);
    expect(parentOf(catalog)).toBe(toCatalog);
    expect(orders.attributes["rpc.grpc.status_code"]).toBe(0);
    // One request id on every hop: the edge's, passed on by the client.
    expect(orders.attributes["dispatch.request_id"]).toBe(edge!.attributes["dispatch.request_id"]);
    expect(catalog.attributes["dispatch.request_id"]).toBe(edge!.attributes["dispatch.request_id"]);

    // The event the order wrote carries the trace: its delivery and the consumer's handling join it.
    const deliver = trace.find((s) => s.name === "outbox deliver");
    expect(deliver, "the outbox delivery is in the request's trace").toBeDefined();
    const handled = one("dispatch.events.v1.EventSubscriberService/HandleEvent", SERVER);
    expect(parentOf(parentOf(handled)!)).toBe(deliver);

    if (process.env.TEST_DATABASE_URL) {
      const sql = trace.filter((s) => s.attributes["db.system.name"] === "postgresql");
      const under = (p: ReadableSpan) => sql.filter((s) => parentOf(s) === p).map((s) => s.name);
      expect(under(catalog)).toContain("SELECT");
      expect(under(orders)).toContain("INSERT");
      expect(sql.every((s) => !JSON.stringify(s.attributes).includes("Torstrasse"))).toBe(true);
    }
  });
});
