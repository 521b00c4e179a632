import { type RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";

/**
 * A fixed-window limit whose points are taken from the shared store (Redis, through rate-limiter-flexible)
 * a lease at a time rather than one per call. A key that is called often takes, in one round trip, the
 * points its recent rate would use in the next `leaseMs` (at most `maxLease`); the calls after it are
 * admitted in the process until the lease is spent or its window ends. A key called now and then takes
 * one point a call, as before.
 *
 * What that keeps and what it gives up:
 * - Never more than the limit per window across every process: a point is reserved in the store before a
 *   call uses it, and a lease ends when the window it was taken in ends (its end is reckoned from the
 *   moment the request left, so a lease never outlives the store's window).
 * - Up to `maxLease - 1` points per key, per process and per window may go unused (reserved by one
 *   process, not used by it before the window ended), so a client spread over several gateways can be
 *   refused that much early. `maxLease` is a hundredth of the limit, and 1 (no lease, exact) under 200.
 * - Once the store says a window is spent, the process refuses that key until the window ends without
 *   asking again (nobody can be given a point in it).
 */
export class LeasedLimiter {
  private readonly keys = new Map<string, Lease>();
  private readonly maxLease: number;
  private readonly leaseMs: number;
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly store: RateLimiterAbstract,
    opts: { maxLease?: number; leaseMs?: number } = {},
  ) {
    this.maxLease = Math.max(1, opts.maxLease ?? Math.floor(store.points / 100));
    this.leaseMs = opts.leaseMs ?? 250;
    // Keys whose window has ended hold nothing worth keeping; many addresses must not grow the map.
    this.sweep = setInterval(() => this.forgetEnded(), Math.max(1000, store.duration * 1000));
    this.sweep.unref();
  }

  /** How many keys the process keeps a lease for (keys whose window has ended are dropped within a window). */
  get keyCount(): number {
    return this.keys.size;
  }

  /** Points a key holds in this process now (for tests and metrics). */
  held(key: string): number {
    const lease = this.keys.get(key);
    return lease && performance.now() < lease.endsAt ? lease.points : 0;
  }

  /**
   * Takes one point for `key`: resolves 0 when admitted, or the milliseconds until the key's window ends
   * when refused. Anything but a refusal from the store (there is none: Redis's failures fall to the
   * store's in-process insurance limiter) rejects.
   */
  async take(key: string): Promise<number> {
    for (;;) {
      let lease = this.keys.get(key);
      if (!lease) {
        lease = { points: 0, endsAt: 0, spent: false, grantedAt: 0, granted: 0, refill: undefined };
        this.keys.set(key, lease);
      }
      const now = performance.now();
      if (now < lease.endsAt) {
        if (lease.points > 0) {
          lease.points--;
          return 0;
        }
        if (lease.spent) return lease.endsAt - now;
      }
      // One request to the store per key at a time; the calls that arrive meanwhile wait for it and
      // then take from what it brought.
      if (lease.refill) {
        await lease.refill;
        continue;
      }
      lease.refill = this.refill(key, lease, now);
      try {
        await lease.refill;
      } finally {
        lease.refill = undefined;
      }
    }
  }

  private async refill(key: string, lease: Lease, now: number): Promise<void> {
    // The key's recent rate (the last lease's points over the time since it was taken) decides how many
    // points this one asks for: enough for `leaseMs` at that rate.
    const elapsed = now - lease.grantedAt;
    const want =
      lease.granted > 0 && elapsed > 0
        ? Math.min(this.maxLease, Math.max(1, Math.ceil((lease.granted * this.leaseMs) / elapsed)))
        : 1;
    let res: RateLimiterRes;
    try {
      res = await this.store.consume(key, want);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      res = err;
    }
    // The store counted `want` more; what was there before them, against the limit, is what this lease
    // may use.
    const before = res.consumedPoints - want;
    const granted = Math.max(0, Math.min(want, this.store.points - before));
    lease.points = granted;
    lease.granted = granted;
    lease.grantedAt = now;
    lease.endsAt = now + res.msBeforeNext;
    lease.spent = res.consumedPoints >= this.store.points;
  }

  private forgetEnded(): void {
    const now = performance.now();
    for (const [key, lease] of this.keys) if (!lease.refill && now >= lease.endsAt) this.keys.delete(key);
  }

  close(): void {
    clearInterval(this.sweep);
  }
}

interface Lease {
  /** Points reserved in the store and not yet used. */
  points: number;
  /** When the store's window for the key ends (performance.now() clock), reckoned from the request. */
  endsAt: number;
  /** The store had no points left in this window: refuse until it ends. */
  spent: boolean;
  grantedAt: number;
  granted: number;
  refill: Promise<void> | undefined;
}
