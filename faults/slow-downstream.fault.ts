import { Code } from "@connectrpc/connect";
import { createClient } from "@dispatch/client";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { createTestDatabase, startServiceProcess } from "@dispatch/testing";
import postgres from "postgres";
import { expect, it } from "vitest";
import { demoMenu, type Outcome, onCleanup, percentile, record, round, sleep, timed } from "./harness.ts";

const DEADLINE_MS = 300;

/**
 * Scenario 3 — slow downstream. Another session holds an exclusive lock on catalog's menu table for
 * 2.5 s, so GetMenu cannot answer before then; callers allow 300 ms. Bars: callers get
 * DEADLINE_EXCEEDED at ~300 ms, and no catalog query (seen in pg_stat_activity) nor handler (seen in
 * catalog's own RPC log) goes on more than 50 ms past the deadline.
 */
it("callers of a slow catalog get DEADLINE_EXCEEDED on time and catalog's SQL stops with them", async () => {
  const db = await createTestDatabase("dispatch_fault_catalog");
  onCleanup(() => db.drop());
  const catalog = await startServiceProcess("catalog", { DATABASE_URL: db.url, LOG_LEVEL: "info" });
  onCleanup(() => catalog.stop());
  const { restaurantId } = await demoMenu(catalog.port);
  const client = createClient(CatalogService, {
    target: `127.0.0.1:${catalog.port}`,
    name: "catalog",
    breaker: { volumeThreshold: 1_000_000 },
  });

  const dbName = new URL(db.url!).pathname.slice(1);
  const locker = postgres(db.url!, { max: 1, onnotice: () => {} });
  const watcher = postgres(db.url!, { max: 1, onnotice: () => {} });
  onCleanup(
    () => locker.end(),
    () => watcher.end(),
  );
  const lockerPid = (await locker`select pg_backend_pid() as pid`)[0]!.pid as number;

  // Catalog's queries waiting on the lock, sampled every 5 ms: when each was last seen, by the server's
  // clock as it read pg_stat_activity (on the same machine as ours), so a late turn of this process's
  // event loop does not count as time the query went on.
  const t0 = performance.now();
  const wallT0 = Date.now();
  const lastSeen = new Map<string, number>();
  let watching = true;
  const watch = (async () => {
    while (watching) {
      const rows = await watcher`
        select pid, query_start, clock_timestamp() as seen from pg_stat_activity
        where datname = ${dbName} and pid <> ${lockerPid} and pid <> pg_backend_pid()
          and state = 'active' and wait_event_type = 'Lock'`;
      for (const r of rows) lastSeen.set(`${r.pid}@${r.query_start.getTime()}`, r.seen.getTime() - wallT0);
      await sleep(5);
    }
  })();

  const outcomes: Outcome[] = [];
  const lockHeld = locker.begin(async (tx) => {
    await tx`lock table menu_items in access exclusive mode`;
    await sleep(2500);
  });
  await sleep(50);
  // Three waves of ten concurrent callers, each with a 300 ms deadline, all inside the lock.
  for (let wave = 0; wave < 3; wave++) {
    await Promise.all(
      Array.from({ length: 10 }, () =>
        timed(t0, outcomes, () => client.getMenu({ restaurantId }, { timeoutMs: DEADLINE_MS })),
      ),
    );
    await sleep(100);
  }
  await lockHeld;
  await sleep(200);
  watching = false;
  await watch;

  // Each waiting query belongs to the last wave sent before it started; its overrun is how long it was
  // still seen waiting after that wave's deadline.
  const waves = [...new Set(outcomes.map((o) => Math.floor(o.at)))].sort((a, b) => a - b);
  const overruns = [...lastSeen.entries()].map(([key, seen]) => {
    const started = Number(key.split("@")[1]) - wallT0;
    const wave = waves.filter((w) => w <= started + 2).at(-1) ?? waves[0]!;
    return seen - (wave + DEADLINE_MS);
  });
  const handlerMs = catalog
    .output()
    .split("\n")
    // the server's own deadline and the caller's RST_STREAM race: either ends the handler
    .filter((l) => l.includes('"method":"GetMenu"') && /"code":"(DeadlineExceeded|Canceled)"/.test(l))
    .map((l) => JSON.parse(l).durationMs as number);
  const figures = {
    calls: outcomes.length,
    deadlineExceeded: outcomes.filter((o) => o.code === Code.DeadlineExceeded).length,
    // any other answer, named, so a failed run says what the odd call got
    otherOutcomes: outcomes
      .filter((o) => o.code !== Code.DeadlineExceeded)
      .map((o) => `${o.code === 0 ? "OK" : Code[o.code]}: ${o.message ?? ""}`),
    callerP50Ms: round(
      percentile(
        outcomes.map((o) => o.ms),
        50,
      ),
    ),
    callerMaxMs: round(Math.max(...outcomes.map((o) => o.ms))),
    queriesSeenWaiting: lastSeen.size,
    maxSqlOverrunMs: round(Math.max(...overruns)),
    handlerLogLines: handlerMs.length,
    maxHandlerMs: round(Math.max(...handlerMs)),
    menuServedAfterLockMs: 0,
  };
  const after = performance.now();
  await client.getMenu({ restaurantId }, { timeoutMs: 1000 });
  figures.menuServedAfterLockMs = round(performance.now() - after);
  record("3-slow-downstream", figures);

  expect(figures.deadlineExceeded).toBe(30);
  expect(figures.callerMaxMs).toBeLessThan(DEADLINE_MS + 60);
  expect(figures.queriesSeenWaiting).toBeGreaterThan(0);
  expect(figures.maxSqlOverrunMs).toBeLessThanOrEqual(50);
  expect(handlerMs).toHaveLength(30);
  expect(figures.maxHandlerMs).toBeLessThanOrEqual(DEADLINE_MS + 50);
});
