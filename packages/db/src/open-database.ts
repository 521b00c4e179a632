import { mkdirSync } from "node:fs";
import { gauge } from "@dispatch/runtime";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { Canceller, cancellable, DatabaseGate, StatementSlots } from "./cancellation.ts";
import { pgliteOptions } from "./pglite-options.ts";

const poolSize = gauge(
  "dispatch_db_pool_size",
  "PostgreSQL connections the pools may open (their max: the pool's and the read pool's).",
);

/**
 * Statements the read pool hands a connection at once. The main pool hands each connection one
 * (StatementSlots): there a statement may wait on a lock, and those queued behind it on the same
 * connection would wait too, past their callers, since a statement that shares its connection is never
 * cancelled on the server (cancelsCleanly). The read pool's statements take no row locks (its
 * connections are read-only), so under load postgres.js may pipeline up to this many on a connection:
 * one write and one wake-up of the backend for several statements. postgres.js hands a statement to an
 * idle connection first and pipelines only when none is idle, so the fewer the connections, the more
 * statements share a write. `pnpm bench:ab` (docs/BENCHMARKS-ROUNDS.md, "Twenty-eighth round" and
 * "Twenty-ninth round"), orders' active orders at 2,000 calls/s: a read pool of 5 at a depth of 4 against
 * none, PostgreSQL's CPU per call 299-323 -> 197-198 µs and the rate reached 1,420-1,655 ->
 * 1,766-1,999 calls/s; then 2 at a depth of 8 against 5 at 4, PostgreSQL 154 / 154 -> 116 / 124 µs a
 * call at the same rate reached and the same CPU in orders, with three connections fewer.
 * What could still hold a read is a table lock (DDL): READ_LOCK_TIMEOUT_MS bounds each statement's wait
 * for one, so a connection's pipeline drains within READ_PIPELINE_DEPTH times that (2 s), whether or not
 * its callers are still there.
 */
const READ_PIPELINE_DEPTH = 8;

/** lock_timeout of the read pool's connections (see READ_PIPELINE_DEPTH): the wait ends as UNAVAILABLE. */
const READ_LOCK_TIMEOUT_MS = 250;

/** The pools' sizes a service opens to PostgreSQL, after DATABASE_URL's `max` (see connectionBudget). */
export interface PoolSizes {
  pool: number;
  readPool: number;
}

/**
 * The most connections one process opens to its database is DATABASE_URL's `max` (postgres.js' own URL
 * parameter) when it has one, all counted: the pool, the read pool and the one connection that cancels
 * statements. A deployment sizes it so that every pod, at its autoscaler's maximum and during a rollout,
 * fits the server's `max_connections` (README, "Kubernetes"). The statements' share (`max` - 1) is split
 * between the pool and the read pool as the service's own sizes split it, a read pool of at least one
 * when there is room for both; with `max=2` there is no read pool and reads use the pool. Without `max`,
 * the service's own sizes: pool + read pool + 1.
 */
export function connectionBudget(url: string, own: PoolSizes): PoolSizes {
  // The query string alone: a URL with several hosts (`postgres://a:5432,b:5432/db`, which postgres.js
  // takes) is no WHATWG URL, and its `max` must count as well.
  const query = url.indexOf("?");
  const raw = query < 0 ? null : new URLSearchParams(url.slice(query + 1)).get("max");
  if (raw === null) return own;
  const max = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(max >= 2))
    throw new Error(
      `DATABASE_URL: max=${JSON.stringify(raw)} is not a connection count this service can run on: give a whole number, 2 or more (the pool's connections and the one that cancels statements)`,
    );
  const statements = max - 1;
  if (own.readPool === 0 || statements < 2) return { pool: statements, readPool: 0 };
  const readPool = Math.max(1, Math.floor((statements * own.readPool) / (own.pool + own.readPool)));
  return { pool: statements - readPool, readPool };
}

export interface OpenDatabaseOptions<TSchema extends Record<string, unknown>> {
  /** The owning service, for connection names in pg_stat_activity. */
  service: string;
  /** DATABASE_URL. Set: real PostgreSQL through postgres.js. Unset: embedded PGlite. */
  url?: string | undefined;
  /** PGlite's data directory (created if missing); "memory://" or unset keeps it in memory. */
  dataDir?: string | undefined;
  schema: TSchema;
  /** drizzle-kit's output folder; pending migrations are applied before this resolves. */
  migrationsFolder: string;
  /** Maximum PostgreSQL connections. Default 10. DATABASE_URL's `max` overrides it (connectionBudget). */
  poolSize?: number;
  /** PostgreSQL statement_timeout for every statement. Default 5000 ms. */
  statementTimeoutMs?: number;
  /**
   * PostgreSQL connections of a second pool for reads (`Database.reads`), read-only, whose statements
   * may share a connection (see READ_PIPELINE_DEPTH). Default 0: no such pool, `reads` is `db`.
   */
  readPoolSize?: number;
  /** The current call's signal; queries issued under it are cancelled when it aborts (PostgreSQL only). */
  signal?: () => AbortSignal | undefined;
  /** Called with every SQL statement drizzle sends (tests, debugging); parameters are not passed. */
  onQuery?: (sql: string) => void;
}

export interface Database<TSchema extends Record<string, unknown>> {
  /** drizzle, typed by the schema; the same API on both drivers. */
  db: PgDatabase<PgQueryResultHKT, TSchema>;
  /**
   * drizzle over the read pool (`readPoolSize`), for single statements that only read: its connections
   * are read-only, so a write or a row lock (`for update`) there fails. `db` itself without a read pool
   * and on PGlite. Not for reads that must see a transaction's own writes: those go through the transaction.
   */
  reads: PgDatabase<PgQueryResultHKT, TSchema>;
  kind: "postgres" | "pglite";
  /** Runs `select 1`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The rows of drizzle's `execute()`: returned directly on postgres.js, as `{ rows }` on PGlite. */
export function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/** A json value computed in SQL (`json_agg`, say): text from postgres.js, already parsed from PGlite. */
export function jsonValue<T>(value: unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

/** Opens the service's database, applies its migrations, and returns drizzle over it. */
export async function openDatabase<TSchema extends Record<string, unknown>>(
  opts: OpenDatabaseOptions<TSchema>,
): Promise<Database<TSchema>> {
  const logger = opts.onQuery ? { logQuery: (query: string) => opts.onQuery!(query) } : undefined;
  if (opts.url) {
    const url = opts.url;
    const { pool, readPool } = connectionBudget(url, {
      pool: opts.poolSize ?? 10,
      readPool: opts.readPoolSize ?? 0,
    });
    const statementTimeout = opts.statementTimeoutMs ?? 5000;
    // The pool and the read pool: the same server settings and reconnection, their own name and size.
    const pooled = (name: string, max: number, connection: Record<string, string | number | boolean>) =>
      postgres(url, {
        max,
        connection: { application_name: name, statement_timeout: statementTimeout, ...connection },
        onnotice: () => {},
        // While the database is away, queries wait for the next connection attempt: keep those attempts
        // close together (postgres.js backs off up to 20 s) so calls fail fast and recover fast.
        connect_timeout: 3,
        backoff: (retries: number) => Math.min(0.5, 0.05 * 2 ** retries) * (0.5 + Math.random() / 2),
      });
    const client = pooled(opts.service, pool, { idle_in_transaction_session_timeout: 60_000 });
    // One more connection, for cancelling statements whose callers have gone (see Canceller).
    const cancels = postgres(url, {
      max: 1,
      idle_timeout: 0,
      connection: { application_name: `${opts.service} cancels` },
      onnotice: () => {},
      connect_timeout: 3,
    });
    const readClient =
      readPool > 0
        ? pooled(`${opts.service} reads`, readPool, {
            lock_timeout: READ_LOCK_TIMEOUT_MS,
            default_transaction_read_only: true,
          })
        : undefined;
    const end = (timeout: number) =>
      Promise.all([client.end({ timeout }), cancels.end({ timeout }), readClient?.end({ timeout })]).then(
        () => {},
      );
    // Pool usage: dispatch_db_queries_in_flight against this (postgres.js exposes no pool counters).
    poolSize.set(pool + readPool);
    const gate = new DatabaseGate(() => withTimeout(client`select 1`, 1000, "database probe"));
    const canceller = new Canceller(cancels);
    const signal = opts.signal ?? (() => undefined);
    // drizzle over a pool whose statements cancel with their call, at most `slots` handed to it at once.
    const over = (sqlClient: postgres.Sql, slots: number) =>
      drizzlePostgres(cancellable(sqlClient, signal, gate, new StatementSlots(slots), canceller), {
        schema: opts.schema,
        ...(logger ? { logger } : {}),
      });
    const db = over(client, pool);
    const reads = readClient ? over(readClient, readPool * READ_PIPELINE_DEPTH) : db;
    try {
      const mode = migrationMode();
      if (mode === "wait") await waitForMigrations(client, opts.migrationsFolder, opts.service);
      else await migratePostgres(db, { migrationsFolder: opts.migrationsFolder });
      if (mode === "only") throw new MigrationsApplied(opts.service);
    } catch (err) {
      await end(1);
      throw err;
    }
    // Opened now, not at the first cancellation: a new backend takes tens of ms to start (over 100 ms
    // just after migrations, on this machine), and the first callers to give up would wait for it.
    // Not awaited, so start-up does not; if the database is away, the first cancel opens it again.
    cancels`select 1`.catch(() => {});
    return {
      db: db as unknown as PgDatabase<PgQueryResultHKT, TSchema>,
      reads: reads as unknown as PgDatabase<PgQueryResultHKT, TSchema>,
      kind: "postgres",
      ping: () => withTimeout(db.execute(sql`select 1`), 1000, "database ping"),
      close: () => {
        gate.close();
        return end(5);
      },
    };
  }

  // Loaded only when used: a service with DATABASE_URL never pays for PGlite, and the bundled images
  // (which always run against PostgreSQL) leave it out.
  const [{ PGlite }, { drizzle: drizzlePglite }, { migrate: migratePglite }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("drizzle-orm/pglite"),
    import("drizzle-orm/pglite/migrator"),
  ]).catch((err: unknown) => {
    throw new Error(
      `${opts.service}: DATABASE_URL is not set and the embedded PGlite is not part of this build; set DATABASE_URL`,
      { cause: err },
    );
  });
  const inMemory = !opts.dataDir || opts.dataDir === "memory://";
  if (!inMemory) mkdirSync(opts.dataDir!, { recursive: true });
  const options = pgliteOptions(PGlite.defaultStartParams);
  const client = inMemory ? new PGlite(options) : new PGlite(opts.dataDir, options);
  const db = drizzlePglite(client, { schema: opts.schema, ...(logger ? { logger } : {}) });
  try {
    await migratePglite(db, { migrationsFolder: opts.migrationsFolder });
  } catch (err) {
    await client.close();
    throw err;
  }
  return {
    db: db as unknown as PgDatabase<PgQueryResultHKT, TSchema>,
    reads: db as unknown as PgDatabase<PgQueryResultHKT, TSchema>,
    kind: "pglite",
    ping: async () => void (await db.execute(sql`select 1`)),
    close: () => client.close(),
  };
}

/** Resolves when `work` does, or rejects after `ms`: a readiness probe must answer even when the database does not. */
async function withTimeout(work: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * MIGRATIONS (PostgreSQL only): "apply" (default) applies pending migrations at start; "wait" leaves
 * them to someone else (a Kubernetes Job running `main.mjs migrate`) and holds start-up until the
 * database has every migration this build ships, so a pod never serves an older schema; "only"
 * (set by `main.mjs migrate`) applies them and stops.
 */
function migrationMode(): "apply" | "wait" | "only" {
  const mode = process.env.MIGRATIONS ?? "apply";
  if (mode === "apply" || mode === "wait" || mode === "only") return mode;
  throw new Error(`MIGRATIONS must be apply, wait or only (got ${JSON.stringify(mode)})`);
}

/** Thrown after `MIGRATIONS=only` applied the migrations: the program's work is done (runMain exits 0). */
export class MigrationsApplied extends Error {
  override readonly name = "MigrationsApplied";
  constructor(service: string) {
    super(`${service}: migrations applied`);
  }
}

async function waitForMigrations(client: postgres.Sql, folder: string, service: string): Promise<void> {
  const want = readMigrationFiles({ migrationsFolder: folder }).map((m) => m.hash);
  for (let logged = false; ; ) {
    const have = await client<{ hash: string }[]>`select hash from drizzle.__drizzle_migrations`.then(
      (rows) => new Set(rows.map((r) => r.hash)),
      () => new Set<string>(),
    );
    if (want.every((h) => have.has(h))) return;
    if (!logged) {
      console.error(
        `${service}: waiting for ${want.length - have.size} migration(s) to be applied (MIGRATIONS=wait)`,
      );
      logged = true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
