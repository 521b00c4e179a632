import { CatalogService } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { testClient } from "@dispatch/testing";
import { expect, it } from "vitest";
import { drive, otherStatuses, record, round, rssMb, sheddingCatalog, sleep } from "./harness.ts";

const MAX_IN_FLIGHT = 32;
const PAUSE_MS = Number(process.env.FAULT_PAUSE_MS ?? 2000);

/**
 * Scenario 7 — a pause under overload. Catalog is offered five times its capacity over two HTTP/2
 * connections and stopped (SIGSTOP) for 2 s in the middle, as a long GC pause or a starved CPU would
 * stop it: thousands of calls pile up on each connection and arrive at once when it resumes. Bars: every
 * call is answered OK or RESOURCE_EXHAUSTED (no stream reset, no connection ended by GOAWAY), catalog is
 * SERVING and answering after, and its memory grows by less than 300 MB.
 */
it("a catalog paused for 2 s under 5x overload answers every piled-up call and keeps its connections", async () => {
  const { catalog, pid, restaurantId, method, body } = await sheddingCatalog(MAX_IN_FLIGHT);

  const capacity = await drive(catalog.port, method, body, `closed:${MAX_IN_FLIGHT}`, 3000, 2);
  const idleRss = rssMb(pid);
  const offered = Math.round(capacity.rate * 5);
  let peakRss = idleRss;
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, rssMb(pid));
    } catch {}
  }, 100);
  const pause = setTimeout(() => {
    process.kill(pid, "SIGSTOP");
    setTimeout(() => process.kill(pid, "SIGCONT"), PAUSE_MS);
  }, 1500);
  const load = await drive(catalog.port, method, body, `open:${offered}`, 5000, 2);
  clearTimeout(pause);
  clearInterval(sampler);
  await sleep(500);

  const health = await testClient(Health, catalog.port).check({ service: "" });
  const menu = await testClient(CatalogService, catalog.port).getMenu({ restaurantId });
  const figures = {
    capacityRps: round(capacity.rate),
    offeredRps: offered,
    pauseMs: PAUSE_MS,
    calls: load.total,
    ok: load.byStatus["0"] ?? 0,
    shed: load.byStatus["8"] ?? 0,
    otherStatuses: otherStatuses(load),
    goaways: load.goaways,
    okMaxMs: round(load.okMax),
    idleRssMb: round(idleRss),
    peakRssMb: round(peakRss),
    servingAfter: HealthCheckResponse_ServingStatus[health.status],
  };
  record("7-pause", figures);

  expect(figures.calls).toBeGreaterThan(offered * 3);
  expect(figures.otherStatuses).toEqual({});
  expect(figures.goaways).toEqual([]);
  expect(figures.ok).toBeGreaterThan(0);
  expect(figures.okMaxMs).toBeGreaterThanOrEqual(PAUSE_MS * 0.9); // the pause did hold calls
  expect(peakRss - idleRss).toBeLessThan(300);
  expect(figures.servingAfter).toBe("SERVING");
  expect(menu.items.length).toBeGreaterThan(0);
});
