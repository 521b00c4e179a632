import { once } from "node:events";
import http2 from "node:http2";
import { createServer } from "node:net";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { afterEach, describe, expect, it } from "vitest";
import { attemptsOf, closeClients, createClient, parseTarget, transportOf } from "../src/index.ts";

interface Replica {
  name: string;
  host: string;
  port: number;
  seen: string[];
  aborted: string[];
  close(): Promise<void>;
}

/**
 * An echo replica answering "<name>:<message>"; "slow:<ms>" waits first, "fail" answers UNAVAILABLE when
 * `failing` is set. SignIn (not idempotent) answers with the replica's name in the token.
 */
async function replica(
  name: string,
  opts: { host?: string; port?: number; delayMs?: number; failing?: boolean } = {},
): Promise<Replica> {
  const seen: string[] = [];
  const aborted: string[] = [];
  const routes = (router: ConnectRouter) => {
    router.service(EchoService, {
      async echo(req, ctx) {
        seen.push(req.message);
        const slow = /^slow:(\d+)$/.exec(req.message);
        const wait = slow ? Number(slow[1]) : (opts.delayMs ?? 0);
        if (wait) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, wait);
            ctx.signal.addEventListener("abort", () => {
              clearTimeout(t);
              aborted.push(req.message);
              resolve();
            });
          });
        }
        if (opts.failing) throw new ConnectError("replica unwell", Code.Unavailable);
        return { message: `${name}:${req.message}` };
      },
    });
    router.service(IdentityService, {
      signIn(req) {
        seen.push(req.email);
        return { tokens: { accessToken: name } };
      },
    });
  };
  const server = http2.createServer(
    connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }),
  );
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((r) => server.listen(opts.port ?? 0, host, () => r()));
  const r: Replica = {
    name,
    host,
    port: (server.address() as { port: number }).port,
    seen,
    aborted,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  replicas.push(r);
  return r;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address() as { port: number };
  srv.close();
  return port;
}

const replicas: Replica[] = [];
afterEach(async () => {
  await closeClients();
  await Promise.all(replicas.splice(0).map((r) => r.close()));
});

const quietBreaker = { volumeThreshold: 1_000_000 };
const count = (xs: string[], prefix: string) => xs.filter((x) => x.startsWith(prefix)).length;

describe("targets", () => {
  it("parses endpoint lists and dns:/// names, and rejects what it cannot use", () => {
    expect(parseTarget("a:1, http://b:2/")).toEqual({
      kind: "static",
      endpoints: ["http://a:1", "http://b:2"],
    });
    expect(parseTarget("dns:///orders-headless.default.svc:50053")).toEqual({
      kind: "dns",
      host: "orders-headless.default.svc",
      port: 50053,
    });
    expect(() => parseTarget("dns:///orders")).toThrow(/dns:\/\/\/name:port/);
    expect(() => parseTarget("orders")).toThrow(/needs a port/);
  });
});

describe("DNS re-resolution", () => {
  it("spreads calls over every address of a name and follows the name as its records change", async () => {
    const port = await freePort();
    const a = await replica("a", { host: "127.0.0.1", port });
    const b = await replica("b", { host: "127.0.0.2", port });
    let records = ["127.0.0.1"];
    const c = createClient(EchoService, {
      target: `dns:///orders-headless:${port}`,
      balancing: { resolveIntervalMs: 50, lookup: async () => records },
    });
    for (let i = 0; i < 4; i++) expect((await c.echo({ message: "x" })).message).toBe("a:x");
    records = ["127.0.0.1", "127.0.0.2"]; // a pod was added
    await new Promise((r) => setTimeout(r, 120));
    const answers = await Promise.all(Array.from({ length: 10 }, () => c.echo({ message: "y" })));
    expect(answers.filter((m) => m.message === "b:y")).toHaveLength(5);
    records = ["127.0.0.2"]; // a pod went away
    await new Promise((r) => setTimeout(r, 120));
    for (let i = 0; i < 4; i++) expect((await c.echo({ message: "z" })).message).toBe("b:z");
    expect(count(a.seen, "z")).toBe(0);
    expect(count(b.seen, "y")).toBe(5);
    expect(
      transportOf(c)!
        .balancer.list()
        .map((e) => e.url),
    ).toEqual([`http://127.0.0.2:${port}`]);
  });

  it("keeps the last good endpoints when resolution fails, and uses the system resolver by default", async () => {
    const a = await replica("a");
    let fail = false;
    const c = createClient(EchoService, {
      target: `dns:///svc:${a.port}`,
      balancing: {
        resolveIntervalMs: 30,
        lookup: async () => {
          if (fail) throw new Error("SERVFAIL");
          return ["127.0.0.1"];
        },
      },
    });
    await c.echo({ message: "1" });
    fail = true;
    await new Promise((r) => setTimeout(r, 100));
    expect((await c.echo({ message: "2" })).message).toBe("a:2");

    // localhost through the real resolver: an address nobody listens on (::1) is skipped without a failed call
    const real = createClient(EchoService, { target: `dns:///localhost:${a.port}` });
    for (let i = 0; i < 6; i++) expect((await real.echo({ message: `r${i}` })).message).toBe(`a:r${i}`);
  });
});

describe("balancing policies", () => {
  it("power of two choices sends fewer calls to the slower replica; round-robin splits evenly", async () => {
    // 100 ms against a fast replica's few ms: p2c's share for the slow one stays far under a third even
    // when a busy machine (CI runs test files side by side) slows the fast one to ~15 ms per call.
    const slow = await replica("slow", { delayMs: 100 });
    const fast = await replica("fast");
    const target = `127.0.0.1:${slow.port},127.0.0.1:${fast.port}`;
    const drive = async (c: ReturnType<typeof createClient<typeof EchoService>>, tag: string) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < 200) {
            next++;
            await c.echo({ message: tag });
          }
        }),
      );
    };
    await drive(createClient(EchoService, { target, balancing: { policy: "p2c" } }), "p2c");
    await drive(createClient(EchoService, { target }), "rr");
    expect(count(slow.seen, "p2c")).toBeLessThan(count(fast.seen, "p2c") / 3);
    expect(Math.abs(count(slow.seen, "rr") - count(fast.seen, "rr"))).toBeLessThanOrEqual(8);
    expect(() => createClient(EchoService, { target, balancing: { policy: "random" as "p2c" } })).toThrow(
      /round_robin|p2c/,
    );
  });
});

describe("outlier ejection", () => {
  it("ejects a replica after consecutive failures, then tries it again after the ejection time", async () => {
    const bad = await replica("bad", { failing: true });
    const good = await replica("good");
    const c = createClient(EchoService, {
      target: `127.0.0.1:${bad.port},127.0.0.1:${good.port}`,
      breaker: quietBreaker,
      retry: false,
      outlier: { consecutiveFailures: 3, baseEjectionMs: 300 },
    });
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await c.echo({ message: `m${i}` }).catch((e) => e));
    // round-robin alternates until the third failure on `bad`, then everything goes to `good`
    expect(bad.seen).toEqual(["m0", "m2", "m4"]);
    expect(results.filter((r) => r instanceof ConnectError)).toHaveLength(3);
    await new Promise((r) => setTimeout(r, 320));
    for (let i = 0; i < 4; i++) await c.echo({ message: `later${i}` }).catch(() => undefined);
    expect(count(bad.seen, "later")).toBeGreaterThan(0);
  });

  it("never ejects more than the cap allows", async () => {
    const rs = await Promise.all(["r1", "r2", "r3", "r4"].map((n) => replica(n, { failing: true })));
    const c = createClient(EchoService, {
      target: rs.map((r) => `127.0.0.1:${r.port}`).join(","),
      breaker: quietBreaker,
      retry: false,
      outlier: { consecutiveFailures: 1, baseEjectionMs: 10_000, maxEjectionPercent: 50 },
    });
    for (let i = 0; i < 40; i++) await c.echo({ message: "x" }).catch(() => undefined);
    const now = Date.now();
    const ejected = transportOf(c)!
      .balancer.list()
      .filter((e) => e.ejectedAt(now));
    expect(ejected).toHaveLength(2);
    expect(rs.filter((r) => r.seen.length > 2)).toHaveLength(2);
  });

  it("an open breaker ejects its endpoint for every method", async () => {
    const bad = await replica("bad", { failing: true });
    const good = await replica("good");
    const c = createClient(EchoService, {
      target: `127.0.0.1:${bad.port},127.0.0.1:${good.port}`,
      retry: false,
      breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 5000 },
      outlier: { consecutiveFailures: 1000 },
    });
    for (let i = 0; i < 6; i++) await c.echo({ message: "x" }).catch(() => undefined);
    const e = transportOf(c)!
      .balancer.list()
      .find((x) => x.url.endsWith(`:${bad.port}`))!;
    expect(e.ejectedAt(Date.now())).toBe(true);
  });
});

describe("calls that never left", () => {
  it("move to another endpoint transparently, even for a method that is not idempotent", async () => {
    const dead = await freePort();
    const live = await replica("live");
    const c = createClient(IdentityService, {
      target: `127.0.0.1:${dead},127.0.0.1:${live.port}`,
      breaker: quietBreaker,
    });
    for (let i = 0; i < 10; i++) {
      const res = await c.signIn({ email: `u${i}@x.io`, password: "pw" });
      expect(res.tokens?.accessToken).toBe("live");
    }
    expect(live.seen).toHaveLength(10);
    // the dead endpoint was tried once, then ejected
    expect(attemptsOf(c)).toBe(11);
  });

  it("a call the server saw is not repeated when the method is not idempotent", async () => {
    const a = await replica("a", { failing: true });
    const c = createClient(EchoService, {
      target: `127.0.0.1:${a.port}`,
      breaker: quietBreaker,
      retry: false,
    });
    await expect(c.echo({ message: "once" })).rejects.toMatchObject({ code: Code.Unavailable });
    expect(a.seen).toEqual(["once"]);
  });
});

describe("hedging (NO_SIDE_EFFECTS only)", () => {
  it("sends a second copy after delayMs, takes the first answer and cancels the other", async () => {
    const slow = await replica("slow", { delayMs: 1000 });
    const fast = await replica("fast");
    const c = createClient(EchoService, {
      target: `127.0.0.1:${slow.port},127.0.0.1:${fast.port}`,
      hedging: { delayMs: 50 },
    });
    const t0 = performance.now();
    const res = await c.echo({ message: "h" });
    const took = performance.now() - t0;
    expect(res.message).toBe("fast:h");
    expect(took).toBeGreaterThanOrEqual(45);
    expect(took).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 50));
    expect(slow.aborted).toEqual(["h"]);
    expect(attemptsOf(c)).toBe(2);
  });

  it("sends one copy when the first answers in time, and never hedges a method with side effects", async () => {
    const a = await replica("a", { delayMs: 100 });
    const b = await replica("b", { delayMs: 100 });
    const echo = createClient(EchoService, {
      target: `127.0.0.1:${a.port},127.0.0.1:${b.port}`,
      hedging: { delayMs: 500 },
    });
    await echo.echo({ message: "once" });
    expect(attemptsOf(echo)).toBe(1);
    const identity = createClient(IdentityService, {
      target: `127.0.0.1:${a.port},127.0.0.1:${b.port}`,
      hedging: { delayMs: 10 },
    });
    await identity.signIn({ email: "x@y.z", password: "pw" });
    expect(attemptsOf(identity)).toBe(1);
  });
});
