import { Code } from "@connectrpc/connect";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import type { Server } from "@dispatch/runtime";
import { createTestDatabase, statusOf, type TestDatabase, testClient } from "@dispatch/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCatalog } from "../src/main.ts";

let db: TestDatabase;
let server: Server;
let catalog: ReturnType<typeof testClient<typeof CatalogService>>;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startCatalog({
    PORT: "0",
    ADMIN_PORT: "0",
    DATA_DIR: "memory://",
    LOG_LEVEL: "warn",
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
  catalog = testClient(CatalogService, server.port);
});

afterAll(async () => {
  await server?.shutdown();
  await db?.drop();
});

describe(`catalog over gRPC (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("pages through every seeded restaurant without repeats", async () => {
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await catalog.listRestaurants({ pageSize: 7, pageToken });
      expect(page.restaurants.length).toBeLessThanOrEqual(7);
      seen.push(...page.restaurants.map((r) => r.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(seen.length).toBeGreaterThanOrEqual(20);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil(seen.length / 7));
  });

  it("filters by cuisine and orders by distance when asked", async () => {
    const sushi = await catalog.listRestaurants({ cuisine: "sushi", pageSize: 100 });
    expect(sushi.restaurants.length).toBeGreaterThan(0);
    expect(sushi.restaurants.every((r) => r.cuisine === "sushi")).toBe(true);

    const all = await catalog.listRestaurants({ pageSize: 100 });
    const target = all.restaurants[5]!;
    const near = await catalog.listRestaurants({ near: target.address!.location!, pageSize: 3 });
    expect(near.restaurants[0]?.id).toBe(target.id);
  });

  it("rejects a page token from another query", async () => {
    const first = await catalog.listRestaurants({ pageSize: 2 });
    const s = await statusOf(
      catalog.listRestaurants({ pageSize: 2, cuisine: "pizza", pageToken: first.nextPageToken }),
    );
    expect(s.code).toBe(Code.InvalidArgument);
    expect(s.reason).toBe("INVALID_PAGE_TOKEN");
    expect(s.fieldViolations.map((v) => v.field)).toEqual(["page_token"]);
  });

  it("names every bad field", async () => {
    const s = await statusOf(
      catalog.listRestaurants({ pageSize: 1000, near: { latitude: 200, longitude: 0 } }),
    );
    expect(s.code).toBe(Code.InvalidArgument);
    expect(s.fieldViolations.map((v) => v.field).sort()).toEqual(["near.latitude", "page_size"]);
  });

  it("returns a restaurant with its menu of at least 10 items in integer minor units", async () => {
    const { restaurant } = await catalog.getRestaurant({ restaurantId: "rst-001" });
    expect(restaurant?.name).toBeTruthy();
    expect(restaurant?.deliveryFee?.currencyCode).toBe("EUR");
    const menu = await catalog.getMenu({ restaurantId: "rst-001" });
    expect(menu.items.length).toBeGreaterThanOrEqual(10);
    for (const item of menu.items) {
      expect(typeof item.price?.amountMinor).toBe("bigint");
      expect(item.price!.amountMinor > 0n).toBe(true);
    }
  });

  it("answers NOT_FOUND with a reason for an unknown restaurant", async () => {
    const s = await statusOf(catalog.getMenu({ restaurantId: "rst-999" }));
    expect(s.code).toBe(Code.NotFound);
    expect(s.reason).toBe("RESTAURANT_NOT_FOUND");
    const empty = await statusOf(catalog.getRestaurant({ restaurantId: "" }));
    expect(empty.code).toBe(Code.InvalidArgument);
    expect(empty.fieldViolations[0]?.field).toBe("restaurant_id");
  });

  it("prices a batch of items in request order and lists the missing ones", async () => {
    const res = await catalog.batchGetMenuItems({
      restaurantId: "rst-002",
      menuItemIds: ["rst-002-item-03", "rst-001-item-01", "rst-002-item-01", "nope"],
    });
    expect(res.restaurant?.id).toBe("rst-002");
    expect(res.items.map((i) => i.id)).toEqual(["rst-002-item-03", "rst-002-item-01"]);
    expect(res.missingMenuItemIds).toEqual(["rst-001-item-01", "nope"]);
    // Each priced item is the menu's item, field for field; the restaurant is GetRestaurant's.
    const menu = await catalog.getMenu({ restaurantId: "rst-002" });
    const byId = new Map(menu.items.map((i) => [i.id, i]));
    for (const item of res.items) expect(item).toEqual(byId.get(item.id));
    expect(res.restaurant).toEqual((await catalog.getRestaurant({ restaurantId: "rst-002" })).restaurant);

    const none = await catalog.batchGetMenuItems({ restaurantId: "rst-002", menuItemIds: ["nope"] });
    expect(none.restaurant?.id).toBe("rst-002");
    expect(none.items).toEqual([]);
    expect(none.missingMenuItemIds).toEqual(["nope"]);
    const unknown = await statusOf(
      catalog.batchGetMenuItems({ restaurantId: "rst-nope", menuItemIds: ["rst-002-item-01"] }),
    );
    expect(unknown.code).toBe(Code.NotFound);
  });
});
