import { Code } from "@connectrpc/connect";
import { createClient } from "@dispatch/client";
import { OrdersService } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { createTestDatabase, startServiceProcess, testClient } from "@dispatch/testing";
import postgres from "postgres";
import { expect, it } from "vitest";
import {
  demoMenu,
  type Outcome,
  onCleanup,
  openLoop,
  record,
  round,
  sleep,
  ThrowawayPostgres,
} from "./harness.ts";

/**
 * Scenario 4 — database restart. Orders runs on a PostgreSQL of the test's own, which is stopped (fast
 * shutdown) for 4 s under 50 PlaceOrder calls/s and started again. Bars: calls fail with UNAVAILABLE
 * (never INTERNAL, no crash); health is NOT_SERVING while the database is gone; orders recovers by itself
 * within 5 s of PostgreSQL being back; every order acknowledged before the fault is still there.
 */
it("orders rides out a PostgreSQL restart: UNAVAILABLE, NOT_SERVING, back within 5 s, nothing lost", async () => {
  const pg = await ThrowawayPostgres.start();
  const ordersUrl = await pg.createDatabase("orders");
  const catalogDb = await createTestDatabase("dispatch_fault_catalog");
  onCleanup(() => catalogDb.drop());
  const catalog = await startServiceProcess("catalog", { DATABASE_URL: catalogDb.url });
  onCleanup(() => catalog.stop());
  const menu = await demoMenu(catalog.port);
  const orders = await startServiceProcess("orders", {
    DATABASE_URL: ordersUrl,
    CATALOG_URL: `127.0.0.1:${catalog.port}`,
  });
  onCleanup(() => orders.stop());
  const client = createClient(OrdersService, { target: `127.0.0.1:${orders.port}`, name: "orders" });
  const health = testClient(Health, orders.port);

  const t0 = performance.now();
  const outcomes: (Outcome & { orderId?: string })[] = [];
  const statuses: { at: number; status: string }[] = [];
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const at = performance.now() - t0;
      try {
        const r = await health.check({ service: "" }, { timeoutMs: 500 });
        statuses.push({ at, status: HealthCheckResponse_ServingStatus[r.status] });
      } catch (err) {
        statuses.push({ at, status: `error ${String(err)}` });
      }
      await sleep(100);
    }
  })();

  const place = async (i: number) => {
    const at = performance.now() - t0;
    const started = performance.now();
    try {
      const { order } = await client.placeOrder({
        requestId: `fault-db-${i}-${t0.toFixed(0)}`,
        userId: `db-user-${i % 20}`,
        restaurantId: menu.restaurantId,
        items: [{ menuItemId: menu.itemIds[0]!, quantity: 1 }],
        deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" },
      });
      outcomes.push({ at, ms: performance.now() - started, code: 0, orderId: order!.id });
    } catch (err) {
      const e = err as { code: Code; rawMessage: string };
      outcomes.push({ at, ms: performance.now() - started, code: e.code, message: e.rawMessage });
    }
  };
  const load = openLoop(50, 14_000, place);
  await sleep(3000);
  const stoppedAt = performance.now() - t0;
  await pg.stop();
  const downAt = performance.now() - t0;
  await sleep(4000);
  await pg.start();
  const backAt = performance.now() - t0;
  await load;
  await sleep(2500);
  polling = false;
  await poll;

  const during = outcomes.filter((o) => o.at > downAt + 100 && o.at < backAt - 100);
  const failedCodes = [...new Set(outcomes.filter((o) => o.code !== 0).map((o) => Code[o.code]))];
  const firstOkAfter = outcomes.filter((o) => o.code === 0 && o.at > backAt).sort((a, b) => a.at - b.at)[0];
  const notServing = statuses.filter((s) => s.status === "NOT_SERVING");
  const servingAgain = statuses.find((s) => s.at > backAt && s.status === "SERVING");
  const acknowledged = outcomes.filter((o) => o.code === 0).map((o) => o.orderId!);
  const acknowledgedBefore = outcomes
    .filter((o) => o.code === 0 && o.at + o.ms < stoppedAt)
    .map((o) => o.orderId!);
  const sql = postgres(ordersUrl, { max: 1, onnotice: () => {} });
  const [{ n }] =
    (await sql`select count(*)::int as n from orders where id = any(${acknowledged})`) as unknown as [
      { n: number },
    ];
  await sql.end();

  const figures = {
    calls: outcomes.length,
    ok: acknowledged.length,
    databaseDownMs: round(backAt - stoppedAt),
    callsWhileDown: during.length,
    codesWhileDown: [...new Set(during.map((o) => Code[o.code] ?? "OK"))],
    failureCodes: failedCodes,
    failureMessages: [
      ...new Set(outcomes.filter((o) => o.code !== 0).map((o) => `${Code[o.code]}: ${o.message}`)),
    ].slice(0, 6),
    healthNotServingSeenMs: notServing.length ? round(notServing[0]!.at - downAt) : null,
    recoveredAfterDatabaseBackMs: firstOkAfter ? round(firstOkAfter.at + firstOkAfter.ms - backAt) : null,
    healthServingAgainAfterMs: servingAgain ? round(servingAgain.at - backAt) : null,
    acknowledgedBeforeFault: acknowledgedBefore.length,
    acknowledgedFoundAfterwards: n,
    processAlive: orders.child.exitCode === null,
  };
  record("4-database-restart", figures);

  expect(during.length).toBeGreaterThan(100);
  // Any other code is a server fault: orders logged it in full ("rpc failed unexpectedly"), shown on failure.
  const logged = orders
    .output()
    .split("\n")
    .filter((line) => line.includes("unexpectedly"))
    .slice(0, 3)
    .join("\n");
  expect(figures.codesWhileDown, logged).toEqual(["Unavailable"]);
  expect(failedCodes, logged).toEqual(["Unavailable"]);
  expect(notServing.length).toBeGreaterThan(0);
  expect(figures.recoveredAfterDatabaseBackMs!).toBeLessThanOrEqual(5000);
  expect(figures.healthServingAgainAfterMs!).toBeLessThanOrEqual(5000);
  expect(acknowledgedBefore.length).toBeGreaterThan(100);
  expect(n).toBe(acknowledged.length);
  expect(figures.processAlive).toBe(true);
});
