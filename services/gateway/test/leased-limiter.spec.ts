import { setTimeout as sleep } from "node:timers/promises";
import { RateLimiterMemory } from "rate-limiter-flexible";
import { afterEach, describe, expect, it } from "vitest";
import { LeasedLimiter } from "../src/leased-limiter.ts";

/** An in-process store standing in for Redis, counting how often it is asked. */
function countingStore(points: number, duration: number) {
  const store = new RateLimiterMemory({ points, duration });
  const asked: number[] = [];
  const consume = store.consume.bind(store);
  store.consume = (key: string | number, n = 1, options?: { [key: string]: unknown }) => {
    asked.push(n);
    return consume(key, n, options);
  };
  return { store, asked };
}

const closing: LeasedLimiter[] = [];
afterEach(() => {
  for (const l of closing.splice(0)) l.close();
});
function leased(store: RateLimiterMemory, opts?: { maxLease?: number; leaseMs?: number }) {
  const l = new LeasedLimiter(store, opts);
  closing.push(l);
  return l;
}

async function admitted(limiter: LeasedLimiter, key: string, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await limiter.take(key)) === 0) ok++;
  return ok;
}

describe("leased limiter", () => {
  it("takes one point a call for a key called now and then", async () => {
    const { store, asked } = countingStore(1000, 60);
    const limiter = leased(store, { leaseMs: 5 });
    for (let i = 0; i < 5; i++) {
      expect(await limiter.take("k")).toBe(0);
      await sleep(25);
    }
    expect(asked).toEqual([1, 1, 1, 1, 1]);
    expect(limiter.held("k")).toBe(0);
    expect((await store.get("k"))?.consumedPoints).toBe(5);
  });

  it("serves a busy key from leases: the whole limit, never more, the store asked a fraction of the time", async () => {
    const { store, asked } = countingStore(1000, 60);
    const limiter = leased(store);
    expect(await admitted(limiter, "k", 1200)).toBe(1000);
    // a lease is at most a hundredth of the limit
    expect(Math.max(...asked)).toBe(10);
    expect(asked.length).toBeLessThan(1000 / 10 + 5);
    // once the store said the window is spent, refusals cost no request
    const before = asked.length;
    const ms = await limiter.take("k");
    expect(ms).toBeGreaterThan(55_000);
    expect(ms).toBeLessThanOrEqual(60_000);
    expect(asked.length).toBe(before);
  });

  it("never admits more than the limit across processes sharing the store, and leaves little unused", async () => {
    const { store } = countingStore(1000, 60);
    const [a, b] = [leased(store), leased(store)];
    // concurrent calls on both, more than the limit
    const results = await Promise.all(
      Array.from({ length: 1500 }, (_, i) => ((i % 3 ? a : b) as LeasedLimiter).take("k")),
    );
    const ok = results.filter((r) => r === 0).length;
    expect(ok).toBeLessThanOrEqual(1000);
    // at most maxLease - 1 (9) per process left reserved and unused
    expect(ok).toBeGreaterThanOrEqual(1000 - 2 * 9);
    expect(a.held("k") + b.held("k")).toBe(1000 - ok);
  });

  it("asks the store once for calls that arrive together, not once a call", async () => {
    const { store, asked } = countingStore(1000, 60);
    const limiter = leased(store);
    const results = await Promise.all(Array.from({ length: 50 }, () => limiter.take("k")));
    expect(results.every((r) => r === 0)).toBe(true);
    expect(asked.length).toBeLessThanOrEqual(8);
  });

  it("ends a lease with its window: its points are not used in the next one", async () => {
    const { store, asked } = countingStore(1000, 1);
    const limiter = leased(store);
    expect(await admitted(limiter, "k", 3)).toBe(3);
    expect(limiter.held("k")).toBeGreaterThan(0);
    await sleep(1100);
    expect(limiter.held("k")).toBe(0);
    asked.length = 0;
    expect(await limiter.take("k")).toBe(0);
    // the call after the window went to the store, which counts it in a new window
    expect(asked.length).toBe(1);
    expect((await store.get("k"))?.consumedPoints).toBe(asked[0]);
  });

  it("keeps refusing a spent key until its window ends, then admits again", async () => {
    const { store } = countingStore(3, 1);
    const limiter = leased(store);
    expect(await admitted(limiter, "k", 5)).toBe(3);
    await sleep(1100);
    expect(await limiter.take("k")).toBe(0);
  });

  it("drops the keys whose window has ended, so many addresses do not grow the process", async () => {
    const { store } = countingStore(1000, 1);
    const limiter = leased(store);
    await Promise.all(Array.from({ length: 1000 }, (_, i) => limiter.take(`203.0.113.${i}`)));
    expect(limiter.keyCount).toBe(1000);
    // the sweep runs once a window (1 s here); a key is dropped at the first sweep after its window ends
    await sleep(2100);
    expect(limiter.keyCount).toBe(0);
  });
});
