import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// By path: @dispatch/testing depends on this package, so it is not one of this package's dependencies.
import { createTestDatabase, type TestDatabase } from "../../testing/src/test-database.ts";
import { type Database, openDatabase, QueueVacuum, rowsOf } from "../src/index.ts";
import { schema } from "./fixtures/schema.ts";

let test: TestDatabase;
let database: Database<typeof schema>;
const warnings: string[] = [];
const logger = { debug() {}, warn: (_: object, msg: string) => void warnings.push(msg) };

beforeAll(async () => {
  test = await createTestDatabase("dispatch_vacuumtest");
  database = await openDatabase({
    service: "vacuum-test",
    url: test.url,
    schema,
    migrationsFolder: fileURLToPath(new URL("./fixtures/migrations", import.meta.url)),
  });
});
afterAll(async () => {
  await database?.close();
  await test?.drop();
});

async function vacuums(): Promise<number> {
  const [row] = rowsOf<{ n: number | string }>(
    await database.db.execute(sql`select vacuum_count as n from pg_stat_user_tables where relname = 'notes'`),
  );
  return Number(row!.n);
}

describe(`QueueVacuum (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("vacuums the table once `every` rows have changed, one VACUUM at a time, and never with 0", async () => {
    const v = new QueueVacuum(database.db, "notes", 5, logger);
    const before = await vacuums();
    v.changed(3);
    await v.settled();
    expect(await vacuums()).toBe(before);
    v.changed(2); // 5: starts one
    v.changed(9); // counted while the first runs: starts none
    await v.settled();
    expect(await vacuums()).toBe(before + 1);
    v.changed(1); // 10 counted since the first started
    await v.settled();
    expect(await vacuums()).toBe(before + 2);

    const never = new QueueVacuum(database.db, "notes", 0, logger);
    never.changed(1_000_000);
    await never.settled();
    expect(await vacuums()).toBe(before + 2);
    expect(warnings).toEqual([]);
  });

  it("logs a failed VACUUM and carries on", async () => {
    const v = new QueueVacuum(database.db, "no_such_table", 1, logger);
    v.changed(1);
    await v.settled();
    expect(warnings).toEqual(["queue table vacuum failed; the next one is tried later"]);
  });
});
