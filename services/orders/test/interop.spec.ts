import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Server } from "@dispatch/runtime";
import {
  createTestDatabase,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
} from "@dispatch/testing";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOrders } from "../src/main.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const run = promisify(execFile);

let catalogDb: TestDatabase;
let ordersDb: TestDatabase;
let catalog: ServiceProcess;
let orders: Server;

beforeAll(async () => {
  [catalogDb, ordersDb] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  catalog = await startServiceProcess("catalog", { DATABASE_URL: catalogDb.url });
  orders = await startOrders({
    PORT: "0",
    ADMIN_PORT: "0",
    DATA_DIR: "memory://",
    LOG_LEVEL: "warn",
    CATALOG_URL: `127.0.0.1:${catalog.port}`,
    ...(ordersDb.url ? { DATABASE_URL: ordersDb.url } : {}),
  });
}, 120_000);

afterAll(async () => {
  await orders?.shutdown();
  await catalog?.stop();
  await catalogDb?.drop();
  await ordersDb?.drop();
});

// Calls shaped like grpc-js's callback API, promisified.
type Unary = (
  req: unknown,
  cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void,
) => void;
const call = (client: grpc.Client, method: string, req: unknown) =>
  new Promise<Record<string, unknown>>((resolve, reject) =>
    (client as unknown as Record<string, Unary>)[method]!.call(client, req, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );

describe("interop with other gRPC stacks, orders -> real catalog process", () => {
  it("a @grpc/grpc-js client built by @grpc/proto-loader from the .proto files places and reads an order", async () => {
    const def = protoLoader.loadSync("dispatch/orders/v1/orders.proto", {
      includeDirs: [`${root}/proto`],
      longs: String,
      enums: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      dispatch: { orders: { v1: { OrdersService: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.dispatch.orders.v1.OrdersService(
      `127.0.0.1:${orders.port}`,
      grpc.credentials.createInsecure(),
    );
    try {
      const userId = `user-${randomUUID()}`;
      const placed = await call(client, "PlaceOrder", {
        requestId: `interop-${randomUUID()}`,
        userId,
        restaurantId: "rst-001",
        items: [{ menuItemId: "rst-001-item-01", quantity: 2 }],
        deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" },
      });
      const order = placed.order as Record<string, unknown>;
      expect(order.status).toBe("ORDER_STATUS_PENDING_PAYMENT");
      expect(order.restaurantName).toBeTruthy();
      // Margherita at the seeded restaurant rst-001: price from the catalog, totals from orders.
      const items = order.items as {
        quantity: number;
        unitPrice: { amountMinor: string };
        lineTotal: { amountMinor: string };
      }[];
      expect(items[0]?.quantity).toBe(2);
      expect(BigInt(items[0]!.lineTotal.amountMinor)).toBe(2n * BigInt(items[0]!.unitPrice.amountMinor));

      const read = await call(client, "GetOrder", { orderId: order.id });
      expect((read.order as Record<string, unknown>).id).toBe(order.id);
      const active = await call(client, "ListActiveOrders", { userId });
      expect((active.orders as unknown[]).length).toBe(1);

      const bad = await call(client, "GetOrder", { orderId: "nope" }).catch((e: grpc.ServiceError) => e);
      expect((bad as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      client.close();
    }
  });

  it("buf curl --reflect lists the services and calls a method without the .proto files", async () => {
    const buf = `${root}/node_modules/.bin/buf`;
    const base = `http://127.0.0.1:${orders.port}`;
    const flags = ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect"];
    const listed = await run(buf, [...flags, "--list-methods", base], { cwd: "/tmp" });
    expect(listed.stdout).toContain("dispatch.orders.v1.OrdersService/PlaceOrder");
    expect(listed.stdout).toContain("dispatch.orders.v1.OrdersService/ListActiveOrders");
    expect(listed.stdout).toContain("grpc.health.v1.Health/Check");

    const userId = `user-${randomUUID()}`;
    const placed = await run(
      buf,
      [
        ...flags,
        "-d",
        JSON.stringify({
          requestId: `bufcurl-${randomUUID()}`,
          userId,
          restaurantId: "rst-002",
          items: [{ menuItemId: "rst-002-item-03", quantity: 1 }],
          deliveryAddress: { line1: "Kantstrasse 5", city: "Berlin", countryCode: "DE" },
        }),
        `${base}/dispatch.orders.v1.OrdersService/PlaceOrder`,
      ],
      { cwd: "/tmp" },
    );
    const body = JSON.parse(placed.stdout) as { order: { status: string; userId: string } };
    expect(body.order.status).toBe("ORDER_STATUS_PENDING_PAYMENT");
    expect(body.order.userId).toBe(userId);
  });
});
