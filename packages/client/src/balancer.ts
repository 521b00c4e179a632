import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Transport } from "@connectrpc/connect";
import type { Logger } from "pino";

/** How calls spread over a target's endpoints and how endpoints that misbehave are set aside. */
export interface BalancingOptions {
  /** "round_robin" (default) or "p2c": power of two choices, the one of two random endpoints with fewer calls in flight. */
  policy?: "round_robin" | "p2c";
  /** How often a `dns:///` target is resolved again (Kubernetes headless Services change as pods come and go). Default 30 s. */
  resolveIntervalMs?: number;
  /** Resolves a name to addresses; node's resolver by default (a hook for tests). */
  lookup?: (host: string) => Promise<string[]>;
}

/** Outlier ejection, after Envoy: an endpoint that refuses connections or fails repeatedly is left out for a while. */
export interface OutlierOptions {
  /** Consecutive UNAVAILABLE/INTERNAL/UNKNOWN/DATA_LOSS answers that eject an endpoint. Default 5. */
  consecutiveFailures?: number;
  /** First ejection's length; each further ejection doubles it. Default 1000 ms. */
  baseEjectionMs?: number;
  /** Longest ejection. Default 30 s. */
  maxEjectionMs?: number;
  /** Largest share of endpoints ejected at once (one endpoint may always be). Default 50. */
  maxEjectionPercent?: number;
}

/** A target: fixed endpoints, or a DNS name whose addresses are the endpoints. */
export type Target =
  | { kind: "static"; endpoints: string[] }
  | { kind: "dns"; host: string; port: number; endpoints?: undefined };

/**
 * Parses a target: "host:port", "http://host:port", a comma list of them (each one endpoint; a name is
 * resolved by the OS at connect time), or "dns:///name:port" (every address of the name is an endpoint,
 * resolved again periodically and when an endpoint refuses connections).
 */
export function parseTarget(target: string): Target {
  const t = target.trim();
  if (t.startsWith("dns:")) {
    const m = /^dns:(?:\/\/[^/]*\/)?([^/:]+|\[[^\]]+\]):(\d+)$/.exec(t);
    if (!m) throw new Error(`client target ${JSON.stringify(target)}: use dns:///name:port`);
    return { kind: "dns", host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
  }
  const endpoints = t
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (/^https?:\/\//.test(s) ? s.replace(/\/+$/, "") : `http://${s}`));
  if (endpoints.length === 0) throw new Error(`client target ${JSON.stringify(target)} names no endpoint`);
  for (const e of endpoints) {
    const u = new URL(e);
    if (!u.port && u.protocol === "http:" && !/:\d+$/.test(e))
      throw new Error(`client target ${e} needs a port`);
  }
  return { kind: "static", endpoints };
}

export class Endpoint {
  inFlight = 0;
  /** Consecutive failures counted toward ejection. */
  failures = 0;
  /** Ejections in a row; the next one lasts base × 2^ejections. */
  ejections = 0;
  ejectedUntil = 0;

  constructor(
    readonly url: string,
    readonly transport: Transport,
  ) {}

  ejectedAt(now: number): boolean {
    return this.ejectedUntil > now;
  }
}

/** How an attempt on an endpoint ended, as far as the endpoint's health is concerned. */
export type Outcome = "ok" | "failure" | "unreachable";

export class Balancer {
  private endpoints: Endpoint[] = [];
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private resolving: Promise<void> | undefined;
  private lastResolved = 0;
  private closed = false;
  private readonly policy: "round_robin" | "p2c";
  private readonly lookup: (host: string) => Promise<string[]>;

  constructor(
    private readonly name: string,
    private readonly target: Target,
    private readonly makeTransport: (url: string) => Transport,
    private readonly opts: BalancingOptions,
    private readonly outlier: OutlierOptions,
    private readonly logger: Logger | undefined,
  ) {
    this.policy = opts.policy ?? "round_robin";
    if (this.policy !== "round_robin" && this.policy !== "p2c")
      throw new Error(`client ${name}: balancing policy must be "round_robin" or "p2c"`);
    this.lookup =
      opts.lookup ??
      (async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address));
    if (target.kind === "static") {
      this.endpoints = target.endpoints.map((u) => new Endpoint(u, makeTransport(u)));
    }
  }

  get size(): number {
    return this.endpoints.length;
  }

  /** Every endpoint known now (for tests and metrics). */
  list(): readonly Endpoint[] {
    return this.endpoints;
  }

  /** Resolves a DNS target the first time; later calls return at once unless nothing is known yet. */
  async ready(): Promise<void> {
    if (this.target.kind !== "dns") return;
    if (this.endpoints.length === 0) await this.resolve();
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => void this.resolve(), this.opts.resolveIntervalMs ?? 30_000);
      this.timer.unref();
    }
  }

  /**
   * Resolves the DNS name again (when `soon`, as after a refused connection: at most once a second); a
   * failed or empty answer keeps the last good list.
   */
  resolve(soon = false): Promise<void> {
    const target = this.target;
    if (target.kind !== "dns" || this.closed) return Promise.resolve();
    if (this.resolving) return this.resolving;
    if (soon && Date.now() - this.lastResolved < 1000) return Promise.resolve();
    this.resolving = (async () => {
      try {
        const addresses = [...new Set(await this.lookup(target.host))];
        if (addresses.length === 0) throw new Error("no addresses");
        const urls = addresses.map((a) => `http://${isIP(a) === 6 ? `[${a}]` : a}:${target.port}`);
        const known = new Map(this.endpoints.map((e) => [e.url, e]));
        const next = urls.map((u) => known.get(u) ?? new Endpoint(u, this.makeTransport(u)));
        const added = urls.filter((u) => !known.has(u));
        const removed = this.endpoints.filter((e) => !urls.includes(e.url)).map((e) => e.url);
        if (added.length || removed.length)
          this.logger?.info({ target: this.name, added, removed }, "endpoints changed");
        this.endpoints = next;
      } catch (err) {
        this.logger?.warn(
          { target: this.name, host: target.host, err: (err as Error).message },
          "could not resolve target; keeping the last endpoints",
        );
      } finally {
        this.lastResolved = Date.now();
        this.resolving = undefined;
      }
    })();
    return this.resolving;
  }

  /**
   * The endpoint for the next attempt: among those not ejected, `usable` (breaker closed for the method)
   * and not in `avoid`, by the policy. With none left it relaxes the filters in that order, so a call
   * always gets an endpoint (whose breaker then fails it fast if need be). Undefined only with no endpoints.
   */
  pick(usable: (e: Endpoint) => boolean, avoid?: ReadonlySet<Endpoint>): Endpoint | undefined {
    const all = this.endpoints;
    if (all.length === 0) return undefined;
    const now = Date.now();
    const fresh = (e: Endpoint) => !avoid?.has(e);
    return (
      this.choose((e) => fresh(e) && !e.ejectedAt(now) && usable(e)) ??
      this.choose((e) => fresh(e) && usable(e)) ??
      this.choose(fresh) ??
      this.choose(() => true)
    );
  }

  private choose(ok: (e: Endpoint) => boolean): Endpoint | undefined {
    const all = this.endpoints;
    const n = all.length;
    if (this.policy === "p2c") {
      const candidates = all.filter(ok);
      if (candidates.length <= 1) return candidates[0];
      const i = Math.floor(Math.random() * candidates.length);
      let j = Math.floor(Math.random() * (candidates.length - 1));
      if (j >= i) j++;
      const a = candidates[i]!;
      const b = candidates[j]!;
      return a.inFlight <= b.inFlight ? a : b;
    }
    for (let k = 0; k < n; k++) {
      const e = all[(this.next + k) % n]!;
      if (ok(e)) {
        this.next = (this.next + k + 1) % n;
        return e;
      }
    }
    return undefined;
  }

  /** Records how an attempt ended; ejects the endpoint when it refused or failed too often. */
  report(e: Endpoint, outcome: Outcome): void {
    if (outcome === "ok") {
      e.failures = 0;
      if (!e.ejectedAt(Date.now())) e.ejections = 0;
      return;
    }
    if (outcome === "unreachable") {
      this.eject(e, "unreachable");
      void this.resolve(true);
      return;
    }
    e.failures++;
    if (e.failures >= (this.outlier.consecutiveFailures ?? 5))
      this.eject(e, `${e.failures} failures in a row`);
  }

  /** Leaves an endpoint out for base × 2^n ms, unless that would eject more than the cap allows. */
  eject(e: Endpoint, reason: string): void {
    const now = Date.now();
    if (e.ejectedAt(now) || !this.endpoints.includes(e)) return;
    const cap = Math.max(
      1,
      Math.floor((this.endpoints.length * (this.outlier.maxEjectionPercent ?? 50)) / 100),
    );
    const ejected = this.endpoints.filter((x) => x.ejectedAt(now)).length;
    if (ejected >= cap) return;
    const ms = Math.min(
      this.outlier.maxEjectionMs ?? 30_000,
      (this.outlier.baseEjectionMs ?? 1000) * 2 ** Math.min(e.ejections, 10),
    );
    e.ejections++;
    e.failures = 0;
    e.ejectedUntil = now + ms;
    this.logger?.warn({ target: this.name, endpoint: e.url, reason, ejectedMs: ms }, "endpoint ejected");
  }

  ejectUrl(url: string, reason: string): void {
    const e = this.endpoints.find((x) => x.url === url);
    if (e) this.eject(e, reason);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }
}
