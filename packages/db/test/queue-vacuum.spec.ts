import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase, QueueVacuum, rowsOf } from "../src/index.ts";
import { schema } from "./fixtures/schema.ts";

const adminUrl = process.env.TEST_DATABASE_URL;
const dbName = `dispatch_vacuumtest_${process.pid}_${Date.now()}`;
let database: Database<typeof schema>;
const warnings: string[] = [];
const logger = { debug() {}, warn: (_: object, msg: string) => void warnings.push(msg) };

beforeAll(async () => {
  let url: string | undefined;
  if (adminUrl) {
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${dbName}"`);
    await admin.end();
    const u = new URL(adminUrl);
    u.pathname = `/${dbName}`;
    url = u.toString();
  }
  database = await openDatabase({
    service: "vacuum-test",
    url,
    schema,
    migrationsFolder: fileURLToPath(new URL("./fixtures/migrations", import.meta.url)),
  });
});
afterAll(async () => {
  await database?.close();
  if (adminUrl) {
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
    await admin.end();
  }
});

async function vacuums(): Promise<number> {
  const [row] = rowsOf<{ n: number | string }>(
    await database.db.execute(sql`select vacuum_count as n from pg_stat_user_tables where relname = 'notes'`),
  );
  return Number(row!.n);
}

describe(`QueueVacuum (${adminUrl ? "postgres" : "pglite"})`, () => {
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
