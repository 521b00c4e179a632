import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Code, type ConnectError } from "@connectrpc/connect";
import { freePort } from "@dispatch/testing";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { RateLimits } from "../src/rate-limits.ts";

const redisUrl = process.env.TEST_REDIS_URL;
const hasRedisServer = (() => {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** What each of `n` address checks answered: "ok", or the status code and Retry-After of a refusal. */
async function checks(limits: RateLimits, n: number, ip = "203.0.113.7"): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      await limits.consumeIp(ip);
      out.push("ok");
    } catch (err) {
      const e = err as ConnectError;
      out.push(`${Code[e.code]} retry-after ${e.metadata.get("retry-after")}`);
    }
  }
  return out;
}

function recordingLogger() {
  const lines: string[] = [];
  return {
    lines,
    warn: (_: object, msg: string) => lines.push(`warn: ${msg}`),
    info: (_: object, msg: string) => lines.push(`info: ${msg}`),
  };
}

const closing: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of closing.splice(0).reverse()) await f();
});

/** A redis-server of the test's own (on `port`, or a free one), answering when this returns; stopped after the test. */
async function redisServer(port?: number): Promise<number> {
  port ??= await freePort();
  const server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  closing.push(() => server.kill("SIGKILL"));
  for (let i = 0; i < 100; i++) {
    const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, retryStrategy: () => null });
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      await probe.quit();
      return port;
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis-server on ${port} did not start`);
}

describe("rate limits", () => {
  it.runIf(redisUrl)("counts in Redis: two gateways share one address's allowance", async () => {
    const prefix = `test-${randomUUID()}`;
    const [a, b] = [0, 1].map(() => new RateLimits({ ipPerMinute: 5, userPerMinute: 100, redisUrl, prefix }));
    closing.push(
      () => a!.close(),
      () => b!.close(),
    );
    await Promise.all([a!.ready(), b!.ready()]);
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) seen.push(...(await checks(i % 2 ? b! : a!, 1)));
    // 5 a minute plus a burst of 1, counted once across both
    expect(seen.filter((s) => s === "ok")).toHaveLength(6);
    expect(seen.slice(6)).toEqual(["ResourceExhausted retry-after 10", "ResourceExhausted retry-after 10"]);
    // the counts are Redis keys, with the window's expiry: the five admitted and the one check that found
    // the window spent (after it each gateway refuses without asking; at 5 a minute there are no leases)
    const redis = new Redis(redisUrl!);
    closing.push(() => redis.quit());
    const key = `${prefix}-ip:203.0.113.7`;
    expect(await redis.get(key)).toBe("6");
    expect(await redis.ttl(key)).toBeGreaterThan(50);
  });

  it("keeps limiting in the process while Redis is unreachable, and does not hold start-up for it", async () => {
    const logger = recordingLogger();
    const limits = new RateLimits({
      ipPerMinute: 5,
      userPerMinute: 100,
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      logger,
    });
    closing.push(() => limits.close());
    const t0 = performance.now();
    await limits.ready(300);
    expect(performance.now() - t0).toBeLessThan(1000);
    const t1 = performance.now();
    expect(await checks(limits, 7)).toEqual([...Array(6).fill("ok"), "ResourceExhausted retry-after 10"]);
    // each check fails over at once: no offline queue, no waiting for a reconnect
    expect(performance.now() - t1).toBeLessThan(200);
    expect(logger.lines).toEqual([
      "warn: rate limits: Redis unreachable; counting in this process until it is back",
    ]);
  });

  it.runIf(hasRedisServer)(
    "takes a busy address's points from Redis a lease at a time, and two gateways never pass the limit",
    async () => {
      const port = await redisServer();
      const url = `redis://127.0.0.1:${port}`;
      const redis = new Redis(url);
      closing.push(() => redis.quit());
      const commands = async () =>
        Number(/total_commands_processed:(\d+)/.exec(await redis.info("stats"))?.[1] ?? Number.NaN);

      // 2,000 checks of one address against 100,000 a minute: a lease is at most 1,000 points
      const busy = new RateLimits({
        ipPerMinute: 100_000,
        userPerMinute: 100,
        redisUrl: url,
        prefix: "busy",
      });
      closing.push(() => busy.close());
      await busy.ready();
      const before = await commands();
      expect(new Set(await checks(busy, 2000, "192.0.2.1"))).toEqual(new Set(["ok"]));
      const asked = (await commands()) - before - 1; // the INFO itself counts
      expect(asked).toBeGreaterThan(0);
      expect(asked).toBeLessThan(40);
      const reserved = Number(await redis.get("busy-ip:192.0.2.1"));
      expect(reserved).toBeGreaterThanOrEqual(2000);
      expect(reserved).toBeLessThan(2000 + 1000);

      // two gateways, 1,500 concurrent checks of one address against 1,000 a minute plus a burst of 200:
      // never more than 1,200 admitted, and at most 9 points per limit and gateway left unused
      const [a, b] = [0, 1].map(
        () => new RateLimits({ ipPerMinute: 1000, userPerMinute: 100, redisUrl: url, prefix: "shared" }),
      );
      closing.push(
        () => a!.close(),
        () => b!.close(),
      );
      await Promise.all([a!.ready(), b!.ready()]);
      const results = await Promise.all(
        Array.from({ length: 1500 }, (_, i) =>
          (i % 2 ? b! : a!).consumeIp("192.0.2.2").then(
            () => "ok",
            (err: ConnectError) => Code[err.code],
          ),
        ),
      );
      const ok = results.filter((r) => r === "ok").length;
      expect(ok).toBeLessThanOrEqual(1200);
      expect(ok).toBeGreaterThanOrEqual(1200 - 2 * 2 * 9);
      expect(new Set(results)).toEqual(new Set(["ok", "ResourceExhausted"]));
    },
  );

  it.runIf(hasRedisServer)("counts in Redis again once it comes back", async () => {
    const port = await freePort();
    const logger = recordingLogger();
    const limits = new RateLimits({
      // under 200 a minute a point is never leased: every check counted where it was made
      ipPerMinute: 150,
      userPerMinute: 150,
      redisUrl: `redis://127.0.0.1:${port}`,
      prefix: "back",
      logger,
    });
    closing.push(() => limits.close());
    await limits.ready(200);
    expect(await checks(limits, 1, "198.51.100.1")).toEqual(["ok"]);

    await redisServer(port);
    await limits.ready(5000);
    expect(logger.lines).toEqual([
      "warn: rate limits: Redis unreachable; counting in this process until it is back",
      "info: rate limits: Redis is back; counting there again",
    ]);
    expect(await checks(limits, 3, "198.51.100.1")).toEqual(["ok", "ok", "ok"]);
    const redis = new Redis(`redis://127.0.0.1:${port}`);
    closing.push(() => redis.quit());
    // the three checks made once it was back, counted there (the first one went to the insurance limiter)
    expect(await redis.get("back-ip:198.51.100.1")).toBe("3");
  });
});
