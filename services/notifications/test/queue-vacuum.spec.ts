import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type Database, openDatabase, QueueVacuum, rowsOf } from "@dispatch/db";
import { createTestDatabase, type TestDatabase } from "@dispatch/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgNotificationsRepository } from "../src/store/notifications-repository.ts";
import { schema } from "../src/store/schema.ts";

let test: TestDatabase;
let database: Database<typeof schema>;

beforeAll(async () => {
  test = await createTestDatabase();
  database = await openDatabase({
    service: "notifications-vacuum-test",
    url: test.url,
    schema,
    migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
  });
});
afterAll(async () => {
  await database?.close();
  await test?.drop();
});

async function vacuums(): Promise<number> {
  const [row] = rowsOf<{ n: number | string }>(
    await database.db.execute(
      sql`select vacuum_count as n from pg_stat_user_tables where relname = 'notifications'`,
    ),
  );
  return Number(row!.n);
}

describe(`the push queue's VACUUM (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("counts each claimed job and each recorded attempt, and vacuums the queue every `every` of them", async () => {
    const logger = { debug() {}, warn() {} };
    const vacuum = new QueueVacuum(database.db, "notifications", 4, logger);
    const repo = new PgNotificationsRepository(database.db, vacuum);
    for (let i = 0; i < 3; i++)
      await repo.enqueue({
        id: randomUUID(),
        userId: `user-${i}`,
        title: "Your order",
        body: "is on its way",
        data: {},
        requestHash: `hash-${i}`,
      });
    const before = await vacuums();
    const jobs = await repo.claim(10, 60_000); // 3 changed
    expect(jobs).toHaveLength(3);
    await vacuum.settled();
    expect(await vacuums()).toBe(before);
    await repo.record(jobs[0]!.id, [], { status: "NO_DEVICES" }); // 4: one VACUUM
    await vacuum.settled();
    expect(await vacuums()).toBe(before + 1);
  });
});
