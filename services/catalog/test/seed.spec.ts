import { fileURLToPath } from "node:url";
import { type Database, openDatabase } from "@dispatch/db";
import { createTestDatabase, type TestDatabase } from "@dispatch/testing";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { menuItems, restaurants, schema } from "../src/store/schema.ts";
import { demoData, seedDemoData } from "../src/store/seed.ts";

let test: TestDatabase;
let database: Database<typeof schema>;
let queries: string[] = [];

beforeAll(async () => {
  test = await createTestDatabase();
  database = await openDatabase({
    service: "catalog-seed-test",
    url: test.url,
    dataDir: "memory://",
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
    onQuery: (q) => queries.push(q),
  });
});

afterAll(async () => {
  await database?.close();
  await test?.drop();
});

describe("the demo data, at every start", () => {
  it("is written once; a start that finds all of it reads once and writes nothing; a missing row is put back, a changed one kept", async () => {
    const { db } = database;
    const data = demoData();
    expect(await seedDemoData(db)).toEqual({
      restaurants: data.restaurants.length,
      menuItems: data.menuItems.length,
    });
    expect([data.restaurants.length, data.menuItems.length]).toEqual([24, 288]);

    queries = [];
    expect(await seedDemoData(db)).toEqual({ restaurants: 0, menuItems: 0 });
    expect(queries).toHaveLength(1);
    expect(queries[0]).toMatch(/^select /);

    await db.delete(menuItems).where(eq(menuItems.id, "rst-007-item-03"));
    await db.update(restaurants).set({ name: "Renamed by an operator" }).where(eq(restaurants.id, "rst-002"));
    expect(await seedDemoData(db)).toEqual({ restaurants: 0, menuItems: 1 });
    const [item] = await db.select().from(menuItems).where(eq(menuItems.id, "rst-007-item-03"));
    expect(item?.name).toBe(data.menuItems.find((m) => m.id === "rst-007-item-03")!.name);
    const [renamed] = await db.select().from(restaurants).where(eq(restaurants.id, "rst-002"));
    expect(renamed?.name).toBe("Renamed by an operator");
    expect(await db.$count(menuItems)).toBe(288);
  });
});
