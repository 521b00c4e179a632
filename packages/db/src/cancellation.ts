import { dbSpan, gauge, histogram } from "@dispatch/runtime";
import type postgres from "postgres";

/** Postgres' SQLSTATE for a statement cancelled on request. */
const QUERY_CANCELED = "57014";

/** Thrown instead of the driver's error when the caller's signal cancelled the query. */
export class QueryCancelledError extends Error {
  override name = "AbortError";
  constructor(cause: unknown) {
    super("query cancelled: the call it served was cancelled or ran out of time", { cause });
  }
}

/** True for a query cancelled by its call's signal, also when drizzle wrapped it ("Failed query: …"). */
/**
 * The database could not be reached or dropped the connection. `grpcCode` 14 (UNAVAILABLE) tells the
 * runtime to answer UNAVAILABLE, so callers retry instead of treating it as a bug.
 */
export class DatabaseUnavailableError extends Error {
  override name = "DatabaseUnavailableError";
  readonly grpcCode = 14;
  constructor(cause: unknown) {
    super(`database unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/**
 * PostgreSQL stopped the statement itself: it ran past `statement_timeout`, or waited past `lock_timeout`
 * (or another session cancelled it). The database is up and the statement was too slow this time, as
 * under overload: `grpcCode` 14 (UNAVAILABLE) tells callers they may retry with backoff, where INTERNAL
 * would say our code is wrong. Unlike DatabaseUnavailableError it does not close the database gate: the
 * next statement may well be quick.
 */
export class StatementTimeoutError extends Error {
  override name = "StatementTimeoutError";
  readonly grpcCode = 14;
  constructor(cause: unknown) {
    super(`database statement stopped: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

// SQLSTATEs of a statement PostgreSQL stopped: query_canceled (statement_timeout), lock_not_available.
const STOPPED = new Set([QUERY_CANCELED, "55P03"]);

// Connection-level failures (postgres.js codes and SQLSTATE classes 08, 57P0x): the database, not the query.
const UNAVAILABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DatabaseUnavailableError) return true;
  }
  return false;
}

export function isQueryCancelled(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof QueryCancelledError) return true;
  }
  return false;
}

type PendingQuery = postgres.PendingQuery<postgres.Row[]>;

/**
 * Wraps a postgres.js client so every query drizzle sends (including inside transactions and savepoints)
 * is never sent once the current call's signal has aborted, and is cancelled on the server when it
 * aborts: at once when that is safe, else as soon as it is (see cancelsCleanly() and abandon()); the
 * call stops waiting either way. With `slots`, statements outside transactions wait for a free
 * connection here rather than being pipelined by postgres.js (see StatementSlots).
 *
 * It also makes every parameterised statement a named prepared statement. drizzle sends its queries
 * through `unsafe()`, which postgres.js runs as an unnamed statement: two round trips (Parse/Describe,
 * then Bind/Execute) and a fresh parse and plan in PostgreSQL every time. Named, each connection parses a
 * query text once and then runs it in one round trip on a cached plan (`pnpm bench:mobile`: PostgreSQL's
 * CPU per active-orders call fell from ~790 µs to ~290 µs). drizzle's SQL text carries values as
 * parameters, so the statements a connection keeps are bounded by the queries in the code. Statements
 * without parameters (migrations, `select 1`) still go as simple queries.
 */
export function cancellable<T extends postgres.Sql>(
  sql: T,
  currentSignal: () => AbortSignal | undefined,
  gate: DatabaseGate = new DatabaseGate(),
  slots?: StatementSlots,
  canceller: Canceller = new Canceller(),
): T {
  return new Proxy(sql, {
    get(target, prop) {
      if (prop === "unsafe") {
        return (query: string, params?: unknown[], options?: unknown) =>
          timed(
            gate.watch(
              track(
                target.unsafe(
                  query,
                  params as never,
                  {
                    ...(options as object),
                    prepare: true,
                  } as never,
                ) as unknown as PendingQuery,
                gate.down ? gate.error() : currentSignal(),
                slots,
                canceller,
              ),
            ),
            query,
          );
      }
      if (prop === "begin" || prop === "savepoint") {
        return (...args: unknown[]) => {
          if (prop === "begin" && gate.down) return Promise.reject(gate.error());
          const body = args.pop() as (tx: postgres.Sql) => unknown;
          const method = (target as unknown as Record<string, (...a: unknown[]) => unknown>)[prop]!;
          // BEGIN itself fails like any query when the database is gone.
          return (
            method.call(target, ...args, (tx: postgres.Sql) =>
              body(cancellable(tx, currentSignal, gate, undefined, canceller)),
            ) as Promise<unknown>
          ).catch((err: unknown) => {
            throw classify(err);
          });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * The database's own circuit breaker: after a query finds the database unreachable, queries fail at once
 * with DatabaseUnavailableError (instead of queueing behind postgres.js' reconnect attempts until their
 * deadline) while a probe checks every `probeMs` whether it is back.
 */
export class DatabaseGate {
  down = false;
  private probing: NodeJS.Timeout | undefined;
  private lastCause: unknown;

  constructor(
    private readonly probe: () => Promise<void> = async () => {},
    private readonly probeMs = 250,
  ) {}

  error(): DatabaseUnavailableError {
    return new DatabaseUnavailableError(this.lastCause ?? new Error("database unreachable"));
  }

  /** Notes whether a query found the database unreachable. */
  watch(query: PendingQuery): PendingQuery {
    const then = query.then.bind(query);
    // biome-ignore lint/suspicious/noThenProperty: observe the outcome of the query drizzle awaits
    query.then = ((resolve?: (v: unknown) => unknown, reject?: (e: unknown) => unknown) =>
      then(resolve, (err: unknown) => {
        if (err instanceof DatabaseUnavailableError && !this.down) this.trip(err.cause);
        if (reject) return reject(err);
        throw err;
      })) as PendingQuery["then"];
    return query;
  }

  private trip(cause: unknown): void {
    this.down = true;
    unavailable.set(1);
    this.lastCause = cause;
    const tick = async () => {
      try {
        await this.probe();
        this.down = false;
        unavailable.set(0);
        this.probing = undefined;
      } catch (err) {
        this.lastCause = err;
        this.probing = setTimeout(tick, this.probeMs);
        this.probing.unref();
      }
    };
    this.probing = setTimeout(tick, this.probeMs);
    this.probing.unref();
  }

  close(): void {
    clearTimeout(this.probing);
  }
}

/**
 * How many statements the pool's connections hold at once: at most one each (its `size`). postgres.js
 * pipelines a statement onto a busy connection when none is free, and a pipelined statement cannot be
 * cancelled (a CancelRequest stops whatever its backend runs when it lands): behind one that waits on a
 * lock, the whole pipeline waited for the lock after its callers had gone. A statement beyond the limit
 * waits here instead, where a cancelled call just leaves the queue; it reaches postgres.js when another
 * settles. Statements of a transaction do not take a slot: they run on the connection the transaction
 * holds, one at a time.
 */
export class StatementSlots {
  private used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(readonly size: number) {}

  /** Runs `start` now if a slot is free, else when one is; returns a withdraw function while it waits. */
  take(start: () => void): (() => void) | undefined {
    if (this.used < this.size) {
      this.used++;
      start();
      return undefined;
    }
    this.waiting.add(start);
    return () => this.waiting.delete(start);
  }

  release(): void {
    const next = this.waiting.values().next();
    if (next.done) {
      this.used--;
      return;
    }
    this.waiting.delete(next.value);
    next.value();
  }
}

function track(
  query: PendingQuery,
  signal: AbortSignal | DatabaseUnavailableError | undefined,
  slots: StatementSlots | undefined,
  canceller: Canceller,
): PendingQuery {
  if (signal instanceof DatabaseUnavailableError) {
    // The database is known to be down: answer without sending.
    // biome-ignore lint/suspicious/noThenProperty: the query must stay a postgres.js PendingQuery for drizzle
    query.then = ((_resolve: unknown, reject?: (e: unknown) => unknown) =>
      Promise.reject(signal).then(undefined, reject)) as PendingQuery["then"];
    return query;
  }
  if (signal?.aborted) {
    // Not sent: postgres.js runs a query only when it is awaited, so answering first is enough.
    const error = new QueryCancelledError(signal.reason);
    // biome-ignore lint/suspicious/noThenProperty: the query must stay a postgres.js PendingQuery for drizzle
    query.then = ((_resolve: unknown, reject?: (e: unknown) => unknown) =>
      Promise.reject(error).then(undefined, reject)) as PendingQuery["then"];
    return query;
  }
  const then = query.then.bind(query);
  // biome-ignore lint/suspicious/noThenProperty: settle hooks on the query drizzle awaits
  query.then = ((resolve?: (v: unknown) => unknown, reject?: (e: unknown) => unknown) =>
    new Promise((settle, fail) => {
      let abandoned = false;
      let withdraw: (() => void) | undefined;
      const finish = () => {
        unsettled.delete(query);
        slots?.release();
        signal?.removeEventListener("abort", onAbort);
      };
      const send = () => {
        withdraw = undefined;
        unsettled.set(query, performance.now());
        then(
          (rows) => {
            finish();
            if (!abandoned) settle(rows);
          },
          (err: unknown) => {
            finish();
            if (abandoned) return;
            fail(
              signal?.aborted && (err as { code?: string }).code === QUERY_CANCELED
                ? new QueryCancelledError(err)
                : classify(err),
            );
          },
        );
      };
      const onAbort = () => {
        if (withdraw) {
          // Still waiting for a slot: never handed to postgres.js, so nothing to stop.
          withdraw();
          fail(new QueryCancelledError(signal!.reason));
          return;
        }
        if (cancelsCleanly(query, unsettled.get(query)!)) {
          // Cancelled in its backend; postgres.js rejects it with 57014, mapped above.
          canceller.cancel(query);
          return;
        }
        // Not yet running on its connection, or running only a moment, or sharing the connection: the
        // caller stops waiting now and the statement is cancelled once that is safe (see abandon()).
        abandoned = true;
        abandon(query, canceller);
        fail(new QueryCancelledError(signal!.reason));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (slots) withdraw = slots.take(send);
      else send();
    }).then(resolve, reject)) as PendingQuery["then"];
  return query;
}

/**
 * Statements younger than this are not cancelled on the server yet: a CancelRequest takes a new
 * connection and a round trip, and one that lands after its statement ended stops the next one.
 */
const CANCEL_AFTER_MS = 20;

/**
 * Every statement handed to postgres.js through cancellable() and not yet settled (any connection), with
 * when it was handed over.
 */
const unsettled = new Map<PendingQuery, number>();

/**
 * A CancelRequest stops whatever the backend runs when it arrives, so it is sent only for a statement
 * that is running on its connection (postgres.js' `active`; not queued for a connection that is still
 * opening, nor pipelined behind another), has run CANCEL_AFTER_MS since `since`, and is the only
 * unsettled statement on that connection: inside a pipeline a cancel made neighbours fail, read another
 * statement's rows or never settle.
 */
function cancelsCleanly(query: PendingQuery, since: number): boolean {
  return running(query) && performance.now() - since >= CANCEL_AFTER_MS && alone(query);
}

/**
 * Statements whose callers have gone but that could not be cancelled at that moment, with since when
 * each has been running on its connection (undefined until it is seen running). A sweep every
 * SWEEP_MS cancels each once cancelsCleanly() allows: a statement that was still waiting for its
 * connection to open, or was young, or queued behind another, does not run on for its full length
 * (behind a lock: until the lock is released). Short ones settle before that and are just dropped.
 */
const abandoned = new Map<PendingQuery, { since: number | undefined; canceller: Canceller }>();
const SWEEP_MS = 10;
let sweeper: NodeJS.Timeout | undefined;

function abandon(query: PendingQuery, canceller: Canceller): void {
  abandoned.set(query, { since: running(query) ? unsettled.get(query) : undefined, canceller });
  if (!sweeper) {
    sweeper = setInterval(sweep, SWEEP_MS);
    sweeper.unref();
  }
}

function sweep(): void {
  for (const [query, entry] of abandoned) {
    if (!unsettled.has(query)) {
      abandoned.delete(query);
    } else if (entry.since === undefined) {
      if (running(query)) entry.since = performance.now();
    } else if (cancelsCleanly(query, entry.since)) {
      abandoned.delete(query);
      entry.canceller.cancel(query);
    }
  }
  if (abandoned.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/**
 * Sends the cancellations of one pool. postgres.js' own `cancel()` is a CancelRequest on a new connection,
 * and PostgreSQL forks a backend for each: at one deadline, ten callers' statements took up to 135 ms to
 * be stopped on this machine (the last fork of ten; 7–10 ms for one alone). With a connection of its own
 * (`sql`, one connection, kept open), the statements to stop within one turn of the event loop go as one
 * `pg_cancel_backend` over it: SIGINT to the same backends (by the pid postgres.js learnt at connect),
 * one round trip for all. It is also the cleaner signal: `pg_cancel_backend` sends one SIGINT, while the
 * process PostgreSQL 15 forks for a CancelRequest sends two, to the backend and then to its process
 * group (`strace` on the postmaster shows both). Usually they merge; when that process is preempted
 * between them, the second can stop the statement the connection runs next. Without a connection of its
 * own, or if that statement fails (the database away), each falls back to postgres.js' CancelRequest.
 */
export class Canceller {
  private readonly batch = new Map<number, PendingQuery>();

  constructor(private readonly sql?: postgres.Sql) {}

  cancel(query: PendingQuery): void {
    const pid = (backendOf(query) as { pid?: unknown } | undefined)?.pid;
    if (!this.sql || typeof pid !== "number") {
      void query.cancel();
      return;
    }
    if (this.batch.size === 0) setImmediate(() => this.flush());
    this.batch.set(pid, query);
  }

  private flush(): void {
    // A statement that settled since it was chosen is left alone: its backend may run the next one now.
    const chosen = [...this.batch].filter(([, q]) => unsettled.has(q) && running(q));
    this.batch.clear();
    if (chosen.length === 0) return;
    const queries = chosen.map(([, q]) => q);
    const pids = chosen.map(([pid]) => pid);
    this.sql!`select pg_cancel_backend(pid) from unnest(${pids}::int[]) as pid`.catch(() => {
      for (const q of queries) if (unsettled.has(q)) void q.cancel();
    });
  }
}

/** postgres.js marks a query `active` while it is the one its connection's backend is running. */
function running(query: PendingQuery): boolean {
  return (query as unknown as { active?: boolean }).active === true;
}

/** postgres.js gives a query its connection's backend (`state`, one object per connection) when it sends it. */
function backendOf(query: PendingQuery): unknown {
  return (query as unknown as { state?: unknown }).state ?? undefined;
}

/** No other unsettled statement is on the same connection (none pipelined behind or ahead of it). */
function alone(query: PendingQuery): boolean {
  const backend = backendOf(query);
  if (backend === undefined) return false;
  for (const q of unsettled.keys()) if (q !== query && backendOf(q) === backend) return false;
  return true;
}

function classify(err: unknown): unknown {
  if (
    err instanceof DatabaseUnavailableError ||
    err instanceof QueryCancelledError ||
    err instanceof StatementTimeoutError
  )
    return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== "string") return err;
  if (UNAVAILABLE.has(code)) return new DatabaseUnavailableError(err);
  return STOPPED.has(code) ? new StatementTimeoutError(err) : err;
}

const querySeconds = histogram(
  "dispatch_db_query_seconds",
  "PostgreSQL statements by operation (the statement's verb; a WITH statement's main one), from the await to the result (with any wait for a connection).",
  ["operation", "outcome"],
);
const unavailable = gauge(
  "dispatch_db_unavailable",
  "1 while the database gate has found PostgreSQL unreachable and fails queries fast, else 0.",
);
const inFlight = gauge(
  "dispatch_db_queries_in_flight",
  "PostgreSQL statements awaited and not yet answered (also those waiting for a connection).",
);
const OPERATIONS = new Set([
  "select",
  "insert",
  "update",
  "delete",
  "with",
  "begin",
  "commit",
  "rollback",
  "savepoint",
]);

const withVerbs = new Map<string, string>();
const MAIN_VERBS = new Set(["select", "insert", "update", "delete"]);

/**
 * The statement's verb: its first keyword, or for a WITH statement the verb of its main statement (the
 * first select/insert/update/delete outside the parentheses of its CTEs), so a one-statement write built
 * of CTEs counts as the insert it is.
 */
export function operationOf(query: string): string {
  const word = /^\s*(\w+)/.exec(query)?.[1]?.toLowerCase() ?? "";
  if (word === "with") {
    let verb = withVerbs.get(query);
    if (verb === undefined) {
      verb = mainVerb(query) ?? word;
      // The same few texts come back on every call; a service has a handful of WITH statements.
      if (withVerbs.size < 256) withVerbs.set(query, verb);
    }
    return verb;
  }
  return OPERATIONS.has(word) ? word : "other";
}

function mainVerb(query: string): string | undefined {
  let depth = 0;
  let quote = "";
  const words = /[A-Za-z_]+/y;
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (depth === 0 && /[A-Za-z_]/.test(c)) {
      words.lastIndex = i;
      const w = words.exec(query)![0];
      if (MAIN_VERBS.has(w.toLowerCase())) return w.toLowerCase();
      i += w.length - 1;
    }
  }
  return undefined;
}

/** Observes a query's time and outcome when drizzle awaits it. */
function timed(query: PendingQuery, text: string): PendingQuery {
  const then = query.then.bind(query);
  const operation = operationOf(text);
  // biome-ignore lint/suspicious/noThenProperty: time the query drizzle awaits
  query.then = ((resolve?: (v: unknown) => unknown, reject?: (e: unknown) => unknown) => {
    const t0 = performance.now();
    inFlight.inc();
    const span = dbSpan(operation);
    const end = (outcome: string) => {
      inFlight.dec();
      querySeconds.observe({ operation, outcome }, (performance.now() - t0) / 1000);
      if (span) {
        if (outcome !== "ok") span.setStatus({ code: 2, message: outcome });
        span.end();
      }
    };
    return then(
      (v: unknown) => {
        end("ok");
        return resolve ? resolve(v) : v;
      },
      (err: unknown) => {
        end(
          err instanceof QueryCancelledError
            ? "cancelled"
            : err instanceof DatabaseUnavailableError
              ? "unavailable"
              : err instanceof StatementTimeoutError
                ? "timeout"
                : "error",
        );
        if (reject) return reject(err);
        throw err;
      },
    );
  }) as PendingQuery["then"];
  return query;
}
