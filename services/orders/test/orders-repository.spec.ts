import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type Database, openDatabase } from "@dispatch/db";
import { createTestDatabase, type TestDatabase } from "@dispatch/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewOrder } from "../src/domain/ports.ts";
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
  });
  repo = new PgOrdersRepository(database.db);
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

describe(`orders store (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
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
    expect(queries[0]).toMatch(/from "orders" inner join "restaurants" .* inner join "order_items"/);
    expect(active.map((o) => o.items.length)).toEqual([2, 3, 1]);
    expect(active.every((o) => o.restaurantName === "Forno Rosso")).toBe(true);
  });
});
