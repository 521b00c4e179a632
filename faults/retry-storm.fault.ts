import { Code } from "@connectrpc/connect";
import { attemptsOf, createClient } from "@dispatch/client";
import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { startServiceProcess } from "@dispatch/testing";
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
  timed,
} from "./harness.ts";

/**
 * Scenario 5 — retry storm. Catalog's database is stopped, so catalog answers UNAVAILABLE to everything;
 * 1,000 GetMenu calls (NO_SIDE_EFFECTS, so retried with up to 3 attempts) arrive at 200/s. The breaker is
 * switched off here so only the retry budget stands between the outage and the multiplied load. Bar: once
 * the budget is spent, attempts stay at most ~1.1–1.2× the calls — counted by the client and by
 * catalog's own RPC log.
 */
it("the retry budget keeps attempts near 1.1x the calls while the downstream fails everything", async () => {
  const pg = await ThrowawayPostgres.start();
  const url = await pg.createDatabase("catalog");
  const catalog = await startServiceProcess("catalog", { DATABASE_URL: url, LOG_LEVEL: "info" });
  onCleanup(() => catalog.stop());
  const { restaurantId } = await demoMenu(catalog.port);
  const client = createClient(CatalogService, {
    target: `127.0.0.1:${catalog.port}`,
    name: "catalog",
    breaker: { volumeThreshold: 1_000_000 },
  });
  await pg.stop();
  const arrivals = () =>
    (catalog.output().match(/"method":"GetMenu"[^\n]*"code":"Unavailable"/g) ?? []).length;

  const t0 = performance.now();
  const outcomes: Outcome[] = [];
  let warm = { attempts: 0, arrivals: 0, calls: 0 };
  const sent = await openLoop(200, 5000, async (i) => {
    if (i === 100) warm = { attempts: attemptsOf(client), arrivals: arrivals(), calls: outcomes.length };
    await timed(t0, outcomes, () => client.getMenu({ restaurantId }, { timeoutMs: 2000 }));
  });
  await sleep(500); // catalog's log buffer flushes every 200 ms
  const attempts = attemptsOf(client);
  const seen = arrivals();
  const tailCalls = sent - warm.calls;
  const figures = {
    calls: sent,
    failedUnavailable: outcomes.filter((o) => o.code === Code.Unavailable).length,
    attemptsPerCall: round(attempts / sent, 3),
    attemptsPerCallAfterFirst100: round((attempts - warm.attempts) / tailCalls, 3),
    catalogArrivals: seen,
    catalogArrivalsPerCallAfterFirst100: round((seen - warm.arrivals) / tailCalls, 3),
    withoutBudgetWouldBe: 3,
    codes: Object.fromEntries(
      [...new Set(outcomes.map((o) => o.code))].map((c) => [
        Code[c] ?? "OK",
        outcomes.filter((o) => o.code === c).length,
      ]),
    ),
    messages: [...new Set(outcomes.map((o) => o.message))].slice(0, 4),
  };
  record("5-retry-storm", figures);
  expect(figures.failedUnavailable).toBe(sent);
  expect(figures.attemptsPerCallAfterFirst100).toBeLessThanOrEqual(1.2);
  expect(figures.catalogArrivalsPerCallAfterFirst100).toBeLessThanOrEqual(1.2);
  expect(seen).toBe(attempts);
});
