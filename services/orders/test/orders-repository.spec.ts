import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type Database, openDatabase, rowsOf } from "@dispatch/db";
import { createTestDatabase, type TestDatabase } from "@dispatch/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Order } from "../src/domain/order.ts";
import type { NewOrder, OrdersRepository, PriceBook } from "../src/domain/ports.ts";
import { Orders } from "../src/domain/use-cases.ts";
import { PgOrdersRepository } from "../src/store/orders-repository.ts";
import { schema } from "../src/store/schema.ts";

let test: TestDatabase;
let database: Database<typeof schema>;
let queries: string[] = [];
let repo: PgOrdersRepository;

beforeAll(async () => {
  test = await createTestDatabase();
  database = await openDatabase({
    service: "orders-store-test",
    url: test.url,
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    onQuery: (q) => queries.push(q),
    // As orders runs: its reads through a read-only pool of their own (PostgreSQL; on PGlite, `db`).
    readPoolSize: 2,
  });
  repo = new PgOrdersRepository(database.db, database.reads);
});

afterAll(async () => {
  await database?.close();
  await test?.drop();
});

const eur = (amountMinor: number) => ({ currencyCode: "EUR", amountMinor });

function newOrder(userId: string, lines: number): NewOrder {
  const items = Array.from({ length: lines }, (_, i) => ({
    menuItemId: `item-${i}`,
    name: `Item ${i}`,
    quantity: i + 1,
    unitPrice: eur(100),
    lineTotal: eur(100 * (i + 1)),
  }));
  return {
    id: randomUUID(),
    requestId: `req-${randomUUID()}`,
    requestHash: "h",
    userId,
    restaurantId: "rst-1",
    restaurantName: "Forno Rosso",
    items,
    subtotal: eur(100),
    deliveryFee: eur(0),
    total: eur(100),
    deliveryAddress: { line1: "a", line2: "", city: "Berlin", postalCode: "", countryCode: "DE" },
    note: "",
    status: "PLACED",
  };
}

const placed = (o: Order) => ({
  id: randomUUID(),
  type: "OrderPlaced" as const,
  orderId: o.id,
  userId: o.userId,
  restaurantId: o.restaurantId,
  total: o.total,
});

describe(`orders store (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("stores an order, its lines, first status and event in one statement; a repeated request id writes nothing", async () => {
    const o = newOrder(`user-${randomUUID()}`, 3);
    queries = [];
    const stored = await repo.insert(o, placed);
    expect(queries).toHaveLength(1);
    expect(stored?.createdAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(stored?.statusHistory).toEqual([{ status: "PLACED", changedAt: stored!.createdAt, reason: "" }]);

    const read = await repo.get(o.id);
    expect(read?.items.map((i) => [i.menuItemId, i.name, i.quantity, i.unitPrice.amountMinor])).toEqual([
      ["item-0", "Item 0", 1, 100],
      ["item-1", "Item 1", 2, 100],
      ["item-2", "Item 2", 3, 100],
    ]);
    expect(read?.deliveryAddress).toEqual(o.deliveryAddress);
    expect(read?.createdAt).toEqual(stored?.createdAt);
    expect(read?.statusHistory.map((h) => h.status)).toEqual(["PLACED"]);

    const count = async (table: string) => {
      const rows = rowsOf<{ n: number }>(
        await database.db.execute(sql.raw(`select count(*)::int as n from ${table}`)),
      );
      return rows[0]!.n;
    };
    const before = await Promise.all(["orders", "order_items", "order_status_history", "outbox"].map(count));
    const duplicate = { ...newOrder(o.userId, 2), requestId: o.requestId };
    expect(await repo.insert(duplicate, placed)).toBeUndefined();
    expect(await Promise.all(["orders", "order_items", "order_status_history", "outbox"].map(count))).toEqual(
      before,
    );
  });

  it("reads an order with its lines and status history in one statement, the history oldest first", async () => {
    const o = newOrder(`user-${randomUUID()}`, 2);
    const stored = await repo.insert(o, placed);
    const changed = (status: "ACCEPTED" | "PREPARING", reason: string) =>
      repo.updateStatus(o.id, (current) => ({
        status,
        reason,
        event: {
          ...placed(current),
          type: "OrderStatusChanged",
          previousStatus: current.status,
          status,
        } as never,
      }));
    await changed("ACCEPTED", 'kitchen says "yes" \\ ok');
    const last = await changed("PREPARING", "");
    queries = [];
    const read = await repo.get(o.id);
    expect(queries).toHaveLength(1);
    expect(read?.status).toBe("PREPARING");
    expect(read?.statusHistory).toEqual([
      { status: "PLACED", changedAt: stored!.createdAt, reason: "" },
      { status: "ACCEPTED", changedAt: expect.any(Date), reason: 'kitchen says "yes" \\ ok' },
      { status: "PREPARING", changedAt: last!.updatedAt, reason: "" },
    ]);
    expect(read?.updatedAt).toEqual(last!.updatedAt);
    expect(read?.items.map((i) => i.menuItemId)).toEqual(["item-0", "item-1"]);
    expect(await repo.get(randomUUID())).toBeUndefined();
  });

  it("keeps the restaurant's latest name, and inserts it on its first order", async () => {
    const restaurantId = `rst-${randomUUID()}`;
    const first = { ...newOrder(`user-${randomUUID()}`, 1), restaurantId, restaurantName: "Old Name" };
    await repo.insert(first, placed);
    const renamed = { ...newOrder(first.userId, 1), restaurantId, restaurantName: "New Name" };
    await repo.insert(renamed, placed);
    expect((await repo.get(first.id))?.restaurantName).toBe("New Name");
    expect((await repo.get(renamed.id))?.restaurantName).toBe("New Name");
  });

  it("lists active orders with one SQL statement over orders, order items and restaurants", async () => {
    const userId = `user-${randomUUID()}`;
    for (const lines of [1, 3, 2]) {
      await repo.insert(newOrder(userId, lines), (o) => ({
        id: randomUUID(),
        type: "OrderPlaced",
        orderId: o.id,
        userId,
        restaurantId: o.restaurantId,
        total: o.total,
      }));
    }
    queries = [];
    const active = await repo.listActive(userId);
    expect(queries).toHaveLength(1);
    // One row per order: the lines come folded into a JSON array, not joined (a row per line).
    expect(queries[0]).toMatch(/json_agg\(.* from "order_items" where/s);
    expect(queries[0]).toMatch(/from "orders" inner join "restaurants"/);
    expect(queries[0]).not.toMatch(/join "order_items"/);
    // Only the user and the limit are parameters: the active statuses are literals, so PostgreSQL's
    // generic plan knows them (bound, its plan cache could fall back to planning every call).
    expect(queries[0]!.match(/\$\d+/g)).toEqual(["$1", "$2"]);
    expect(queries[0]).toContain(
      `"orders"."status" in ('PENDING_PAYMENT', 'PLACED', 'ACCEPTED', 'PREPARING', 'READY_FOR_PICKUP', 'OUT_FOR_DELIVERY')`,
    );
    expect(active.map((o) => o.items.length)).toEqual([2, 3, 1]);
    expect(active.every((o) => o.restaurantName === "Forno Rosso")).toBe(true);
    // Each listed order is the order GetOrder reads (its lines in line order, names, quantities, prices,
    // address, times), without the status history that lists leave out.
    for (const o of active) {
      const read = await repo.get(o.id);
      expect(o).toEqual({ ...read, statusHistory: [] });
    }
    expect(active[1]!.items).toEqual([
      { menuItemId: "item-0", name: "Item 0", quantity: 1, unitPrice: eur(100), lineTotal: eur(100) },
      { menuItemId: "item-1", name: "Item 1", quantity: 2, unitPrice: eur(100), lineTotal: eur(200) },
      { menuItemId: "item-2", name: "Item 2", quantity: 3, unitPrice: eur(100), lineTotal: eur(300) },
    ]);
    expect(active[0]!.createdAt).toBeInstanceOf(Date);
  });

  it("lists names that JSON must escape, and large prices, as they were stored", async () => {
    const o = newOrder(`user-${randomUUID()}`, 2);
    o.items[0]!.name = 'Crème "brûlée" \\ 🍮\n2';
    o.items[1]!.unitPrice = eur(2 ** 40);
    o.items[1]!.lineTotal = eur(2 ** 41);
    await repo.insert(o, placed);
    const [listed] = await repo.listActive(o.userId);
    expect(listed!.items.map((i) => i.name)).toEqual(['Crème "brûlée" \\ 🍮\n2', "Item 1"]);
    expect(listed!.items[1]!.unitPrice).toEqual(eur(2 ** 40));
    expect(listed!.items[1]!.lineTotal).toEqual(eur(2 ** 41));
  });
  it("places a new order in one statement; a retry the catalog can no longer price is answered from the store", async () => {
    let open = true;
    const priceBook: PriceBook = {
      async priceItems(restaurantId, ids) {
        return {
          restaurant: { id: restaurantId, name: "Forno Rosso", open, deliveryFee: eur(199) },
          items: ids.map((id) => ({ id, name: `Item ${id}`, price: eur(500), available: true })),
          missing: [],
        };
      },
    };
    const orders = new Orders(repo, priceBook);
    const input = {
      requestId: `req-${randomUUID()}`,
      userId: randomUUID(),
      restaurantId: "rst-1",
      items: [{ menuItemId: "a", quantity: 2 }],
      deliveryAddress: {
        line1: "Torstrasse 1",
        line2: "",
        city: "Berlin",
        postalCode: "",
        countryCode: "DE",
      },
      note: "",
    };
    queries = [];
    const first = await orders.placeOrder(input);
    expect(first.total.amountMinor).toBe(1199);
    expect(queries).toHaveLength(1);
    expect(queries[0]).toMatch(/insert into orders/);

    // A retry is priced again; the insert finds its request id and the first order is read back.
    expect((await orders.placeOrder(input)).id).toBe(first.id);

    // The restaurant closed since: the retry still gets its order and writes nothing, a new request is refused.
    open = false;
    queries = [];
    expect((await orders.placeOrder(input)).id).toBe(first.id);
    expect(queries.filter((q) => /\binsert into\b|\bupdate \w+ set\b|\bdelete from\b/i.test(q))).toEqual([]);
    await expect(orders.placeOrder({ ...input, requestId: `req-${randomUUID()}` })).rejects.toThrow(
      /not taking orders/,
    );
    // And the retry of a request id reused for another order is still refused.
    await expect(orders.placeOrder({ ...input, items: [{ menuItemId: "b", quantity: 1 }] })).rejects.toThrow(
      /request_id|request id/i,
    );
    expect((await repo.listActive(input.userId)).map((o) => o.id)).toEqual([first.id]);

    // Pricing and the store both failing: the answer is the pricing error, not the store's.
    const storeDown = {
      findByRequestId: async () => {
        throw new Error("connection refused");
      },
    } as unknown as OrdersRepository;
    await expect(
      new Orders(storeDown, priceBook).placeOrder({ ...input, requestId: `req-${randomUUID()}` }),
    ).rejects.toThrow(/not taking orders/);
  });
});
