import { AsyncLocalStorage } from "node:async_hooks";
import { fileURLToPath } from "node:url";
import { toWireStatus } from "@dispatch/runtime";
import { eq, sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Canceller, cancellable, DatabaseGate } from "../src/cancellation.ts";
import {
  connectionBudget,
  isDatabaseUnavailable,
  isQueryCancelled,
  openDatabase,
  rowsOf,
} from "../src/index.ts";
import { notes, schema } from "./fixtures/schema.ts";

const migrationsFolder = fileURLToPath(new URL("./fixtures/migrations", import.meta.url));
const adminUrl = process.env.TEST_DATABASE_URL;

/**
 * Takes an exclusive lock on `notes` (or the lock `take` takes) in a transaction of `locker` and holds it
 * until `release()` (or `maxMs`); resolves once the lock is held. `done` settles when the transaction has ended.
 */
async function lockNotes(
  locker: postgres.Sql,
  maxMs = 10_000,
  take: (tx: postgres.TransactionSql) => Promise<unknown> = (tx) =>
    tx`lock table notes in access exclusive mode`,
): Promise<{ release: () => void; done: Promise<unknown> }> {
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  let locked!: () => void;
  const taken = new Promise<void>((r) => {
    locked = r;
  });
  const done = locker.begin(async (tx) => {
    await take(tx);
    locked();
    const timer = setTimeout(release, maxMs);
    await held;
    clearTimeout(timer);
  });
  await Promise.race([taken, done]);
  return { release, done };
}

/** The error in `err`'s cause chain with SQLSTATE `code` (drizzle wraps the driver's error), if any. */
function withSqlState(err: unknown, code: string): { code?: string } | undefined {
  let e = err as { code?: string; cause?: unknown } | undefined;
  while (e && e.code !== code) e = e.cause as typeof e;
  return e;
}

/** How a query ended, for comparing many at once. */
const outcome = (query: Promise<unknown>) =>
  query.then(
    () => "answered",
    (e: unknown) => (isQueryCancelled(e) ? "cancelled" : String(e)),
  );

describe("connectionBudget: DATABASE_URL's max", () => {
  const url = (query: string) => `postgres://dispatch:s3cret@db.internal:5432/orders${query}`;
  it("leaves the service's own sizes without max, and splits max - 1 between the pools as they are split", () => {
    expect(connectionBudget(url(""), { pool: 5, readPool: 2 })).toEqual({ pool: 5, readPool: 2 });
    expect(connectionBudget(url("?sslmode=require"), { pool: 10, readPool: 0 })).toEqual({
      pool: 10,
      readPool: 0,
    });
    // One connection of max is the cancel connection's; a read pool of at least one when both fit.
    expect(connectionBudget(url("?max=4"), { pool: 5, readPool: 2 })).toEqual({ pool: 2, readPool: 1 });
    expect(connectionBudget(url("?sslmode=require&max=15"), { pool: 5, readPool: 2 })).toEqual({
      pool: 10,
      readPool: 4,
    });
    expect(connectionBudget(url("?max=2"), { pool: 5, readPool: 2 })).toEqual({ pool: 1, readPool: 0 });
    expect(connectionBudget(url("?max=4"), { pool: 10, readPool: 0 })).toEqual({ pool: 3, readPool: 0 });
    // Several hosts, as postgres.js takes them (no WHATWG URL): max counts there too.
    expect(
      connectionBudget("postgres://u:p@db-a:5432,db-b:5432/orders?max=4", { pool: 10, readPool: 0 }),
    ).toEqual({
      pool: 3,
      readPool: 0,
    });
  });

  it("refuses a max a service cannot run on, naming it and not the URL's password", () => {
    for (const bad of ["1", "0", "-3", "four", "2.5", ""]) {
      let message = `max=${bad} was taken`;
      try {
        connectionBudget(url(`?max=${bad}`), { pool: 10, readPool: 0 });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toContain(`DATABASE_URL: max=${JSON.stringify(bad)}`);
      expect(message).not.toContain("s3cret");
    }
  });
});

describe("openDatabase on embedded PGlite", () => {
  it("applies migrations, queries, and rolls back a failed transaction", async () => {
    const database = await openDatabase({ service: "test", schema, migrationsFolder });
    try {
      expect(database.kind).toBe("pglite");
      await database.ping();
      // 16 MB of shared buffers instead of PostgreSQL's 128 (pglite-options.ts), with the rest of
      // postgresql.conf as initdb wrote it.
      const settings = rowsOf<Record<string, string>>(
        await database.db.execute(
          sql`select current_setting('shared_buffers') as buffers, current_setting('TimeZone') as zone,
            current_setting('default_text_search_config') as search`,
        ),
      );
      expect(settings).toEqual([{ buffers: "16MB", zone: "UTC", search: "pg_catalog.english" }]);
      await database.db.insert(notes).values({ id: 1, body: "kept" });
      await expect(
        database.db.transaction(async (tx) => {
          await tx.insert(notes).values({ id: 2, body: "rolled back" });
          throw new Error("abort the transaction");
        }),
      ).rejects.toThrow("abort the transaction");
      expect((await database.db.select().from(notes)).map((n) => n.body)).toEqual(["kept"]);
    } finally {
      await database.close();
    }
  });
});

describe.runIf(adminUrl)("openDatabase on PostgreSQL", () => {
  let url: string;
  const dbName = `dispatch_dbtest_${process.pid}_${Date.now()}`;

  beforeAll(async () => {
    const admin = postgres(adminUrl!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${dbName}"`);
    await admin.end();
    const u = new URL(adminUrl!);
    u.pathname = `/${dbName}`;
    url = u.toString();
  });

  afterAll(async () => {
    const admin = postgres(adminUrl!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
    await admin.end();
  });

  it("applies migrations, sets the statement timeout, and respects the pool size", async () => {
    const database = await openDatabase({
      service: "dbtest",
      url,
      schema,
      migrationsFolder,
      poolSize: 3,
      statementTimeoutMs: 1234,
    });
    try {
      expect(database.kind).toBe("postgres");
      await database.db.insert(notes).values({ id: 1, body: "pg" });
      expect((await database.db.select().from(notes).where(eq(notes.id, 1)))[0]?.body).toBe("pg");
      const timeout = await database.db.execute(sql`show statement_timeout`);
      expect(JSON.stringify(timeout)).toContain("1234ms");
      await Promise.all(Array.from({ length: 10 }, () => database.db.execute(sql`select pg_sleep(0.05)`)));
      const conns = await database.db.execute(
        sql`select count(*)::int as n from pg_stat_activity where datname = ${dbName} and application_name = 'dbtest'`,
      );
      expect((conns as unknown as { n: number }[])[0]!.n).toBeLessThanOrEqual(3);
    } finally {
      await database.close();
    }
  });

  it("runs drizzle's parameterised queries as named prepared statements, parsed once per connection", async () => {
    const database = await openDatabase({ service: "dbtest", url, schema, migrationsFolder, poolSize: 1 });
    try {
      await database.db.insert(notes).values({ id: 7001, body: "prepared" });
      for (let i = 0; i < 3; i++) {
        const [row] = await database.db.select().from(notes).where(eq(notes.id, 7001));
        expect(row?.body).toBe("prepared");
      }
      // One connection (poolSize 1): its prepared statements are visible to the next query on it.
      const prepared = (await database.db.execute(
        sql`select statement from pg_prepared_statements where statement like '%from "notes" where%'`,
      )) as unknown as { statement: string }[];
      // The select was parsed and kept once, however many times it ran.
      expect(prepared).toHaveLength(1);
      expect(prepared[0]!.statement).toMatch(/where "notes"\."id" = \$1/);
    } finally {
      await database.close();
    }
  });

  it("cancels a running query on the server when the call's signal aborts", async () => {
    // As in a service: the signal of the call being handled comes from async context.
    const call = new AsyncLocalStorage<AbortSignal>();
    const inCall = <T>(signal: AbortSignal, fn: () => Promise<T>) => call.run(signal, fn);
    const database = await openDatabase({
      service: "canceltest",
      url,
      schema,
      migrationsFolder,
      signal: () => call.getStore(),
    });
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const t0 = Date.now();
      const err = await inCall(ac.signal, async () => {
        await database.db.execute(sql`select pg_sleep(10)`);
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isQueryCancelled(err)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1000);
      const active = await database.db.execute(
        sql`select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%pg_sleep(10)%' and pid <> pg_backend_pid()`,
      );
      expect((active as unknown as { n: number }[])[0]!.n).toBe(0);

      // Inside a transaction too: the transaction fails and rolls back.
      const ac2 = new AbortController();
      setTimeout(() => ac2.abort(), 100);
      const tx = inCall(ac2.signal, () =>
        database.db.transaction(async (t) => {
          await t.insert(notes).values({ id: 77, body: "never" });
          await t.execute(sql`select pg_sleep(10)`);
        }),
      );
      await expect(tx).rejects.toSatisfy(isQueryCancelled);
      expect(await database.db.select().from(notes).where(eq(notes.id, 77))).toEqual([]);

      // An already-aborted signal: the query is never sent.
      const dead = new AbortController();
      dead.abort();
      await expect(inCall(dead.signal, async () => database.db.execute(sql`select 1`))).rejects.toSatisfy(
        isQueryCancelled,
      );
      await database.ping();
    } finally {
      await database.close();
    }
  });

  it("stops ten statements at one deadline with one pg_cancel_backend over the pool's own cancel connection, open from the start", async () => {
    const call = new AsyncLocalStorage<AbortSignal>();
    const database = await openDatabase({
      service: "cancelbatch",
      url,
      schema,
      migrationsFolder,
      poolSize: 10,
      signal: () => call.getStore(),
    });
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    try {
      // The cancel connection is opened with the database, before anything is cancelled.
      const cancelConnections = async () =>
        (
          await watcher`select count(*)::int as n from pg_stat_activity
            where application_name = 'cancelbatch cancels'`
        )[0]!.n as number;
      for (let i = 0; i < 100 && (await cancelConnections()) < 1; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(await cancelConnections()).toBe(1);
      const lock = await lockNotes(locker);
      const ac = new AbortController();
      const waiting = Array.from({ length: 10 }, () =>
        // awaited inside run(): a drizzle query starts when awaited, and must start inside the call
        outcome(call.run(ac.signal, async () => await database.db.select().from(notes))),
      );
      const onLock = async () =>
        (
          await watcher`select count(*)::int as n from pg_stat_activity
            where application_name = 'cancelbatch' and wait_event_type = 'Lock'`
        )[0]!.n as number;
      for (let i = 0; i < 200 && (await onLock()) < 10; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await onLock()).toBe(10);
      await new Promise((r) => setTimeout(r, 30)); // past the 20 ms below which nothing is cancelled
      ac.abort();
      expect(await Promise.all(waiting)).toEqual(Array(10).fill("cancelled"));
      for (let i = 0; i < 100 && (await onLock()) > 0; i++) await new Promise((r) => setTimeout(r, 10));
      // Stopped while the lock is still held: cancelled in their backends, not answered later.
      expect(await onLock()).toBe(0);
      const cancels =
        await watcher`select query from pg_stat_activity where application_name = 'cancelbatch cancels'`;
      expect(cancels).toHaveLength(1);
      expect(cancels[0]!.query).toMatch(/pg_cancel_backend/);
      lock.release();
      await lock.done;
      await database.ping();
    } finally {
      await locker.end();
      await watcher.end();
      await database.close();
    }
  });

  it("falls back to postgres.js' CancelRequest when the cancel connection cannot be had", async () => {
    const client = postgres(url, { max: 2, onnotice: () => {} });
    // The server is read over a client of its own: PostgreSQL answers a CancelRequest with two SIGINTs
    // (to the backend, then to its process group), and on a loaded machine the second can land after the
    // first has stopped pg_sleep and stop the next statement on that connection (seen once in CI).
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    const nowhere = postgres("postgres://postgres@127.0.0.1:1/none", { max: 1, connect_timeout: 1 });
    const call = new AsyncLocalStorage<AbortSignal>();
    const sqlc = cancellable(
      client,
      () => call.getStore(),
      new DatabaseGate(),
      undefined,
      new Canceller(nowhere),
    );
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const t0 = Date.now();
      const err = await call
        .run(ac.signal, () => sqlc.unsafe("select pg_sleep($1)", [10]))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(isQueryCancelled(err)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(2000);
      const active = await watcher`select count(*)::int as n from pg_stat_activity
        where state = 'active' and query like '%pg_sleep%' and pid <> pg_backend_pid()`;
      expect(active[0]!.n).toBe(0);
    } finally {
      await client.end();
      await watcher.end();
      await nowhere.end();
    }
  });

  it("stops the statements of callers that gave up while they waited on a lock: queued, connecting or running", async () => {
    // A session holds an exclusive lock on the table for 3 s. Eight calls on a pool of three: three run
    // (one on the connection the migrations opened, two on connections still opening), five wait. Their
    // callers give up; no statement of theirs may go on waiting for the lock, and the pool keeps all
    // three connections. Aborting at 2 ms catches the connections while they open, at 150 ms with the
    // statements waiting on the lock (and, before StatementSlots, five pipelined behind them).
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    try {
      for (const abortAfterMs of [2, 150]) {
        const call = new AsyncLocalStorage<AbortSignal>();
        const app = `locktest${abortAfterMs}`;
        const database = await openDatabase({
          service: app,
          url,
          schema,
          migrationsFolder,
          poolSize: 3,
          signal: () => call.getStore(),
        });
        let release = () => {};
        try {
          const lock = await lockNotes(locker, 3000);
          release = lock.release;
          const ac = new AbortController();
          const t0 = performance.now();
          const calls = Array.from({ length: 8 }, () =>
            outcome(
              call.run(
                ac.signal,
                async () => await database.db.execute(sql`select count(*)::int as n from notes`),
              ),
            ),
          );
          setTimeout(() => ac.abort(), abortAfterMs);
          const outcomes = await Promise.all(calls);
          const calledFor = performance.now() - t0;
          await new Promise((r) => setTimeout(r, 300));
          const waiting = await watcher`
            select count(*)::int as n from pg_stat_activity
            where application_name = ${app} and wait_event_type = 'Lock'`;
          release();
          await lock.done;

          expect(outcomes).toEqual(Array(8).fill("cancelled"));
          expect(calledFor).toBeLessThan(abortAfterMs + 200);
          // Well inside the lock's 3 s, none of the eight is still waiting for it.
          expect(waiting[0]!.n).toBe(0);
          // All three connections still serve: three concurrent statements run on three backends.
          const pids = await Promise.all(
            Array.from({ length: 3 }, () =>
              database.db.execute(sql`select pg_backend_pid() as pid, pg_sleep(0.1)::text as z`),
            ),
          );
          expect(new Set(pids.map((r) => (r as unknown as { pid: number }[])[0]!.pid)).size).toBe(3);
        } finally {
          release();
          await database.close();
        }
      }
    } finally {
      await locker.end();
      await watcher.end();
    }
  }, 30_000);

  it("returns every query's own rows while other calls' queries are being cancelled around it", async () => {
    // postgres.js pipelines queries on a connection; cancelling a sent one with a CancelRequest (which
    // stops whatever the backend runs when it arrives) made neighbours fail, return other statements'
    // rows or never settle. Many calls on a small pool, a fifth of them abandoned mid-flight.
    const call = new AsyncLocalStorage<AbortSignal>();
    const database = await openDatabase({
      service: "pipelinetest",
      url,
      schema,
      migrationsFolder,
      poolSize: 2,
      signal: () => call.getStore(),
    });
    try {
      let wrong = 0;
      let cancelled = 0;
      let ok = 0;
      const one = async (i: number) => {
        const ac = new AbortController();
        if (i % 5 === 0) setTimeout(() => ac.abort(), i % 4);
        const n = 1 + (i % 7);
        try {
          await call.run(ac.signal, async () => {
            if (i % 2) {
              const rows = (await database.db.execute(
                sql`select g::int as a, ('x' || g)::text as b from generate_series(1, ${n}::int) g`,
              )) as unknown as { a: number; b: string }[];
              if (rows.length !== n || rows.some((r, k) => r.a !== k + 1 || r.b !== `x${k + 1}`)) wrong++;
              else ok++;
            } else {
              const rows = (await database.db.execute(
                sql`select ${`v${i}`}::text as s, pg_sleep(${i % 3}::float8 / 1000) as z`,
              )) as unknown as { s: string }[];
              if (rows.length !== 1 || rows[0]!.s !== `v${i}`) wrong++;
              else ok++;
            }
          });
        } catch (err) {
          if (!isQueryCancelled(err)) throw err;
          cancelled++;
        }
      };
      let next = 0;
      const until = Date.now() + 2000;
      const workers = Array.from({ length: 30 }, async () => {
        while (Date.now() < until) await one(next++);
      });
      // Every call settles (none hangs behind a cancelled neighbour).
      let timer: NodeJS.Timeout | undefined;
      const settled = await Promise.race([
        Promise.all(workers).then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), 15_000);
        }),
      ]);
      clearTimeout(timer);
      expect(settled).toBe(true);
      expect(wrong).toBe(0);
      expect(cancelled).toBeGreaterThan(0);
      expect(ok).toBeGreaterThan(100);
    } finally {
      await database.close();
    }
  }, 30_000);

  it("answers a statement PostgreSQL stopped (statement_timeout, lock_timeout) as UNAVAILABLE and keeps the database open", async () => {
    const database = await openDatabase({
      service: "timeouttest",
      url,
      schema,
      migrationsFolder,
      statementTimeoutMs: 100,
    });
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const failure = (p: Promise<unknown>) =>
        p.then(
          () => expect.unreachable("the statement should have been stopped"),
          (e: unknown) => e,
        );
      const expectRetryable = (err: unknown, sqlState: string) => {
        expect(withSqlState(err, sqlState)?.code, String(err)).toBe(sqlState);
        const status = toWireStatus(err);
        expect(status.code).toBe(14); // UNAVAILABLE: retry with backoff; not INTERNAL
        expect(status.unexpected).toBe(false);
        expect(isDatabaseUnavailable(err)).toBe(false);
      };
      const t0 = performance.now();
      expectRetryable(await failure(database.db.execute(sql`select pg_sleep(2)`)), "57014");
      expect(performance.now() - t0).toBeLessThan(1500);
      // Inside a transaction: waiting on a row lock past lock_timeout; the transaction is rolled back.
      await database.db.insert(notes).values({ id: 9001, body: "locked" });
      await admin.begin(async (tx) => {
        await tx`select * from notes where id = 9001 for update`;
        expectRetryable(
          await failure(
            database.db.transaction(async (t) => {
              await t.execute(sql`set local lock_timeout = '50ms'`);
              await t.insert(notes).values({ id: 9002, body: "not kept" });
              await t.update(notes).set({ body: "changed" }).where(eq(notes.id, 9001));
            }),
          ),
          "55P03",
        );
      });
      const rows = await database.db.select().from(notes).where(eq(notes.id, 9002));
      expect(rows).toEqual([]);
      // The gate stayed open: the next statement runs at once.
      const [row] = await database.db.select().from(notes).where(eq(notes.id, 9001));
      expect(row?.body).toBe("locked");
    } finally {
      await admin.end();
      await database.close();
    }
  });

  it("reads through a read-only pool of their own: not held by writes waiting on a lock, each read its own rows on shared connections, a table lock's wait bounded", async () => {
    const call = new AsyncLocalStorage<AbortSignal>();
    const database = await openDatabase({
      service: "readpooltest",
      url,
      schema,
      migrationsFolder,
      poolSize: 1,
      readPoolSize: 2,
      signal: () => call.getStore(),
    });
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await database.db
        .insert(notes)
        .values(Array.from({ length: 40 }, (_, i) => ({ id: 8000 + i, body: `n${i}` })));
      const byId = (id: number) => database.reads.select().from(notes).where(eq(notes.id, id));

      // The main pool's one connection waits on a row lock; the reads do not wait for it.
      const rowLock = await lockNotes(
        locker,
        10_000,
        (tx) => tx`select * from notes where id = 8000 for update`,
      );
      const write = database.db.update(notes).set({ body: "written" }).where(eq(notes.id, 8000));
      const writeDone = write.then(() => "written");
      await new Promise((r) => setTimeout(r, 100));
      // 40 reads at once on two connections: each answers with its own row while the write still waits.
      const t0 = performance.now();
      const rows = await Promise.all(Array.from({ length: 40 }, (_, i) => byId(8000 + i)));
      const readMs = performance.now() - t0;
      expect(rows.map((r) => r[0]?.body)).toEqual(Array.from({ length: 40 }, (_, i) => `n${i}`));
      expect(await Promise.race([writeDone, new Promise((r) => setTimeout(() => r("waiting"), 10))])).toBe(
        "waiting",
      );
      expect(readMs).toBeLessThan(2000);
      const readers = await watcher`
        select count(*)::int as n from pg_stat_activity where application_name = 'readpooltest reads'`;
      expect(readers[0]!.n).toBeLessThanOrEqual(2);
      rowLock.release();
      await rowLock.done;
      expect(await writeDone).toBe("written");
      expect((await byId(8000))[0]?.body).toBe("written");

      // Read-only: a write or a row lock through the read pool fails, and nothing is written.
      const refused = async (q: Promise<unknown>) => {
        const err = await q.then(
          () => expect.unreachable("the read pool took a write"),
          (e: unknown) => e,
        );
        expect(withSqlState(err, "25006")?.code, String(err)).toBe("25006"); // read_only_sql_transaction
      };
      await refused(database.reads.insert(notes).values({ id: 8100, body: "no" }));
      await refused(database.reads.select().from(notes).where(eq(notes.id, 8001)).for("update"));
      expect(await database.db.select().from(notes).where(eq(notes.id, 8100))).toEqual([]);

      // A table lock (DDL) holds each read for at most the read pool's lock_timeout (250 ms), answered
      // UNAVAILABLE; sixteen reads, eight pipelined on each of the two connections, all settle within
      // eight such waits.
      const lock = await lockNotes(locker, 5000);
      try {
        const t1 = performance.now();
        const outcomes = await Promise.all(
          Array.from({ length: 16 }, (_, i) =>
            byId(8000 + i).then(
              () => "answered",
              (e: unknown) => (toWireStatus(e).code === 14 ? "unavailable" : String(e)),
            ),
          ),
        );
        const waitedMs = performance.now() - t1;
        expect(outcomes).toEqual(Array(16).fill("unavailable"));
        expect(waitedMs).toBeGreaterThan(200);
        expect(waitedMs).toBeLessThan(3000);
      } finally {
        lock.release();
        await lock.done;
      }
      // Still serving, and a read whose caller gives up is stopped on the server, as on the main pool.
      expect((await byId(8001))[0]?.body).toBe("n1");
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      await expect(
        call.run(ac.signal, async () => await database.reads.execute(sql`select pg_sleep(10)`)),
      ).rejects.toSatisfy(isQueryCancelled);
      await new Promise((r) => setTimeout(r, 200));
      const sleeping = await watcher`
        select count(*)::int as n from pg_stat_activity
        where application_name = 'readpooltest reads' and state = 'active' and query like '%pg_sleep(10)%'`;
      expect(sleeping[0]!.n).toBe(0);
    } finally {
      await locker.end();
      await watcher.end();
      await database.close();
    }
  }, 30_000);

  it("opens no more connections than DATABASE_URL's max, the cancel connection counted, and uses both pools within it", async () => {
    const withMax = new URL(url);
    withMax.searchParams.set("max", "3");
    const call = new AsyncLocalStorage<AbortSignal>();
    const database = await openDatabase({
      service: "budgettest",
      url: withMax.toString(),
      schema,
      migrationsFolder,
      poolSize: 10,
      readPoolSize: 5,
      signal: () => call.getStore(),
    });
    const watcher = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await database.db.insert(notes).values({ id: 9500, body: "budget" });
      // Twelve statements on each pool at once, and one of them given up on (a cancel goes out).
      const ac = new AbortController();
      const sleeps = [
        ...Array.from({ length: 12 }, () => database.db.execute(sql`select pg_sleep(0.3)`)),
        ...Array.from({ length: 12 }, () => database.reads.select().from(notes).where(eq(notes.id, 9500))),
        ...Array.from({ length: 12 }, () => database.reads.execute(sql`select pg_sleep(0.3)`)),
      ].map(outcome);
      const abandoned = outcome(
        call.run(ac.signal, async () => await database.db.execute(sql`select pg_sleep(5)`)),
      );
      const seen: Record<string, number>[] = [];
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (i === 3) ac.abort();
        const rows = await watcher<{ name: string; n: number }[]>`
          select application_name as name, count(*)::int as n from pg_stat_activity
          where datname = ${dbName} and application_name like 'budgettest%' group by 1`;
        seen.push(Object.fromEntries(rows.map((r) => [r.name, r.n])));
      }
      expect(await Promise.all(sleeps)).toEqual(Array(36).fill("answered"));
      expect(await abandoned).toBe("cancelled");
      const most = Math.max(...seen.map((s) => Object.values(s).reduce((a, b) => a + b, 0)));
      expect(most).toBeLessThanOrEqual(3);
      // max=3: one pooled connection, one for reads, one that cancels; each was open.
      for (const name of ["budgettest", "budgettest reads", "budgettest cancels"])
        expect(Math.max(...seen.map((s) => s[name] ?? 0)), name).toBe(1);
    } finally {
      await watcher.end();
      await database.close();
    }
  }, 30_000);

  it("reports a connection the server dropped as DatabaseUnavailableError (UNAVAILABLE), then reconnects", async () => {
    const database = await openDatabase({ service: "droptest", url, schema, migrationsFolder });
    const admin = postgres(adminUrl!, { max: 1, onnotice: () => {} });
    try {
      const sleeping = database.db.execute(sql`select pg_sleep(5)`).then(
        () => undefined,
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 200));
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'droptest' and query like '%pg_sleep(5)%'`;
      const err = await sleeping;
      expect(isDatabaseUnavailable(err)).toBe(true);
      // The gate then answers at once until its probe (every 250 ms) finds the database again.
      const t0 = performance.now();
      for (;;) {
        try {
          await database.ping();
          break;
        } catch (e) {
          expect(isDatabaseUnavailable(e)).toBe(true);
          expect(performance.now() - t0).toBeLessThan(2000);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    } finally {
      await admin.end();
      await database.close();
    }
  });
});

describe.runIf(adminUrl)("migrations run apart from the service (MIGRATIONS=wait | only)", () => {
  it("holds a waiting service's start until a migrate run has applied every migration", async () => {
    const name = `dispatch_test_migrate_${process.pid}_${Date.now()}`;
    const admin = postgres(adminUrl!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${name}"`);
    const u = new URL(adminUrl!);
    u.pathname = `/${name}`;
    const saved = process.env.MIGRATIONS;
    try {
      process.env.MIGRATIONS = "wait";
      let opened = false;
      const waiting = openDatabase({ service: "test", url: u.toString(), schema, migrationsFolder }).then(
        (d) => {
          opened = true;
          return d;
        },
      );
      await new Promise((r) => setTimeout(r, 1500));
      expect(opened).toBe(false);

      process.env.MIGRATIONS = "only";
      const err = await openDatabase({ service: "test", url: u.toString(), schema, migrationsFolder }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.name).toBe("MigrationsApplied");

      const database = await waiting;
      expect(opened).toBe(true);
      await database.db.insert(notes).values({ id: 1, body: "schema is there" });
      await database.close();

      process.env.MIGRATIONS = "sometimes";
      await expect(
        openDatabase({ service: "test", url: u.toString(), schema, migrationsFolder }),
      ).rejects.toThrow("MIGRATIONS must be apply, wait or only");
    } finally {
      if (saved === undefined) delete process.env.MIGRATIONS;
      else process.env.MIGRATIONS = saved;
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    }
  });
});
