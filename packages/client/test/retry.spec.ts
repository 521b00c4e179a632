import http2 from "node:http2";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import { IdentityService } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import { afterEach, describe, expect, it } from "vitest";
import { attemptsOf, closeClients, createClient } from "../src/index.ts";

/**
 * A server whose echo fails with UNAVAILABLE for the first `failFirst` calls (or always), optionally
 * with a pushback; IdentityService.SignIn (not marked idempotent) always fails with UNAVAILABLE.
 */
async function flakyServer(opts: {
  failFirst?: number;
  always?: boolean;
  pushbackMs?: string;
  delayMs?: number;
}) {
  const arrivals: number[] = [];
  const routes = (router: ConnectRouter) => {
    router.service(EchoService, {
      async echo(req) {
        arrivals.push(Date.now());
        if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
        if (opts.always || arrivals.length <= (opts.failFirst ?? 0)) {
          throw new ConnectError(
            "try again",
            Code.Unavailable,
            opts.pushbackMs ? { "grpc-retry-pushback-ms": opts.pushbackMs } : undefined,
          );
        }
        return { message: req.message };
      },
    });
    router.service(IdentityService, {
      signIn() {
        arrivals.push(Date.now());
        throw new ConnectError("try again", Code.Unavailable);
      },
    });
  };
  const server = http2.createServer(
    connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  servers.push(server);
  return { target: `127.0.0.1:${(server.address() as { port: number }).port}`, arrivals };
}

const servers: http2.Http2Server[] = [];
afterEach(async () => {
  await closeClients();
  for (const s of servers.splice(0)) s.close();
});

const quietBreaker = { volumeThreshold: 1_000_000 };

describe("retries (gRFC A6)", () => {
  it("retries a NO_SIDE_EFFECTS method on UNAVAILABLE and succeeds", async () => {
    const s = await flakyServer({ failFirst: 2 });
    const c = createClient(EchoService, { target: s.target, breaker: quietBreaker });
    expect((await c.echo({ message: "hi" })).message).toBe("hi");
    expect(s.arrivals).toHaveLength(3);
  });

  it("never retries a method the contract does not mark safe to repeat", async () => {
    const s = await flakyServer({});
    const c = createClient(IdentityService, { target: s.target, breaker: quietBreaker });
    await expect(c.signIn({ email: "a@b.c", password: "x" })).rejects.toThrow();
    expect(s.arrivals).toHaveLength(1);
  });

  it("waits what the server's grpc-retry-pushback-ms says", async () => {
    const s = await flakyServer({ failFirst: 1, pushbackMs: "150" });
    const c = createClient(EchoService, { target: s.target, breaker: quietBreaker });
    await c.echo({ message: "later" });
    expect(s.arrivals).toHaveLength(2);
    expect(s.arrivals[1]! - s.arrivals[0]!).toBeGreaterThanOrEqual(145);
  });

  it("never retries past the deadline", async () => {
    const s = await flakyServer({ always: true, delayMs: 100 });
    const c = createClient(EchoService, {
      target: s.target,
      breaker: quietBreaker,
      retry: { maxAttempts: 5 },
    });
    const t0 = Date.now();
    await expect(c.echo({ message: "x" }, { timeoutMs: 250 })).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(400);
    expect(s.arrivals.length).toBeLessThanOrEqual(3);
  });

  it("keeps retries to a small share of calls once the budget is spent", async () => {
    const s = await flakyServer({ always: true });
    const c = createClient(EchoService, { target: s.target, breaker: quietBreaker });
    for (let i = 0; i < 100; i++) await c.echo({ message: "x" }).catch(() => undefined);
    expect(s.arrivals.length / 100).toBeLessThanOrEqual(1.1);
    expect(attemptsOf(c)).toBe(s.arrivals.length);
  });
});
