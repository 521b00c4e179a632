import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { OrderStatus, OrdersService } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import type { Server } from "@dispatch/runtime";
import { createTestDatabase, statusOf, type TestDatabase, testClient } from "@dispatch/testing";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOrders } from "../src/main.ts";
import { startFakeCatalog } from "./fake-catalog.ts";

let db: TestDatabase;
let catalog: Awaited<ReturnType<typeof startFakeCatalog>>;
let server: Server;
let orders: ReturnType<typeof testClient<typeof OrdersService>>;

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
  orders = testClient(OrdersService, server.port);
});

afterAll(async () => {
  await server?.shutdown();
  await catalog?.server.shutdown();
  await db?.drop();
});

const address = { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" };

type PlaceOrderInit = {
  requestId: string;
  userId: string;
  restaurantId: string;
  items: { menuItemId: string; quantity: number }[];
  deliveryAddress: { line1: string; city: string; countryCode: string };
  note?: string;
};

function request(overrides: Partial<PlaceOrderInit> = {}): PlaceOrderInit {
  return {
    requestId: `req-${randomUUID()}`,
    userId: `user-${randomUUID()}`,
    restaurantId: "rst-1",
    items: [
      { menuItemId: "pizza-1", quantity: 2 },
      { menuItemId: "pizza-2", quantity: 1 },
    ],
    deliveryAddress: address,
    ...overrides,
  };
}

describe(`orders over gRPC (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("prices the order with the catalog and computes totals server-side", async () => {
    const { order } = await orders.placeOrder(request());
    expect(order?.status).toBe(OrderStatus.PENDING_PAYMENT);
    expect(order?.restaurantName).toBe("Forno Rosso");
    expect(
      order?.items.map((i) => [i.name, i.quantity, i.unitPrice?.amountMinor, i.lineTotal?.amountMinor]),
    ).toEqual([
      ["Margherita", 2, 950n, 1900n],
      ["Diavola", 1, 1150n, 1150n],
    ]);
    expect(order?.subtotal?.amountMinor).toBe(3050n);
    expect(order?.deliveryFee?.amountMinor).toBe(199n);
    expect(order?.total).toMatchObject({ currencyCode: "EUR", amountMinor: 3249n });
    expect(order?.statusHistory.map((h) => h.status)).toEqual([OrderStatus.PENDING_PAYMENT]);
  });

  it("returns the first order again when a request id is retried, even concurrently", async () => {
    const req = request();
    const first = await orders.placeOrder(req);
    const retries = await Promise.all(Array.from({ length: 8 }, () => orders.placeOrder(req)));
    for (const r of retries) expect(r.order?.id).toBe(first.order?.id);
    const active = await orders.listActiveOrders({ userId: req.userId });
    expect(active.orders.map((o) => o.id)).toEqual([first.order?.id]);

    const racing = request();
    const raced = await Promise.all(Array.from({ length: 8 }, () => orders.placeOrder(racing)));
    expect(new Set(raced.map((r) => r.order?.id)).size).toBe(1);
    expect((await orders.listActiveOrders({ userId: racing.userId })).orders).toHaveLength(1);

    // The menu changed since (the restaurant closed): a retry still gets its order, a new request is refused.
    catalog.setOpen(false);
    try {
      expect((await orders.placeOrder(req)).order?.id).toBe(first.order?.id);
      expect((await statusOf(orders.placeOrder({ ...req, requestId: `req-${randomUUID()}` }))).reason).toBe(
        "RESTAURANT_CLOSED",
      );
    } finally {
      catalog.setOpen(true);
    }
  });

  it("refuses a request id reused for a different order", async () => {
    const req = request();
    await orders.placeOrder(req);
    const s = await statusOf(orders.placeOrder({ ...req, items: [{ menuItemId: "pizza-1", quantity: 5 }] }));
    expect(s.code).toBe(Code.FailedPrecondition);
    expect(s.reason).toBe("REQUEST_ID_REUSED");
  });

  it("names every invalid field and writes nothing", async () => {
    const calls = catalog.calls();
    const s = await statusOf(
      orders.placeOrder(
        request({
          requestId: "short",
          items: [
            { menuItemId: "pizza-1", quantity: 0 },
            { menuItemId: "pizza-1", quantity: 1 },
          ],
          deliveryAddress: { line1: "x", city: "", countryCode: "Germany" },
        }),
      ),
    );
    expect(s.code).toBe(Code.InvalidArgument);
    expect(s.fieldViolations.map((v) => v.field).sort()).toEqual([
      "delivery_address.city",
      "delivery_address.country_code",
      "items[0].quantity",
      "items[1].menu_item_id",
      "request_id",
    ]);
    expect(catalog.calls()).toBe(calls);
  });

  it("maps catalog answers to clear statuses", async () => {
    const missing = await statusOf(
      orders.placeOrder(
        request({
          items: [
            { menuItemId: "pizza-1", quantity: 1 },
            { menuItemId: "ghost", quantity: 1 },
          ],
        }),
      ),
    );
    expect(missing.code).toBe(Code.InvalidArgument);
    expect(missing.reason).toBe("MENU_ITEM_NOT_FOUND");
    expect(missing.fieldViolations.map((v) => v.field)).toEqual(["items[1].menu_item_id"]);

    const soldOut = await statusOf(
      orders.placeOrder(request({ items: [{ menuItemId: "sold-out", quantity: 1 }] })),
    );
    expect(soldOut.code).toBe(Code.FailedPrecondition);
    expect(soldOut.reason).toBe("MENU_ITEM_UNAVAILABLE");

    const unknown = await statusOf(orders.placeOrder(request({ restaurantId: "rst-404" })));
    expect(unknown.code).toBe(Code.NotFound);
    expect(unknown.reason).toBe("RESTAURANT_NOT_FOUND");

    catalog.setOpen(false);
    try {
      const closed = await statusOf(orders.placeOrder(request()));
      expect(closed.code).toBe(Code.FailedPrecondition);
      expect(closed.reason).toBe("RESTAURANT_CLOSED");
    } finally {
      catalog.setOpen(true);
    }
  });

  it("lists a user's active orders newest first, with items and restaurant, and nobody else's", async () => {
    const userId = `user-${randomUUID()}`;
    const a = await orders.placeOrder(request({ userId }));
    const b = await orders.placeOrder(request({ userId, items: [{ menuItemId: "pizza-2", quantity: 3 }] }));
    await orders.placeOrder(request());
    const delivered = await orders.placeOrder(request({ userId }));
    for (const status of [
      OrderStatus.PLACED,
      OrderStatus.ACCEPTED,
      OrderStatus.PREPARING,
      OrderStatus.READY_FOR_PICKUP,
      OrderStatus.OUT_FOR_DELIVERY,
      OrderStatus.DELIVERED,
    ]) {
      await orders.updateOrderStatus({ orderId: delivered.order!.id, status });
    }
    const active = await orders.listActiveOrders({ userId });
    expect(active.orders.map((o) => o.id)).toEqual([b.order!.id, a.order!.id]);
    expect(active.orders[0]?.items.map((i) => [i.menuItemId, i.quantity])).toEqual([["pizza-2", 3]]);
    expect(active.orders[1]?.items).toHaveLength(2);
    expect(active.orders[0]?.restaurantName).toBe("Forno Rosso");
  });

  it("answers every field of an order, in every reply that carries one", async () => {
    const userId = `user-${randomUUID()}`;
    const full = {
      line1: "Torstrasse 1",
      line2: "Hinterhaus, 3. OG",
      city: "Berlin",
      postalCode: "10119",
      countryCode: "DE",
      location: { latitude: 52.5291, longitude: 13.4016 },
    };
    const before = BigInt(Math.floor(Date.now() / 1000));
    const { order: placed } = await orders.placeOrder({
      ...request({ userId }),
      deliveryAddress: full,
      note: "ring twice",
    });
    const { order: got } = await orders.getOrder({ orderId: placed!.id });
    const { orders: listed } = await orders.listActiveOrders({ userId });
    const { order: moved } = await orders.updateOrderStatus({
      orderId: placed!.id,
      status: OrderStatus.CANCELLED,
      reason: "changed my mind",
    });
    for (const o of [placed, got, listed[0], moved]) {
      expect(o).toMatchObject({
        id: placed!.id,
        userId,
        restaurantId: "rst-1",
        restaurantName: "Forno Rosso",
        note: "ring twice",
        deliveryAddress: full,
        subtotal: { currencyCode: "EUR", amountMinor: 3050n },
        deliveryFee: { currencyCode: "EUR", amountMinor: 199n },
        total: { currencyCode: "EUR", amountMinor: 3249n },
      });
      expect(o?.items.map((i) => [i.menuItemId, i.name, i.quantity, i.unitPrice, i.lineTotal])).toEqual([
        [
          "pizza-1",
          "Margherita",
          2,
          expect.objectContaining({ currencyCode: "EUR", amountMinor: 950n }),
          expect.objectContaining({ currencyCode: "EUR", amountMinor: 1900n }),
        ],
        [
          "pizza-2",
          "Diavola",
          1,
          expect.objectContaining({ currencyCode: "EUR", amountMinor: 1150n }),
          expect.objectContaining({ currencyCode: "EUR", amountMinor: 1150n }),
        ],
      ]);
      expect(o?.createTime?.seconds).toBeGreaterThanOrEqual(before);
      expect(o?.updateTime?.seconds).toBeGreaterThanOrEqual(o!.createTime!.seconds);
    }
    expect(placed?.createTime).toEqual(got?.createTime);
    expect(listed[0]?.createTime).toEqual(got?.createTime);
    expect(moved?.status).toBe(OrderStatus.CANCELLED);
    expect(
      moved?.statusHistory.map((h) => [h.status, h.reason, h.changeTime?.seconds === undefined]),
    ).toEqual([
      [OrderStatus.PENDING_PAYMENT, "", false],
      [OrderStatus.CANCELLED, "changed my mind", false],
    ]);
  });

  it("allows only the defined status transitions and records history", async () => {
    const { order } = await orders.placeOrder(request());
    const id = order!.id;
    const bad = await statusOf(orders.updateOrderStatus({ orderId: id, status: OrderStatus.DELIVERED }));
    expect(bad.code).toBe(Code.FailedPrecondition);
    expect(bad.reason).toBe("INVALID_STATUS_TRANSITION");

    await orders.updateOrderStatus({ orderId: id, status: OrderStatus.PLACED, reason: "paid" });
    const again = await orders.updateOrderStatus({ orderId: id, status: OrderStatus.PLACED, reason: "paid" });
    expect(again.order?.statusHistory.map((h) => h.status)).toEqual([
      OrderStatus.PENDING_PAYMENT,
      OrderStatus.PLACED,
    ]);

    const cancelled = await orders.updateOrderStatus({
      orderId: id,
      status: OrderStatus.CANCELLED,
      reason: "changed mind",
    });
    expect(cancelled.order?.status).toBe(OrderStatus.CANCELLED);
    const fetched = await orders.getOrder({ orderId: id });
    expect(fetched.order?.statusHistory.map((h) => [h.status, h.reason])).toEqual([
      [OrderStatus.PENDING_PAYMENT, ""],
      [OrderStatus.PLACED, "paid"],
      [OrderStatus.CANCELLED, "changed mind"],
    ]);

    const unspecified = await statusOf(orders.updateOrderStatus({ orderId: id }));
    expect(unspecified.code).toBe(Code.InvalidArgument);
    expect(unspecified.fieldViolations.map((v) => v.field)).toEqual(["status"]);
    const missing = await statusOf(orders.getOrder({ orderId: randomUUID() }));
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.reason).toBe("ORDER_NOT_FOUND");
    const malformed = await statusOf(orders.getOrder({ orderId: "not-a-uuid" }));
    expect(malformed.code).toBe(Code.InvalidArgument);
    expect(malformed.fieldViolations.map((v) => v.field)).toEqual(["order_id"]);
  });

  it.runIf(process.env.TEST_DATABASE_URL)(
    "writes each change and its outbox event in one transaction",
    async () => {
      const { order } = await orders.placeOrder(request());
      await orders.updateOrderStatus({ orderId: order!.id, status: OrderStatus.PLACED });
      const sql = postgres(db.url!, { max: 1 });
      try {
        const rows = await sql`select event_type from outbox where subject = ${order!.id} order by seq`;
        expect(rows.map((r) => r.event_type)).toEqual(["orderPlaced", "orderStatusChanged"]);
      } finally {
        await sql.end();
      }
    },
  );

  it("marks an order paid exactly once when a payment event arrives, however often it is delivered", async () => {
    const { order } = await orders.placeOrder(request());
    const subscriber = testClient(EventSubscriberService, server.port);
    const event = {
      id: randomUUID(),
      source: "payments",
      subject: "pay-1",
      payload: {
        case: "paymentSucceeded" as const,
        value: { paymentId: "pay-1", orderId: order!.id, userId: order!.userId, amount: order!.total },
      },
    };
    const answers = await Promise.all(Array.from({ length: 10 }, () => subscriber.handleEvent({ event })));
    expect(answers.filter((a) => !a.duplicate)).toHaveLength(1);
    const paid = await orders.getOrder({ orderId: order!.id });
    expect(paid.order?.status).toBe(OrderStatus.PLACED);
    expect(paid.order?.statusHistory.map((h) => [h.status, h.reason])).toEqual([
      [OrderStatus.PENDING_PAYMENT, ""],
      [OrderStatus.PLACED, "paid (payment pay-1)"],
    ]);
    // A second payment event for an order already placed changes nothing either.
    await subscriber.handleEvent({ event: { ...event, id: randomUUID() } });
    expect((await orders.getOrder({ orderId: order!.id })).order?.statusHistory).toHaveLength(2);
  });

  // Last: it takes the catalog down.
  it("answers UNAVAILABLE naming catalog when it is down, and stores nothing; a retry still gets its order", async () => {
    const placed = request();
    const { order } = await orders.placeOrder(placed);
    await catalog.server.shutdown();
    const req = request();
    const s = await statusOf(orders.placeOrder(req));
    expect(s.code).toBe(Code.Unavailable);
    expect((await orders.listActiveOrders({ userId: req.userId })).orders).toEqual([]);
    expect((await orders.placeOrder(placed)).order?.id).toBe(order?.id);
  });
});
