import { Code, ConnectError } from "@connectrpc/connect";
import type CircuitBreaker from "opossum";
import { afterEach, describe, expect, it } from "vitest";
import { BreakerRegistry, CircuitOpenError } from "../src/breaker.ts";

const registries: BreakerRegistry[] = [];
afterEach(() => {
  for (const r of registries.splice(0)) r.shutdown();
});

function registry(): BreakerRegistry {
  // A minute's window (the services' is 1 s), so that a slow machine cannot rotate calls out of it mid-test.
  const r = new BreakerRegistry(
    "orders",
    { volumeThreshold: 10, errorThresholdPercentage: 50, rollingCountTimeoutMs: 60_000 },
    undefined,
  );
  registries.push(r);
  return r;
}

/** The opossum breaker the registry made for an endpoint and method. */
function breakerOf(r: BreakerRegistry, endpoint: string, method: string): CircuitBreaker {
  const b = (r as unknown as { breakers: Map<string, CircuitBreaker> }).breakers.get(`${endpoint} ${method}`);
  if (!b) throw new Error("no breaker yet");
  return b;
}

const unavailable = () => Promise.reject(new ConnectError("down", Code.Unavailable));
const ok = () => Promise.resolve("ok");

/** Runs `n` calls through the registry, every `failEvery`th failing with UNAVAILABLE; the errors seen. */
async function calls(r: BreakerRegistry, n: number, failEvery: number): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (let i = 1; i <= n; i++) {
    await r.run("http://a", "/svc/M", i % failEvery === 0 ? unavailable : ok).catch((e) => errors.push(e));
  }
  return errors;
}

describe("BreakerRegistry", () => {
  it("checks a failure against the window's counts, without gathering and sorting its latencies", async () => {
    const r = registry();
    // A third fail: below the 50 % that opens it, so every failure is checked against the window.
    const errors = await calls(r, 300, 3);
    expect(errors).toHaveLength(100);
    expect(errors.every((e) => e instanceof ConnectError && e.code === Code.Unavailable)).toBe(true);
    const b = breakerOf(r, "http://a", "/svc/M");
    expect(b.closed).toBe(true);
    const stats = b.stats;
    expect(stats.fires).toBe(300);
    expect(stats.failures).toBe(100);
    expect(stats.successes).toBe(200);
    // opossum's default gathers the window's latencies, one per call, and sorts them for percentiles on
    // every failure's check and every tenth of the window; here the window's stats are its counts.
    expect(stats.latencyTimes).toEqual([]);
    expect(stats.latencyMean).toBe(-1); // opossum: percentiles not computed
  });

  it("opens on the counts alone once failures pass the threshold, and turns calls away as UNAVAILABLE", async () => {
    const r = registry();
    // Every other call fails, then every call: past 50 % of the window within a few calls.
    await calls(r, 20, 2);
    const errors = await calls(r, 10, 1);
    expect(breakerOf(r, "http://a", "/svc/M").opened).toBe(true);
    const turnedAway = errors.filter((e) => e instanceof CircuitOpenError);
    expect(turnedAway.length).toBeGreaterThan(0);
    expect((turnedAway[0] as ConnectError).code).toBe(Code.Unavailable);
    expect((turnedAway[0] as ConnectError).rawMessage).toBe("circuit open: orders at http://a (/svc/M)");
  });

  it("does not count callers' errors against the endpoint", async () => {
    const r = registry();
    for (let i = 0; i < 30; i++) {
      await r
        .run("http://a", "/svc/M", () => Promise.reject(new ConnectError("no such order", Code.NotFound)))
        .catch(() => undefined);
    }
    const b = breakerOf(r, "http://a", "/svc/M");
    expect(b.closed).toBe(true);
    expect(b.stats.failures).toBe(0);
  });
});
