import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { afterAll, describe, expect, it } from "vitest";
import { initEmptyDataDirs } from "../src/embedded-data-dirs.ts";

describe("initEmptyDataDirs (pnpm start's PGlite folders)", () => {
  const parent = mkdtempSync(join(tmpdir(), "dispatch-datadirs-"));
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it("initializes missing and empty folders as independent clusters and leaves the others alone", async () => {
    const missing = join(parent, "identity");
    const empty = join(parent, "catalog");
    const used = join(parent, "orders");
    mkdirSync(empty);
    mkdirSync(used);
    writeFileSync(join(used, "keep.txt"), "a developer's folder");

    expect(await initEmptyDataDirs([missing, empty, used])).toEqual([missing, empty]);
    expect(readdirSync(used)).toEqual(["keep.txt"]);
    expect(readFileSync(join(used, "keep.txt"), "utf8")).toBe("a developer's folder");
    for (const dir of [missing, empty]) expect(existsSync(join(dir, "PG_VERSION"))).toBe(true);

    // Each opens as its own database: a table made in one is not in the other.
    const a = new PGlite(missing);
    await a.exec("create table orders_only (id int primary key); insert into orders_only values (1)");
    await a.close();
    const b = new PGlite(empty);
    const found = await b.query<{ n: number }>(
      "select count(*)::int as n from pg_tables where tablename = 'orders_only'",
    );
    expect(found.rows[0]!.n).toBe(0);
    await b.exec("create table orders_only (id int primary key)");
    await b.close();
    const again = new PGlite(missing);
    expect((await again.query<{ id: number }>("select id from orders_only")).rows).toEqual([{ id: 1 }]);
    await again.close();

    // A second call finds nothing to do.
    expect(await initEmptyDataDirs([missing, empty, used])).toEqual([]);
  }, 60_000);
});
