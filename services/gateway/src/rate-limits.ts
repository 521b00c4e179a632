import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";
import { LeasedLimiter } from "./leased-limiter.ts";
import { redisOptions } from "./redis-url.ts";

/**
 * Per-IP and per-user limits: a steady rate per minute plus a burst allowance (as rate-limiter-flexible's
 * BurstyRateLimiter: the burst's points are taken only when the steady ones are spent). In memory by
 * default; in Redis when REDIS_URL is set, so every gateway replica shares the counts, a busy key's
 * points taken a lease at a time (LeasedLimiter: never more than the limit across replicas, up to a
 * hundredth of it left unused per replica and window). Checked before any downstream call, so a client
 * retrying in a loop is refused at the edge and never reaches a database.
 */
export class RateLimits {
  private readonly ip: Bursty;
  private readonly user: Bursty;
  private readonly limiters: LeasedLimiter[] = [];
  private readonly redis: Redis | undefined;

  constructor(opts: {
    ipPerMinute: number;
    userPerMinute: number;
    redisUrl?: string | undefined;
    prefix?: string;
    /** Told once when Redis goes away (the limits are then counted in this process) and once when it is back. */
    logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  }) {
    this.redis = opts.redisUrl
      ? // Auto-pipelining: the commands of concurrent calls (and a call's address and user limits)
        // leave in one write and come back in one read.
        new Redis({
          ...redisOptions(opts.redisUrl),
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          enableAutoPipelining: true,
        })
      : undefined;
    if (this.redis) {
      // While Redis is away each command fails at once (no offline queue) and the in-memory insurance
      // limiter counts instead; ioredis reconnects in the background. One line per outage, not one per
      // reconnect attempt (without a listener ioredis prints every failed attempt).
      let away = false;
      this.redis.on("error", (err: Error) => {
        if (away) return;
        away = true;
        opts.logger?.warn(
          { err: err.message },
          "rate limits: Redis unreachable; counting in this process until it is back",
        );
      });
      this.redis.on("ready", () => {
        if (!away) return;
        away = false;
        opts.logger?.info({}, "rate limits: Redis is back; counting there again");
      });
    }
    const make = (prefix: string, points: number, duration: number): LeasedLimiter => {
      const store: RateLimiterAbstract = this.redis
        ? new RateLimiterRedis({
            storeClient: this.redis,
            keyPrefix: `${opts.prefix ?? "dispatch-rl"}-${prefix}`,
            points,
            duration,
            insuranceLimiter: new RateLimiterMemory({ points, duration }),
          })
        : new RateLimiterMemory({ keyPrefix: prefix, points, duration });
      // In memory a point costs no round trip: no leases, every call counted exactly.
      const limiter = new LeasedLimiter(store, this.redis ? {} : { maxLease: 1 });
      this.limiters.push(limiter);
      return limiter;
    };
    // Steady: N per minute. Burst: a fifth of that on top, refilled every 10 s.
    this.ip = {
      steady: make("ip", opts.ipPerMinute, 60),
      burst: make("ip-burst", Math.ceil(opts.ipPerMinute / 5), 10),
    };
    this.user = {
      steady: make("user", opts.userPerMinute, 60),
      burst: make("user-burst", Math.ceil(opts.userPerMinute / 5), 10),
    };
  }

  /** Waits (up to `ms`) for Redis, so the first requests count in the shared store, not the local fallback. */
  async ready(ms = 3000): Promise<void> {
    const redis = this.redis;
    if (!redis || redis.status === "ready") return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      redis.once("ready", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  consumeIp(ip: string): Promise<void> {
    return consume(this.ip, ip, "client address");
  }

  consumeUser(userId: string): Promise<void> {
    return consume(this.user, userId, "user");
  }

  async close(): Promise<void> {
    for (const limiter of this.limiters) limiter.close();
    const redis = this.redis;
    if (!redis) return;
    // quit() waits for the replies still due; a client still trying to connect is just stopped (quit()
    // would be refused, and its reconnect timer would go on).
    if (redis.status === "ready") await redis.quit().catch(() => undefined);
    else redis.disconnect();
  }
}

interface Bursty {
  steady: LeasedLimiter;
  burst: LeasedLimiter;
}

async function consume(limiter: Bursty, key: string, what: string): Promise<void> {
  const steadyMs = await limiter.steady.take(key);
  if (steadyMs === 0) return;
  const burstMs = await limiter.burst.take(key);
  if (burstMs === 0) return;
  // Refused by both: the sooner of the two windows' ends (as BurstyRateLimiter answers).
  const retryAfter = Math.max(1, Math.ceil(Math.min(steadyMs, burstMs) / 1000));
  // Connect maps RESOURCE_EXHAUSTED to HTTP 429; the metadata becomes the Retry-After header.
  throw new ConnectError(
    `rate limit exceeded for this ${what}; retry in ${retryAfter} s`,
    Code.ResourceExhausted,
    {
      "retry-after": String(retryAfter),
    },
  );
}
