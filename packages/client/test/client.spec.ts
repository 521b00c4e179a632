import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoResponseSchema, EchoService } from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import { type CallContext, runInCall } from "@dispatch/runtime";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { attemptsOf, callUndecoded, closeClients, createClient, transportOf } from "../src/index.ts";

/**
 * An echo server on plain connect-node (not our runtime), so the client is tested against another
 * implementation. The message picks the behaviour: "fail:<code>", "slow:<ms>"; it records what it saw.
 */
async function echoServer() {
  const seen: { message: string; timeout: string | null; requestId: string | null }[] = [];
  let sessions = 0;
  const routes = (router: ConnectRouter) =>
    router.service(EchoService, {
      async echo(req, ctx) {
        seen.push({
          message: req.message,
          timeout: ctx.requestHeader.get("grpc-timeout"),
          requestId: ctx.requestHeader.get("x-request-id"),
        });
        const [verb, arg] = req.message.split(":");
        if (verb === "fail") throw new ConnectError("planned failure", Number(arg) as Code);
        if (verb === "slow") await new Promise((r) => setTimeout(r, Number(arg)));
        return { message: `${port}:${req.message}` };
      },
    });
  const server = http2.createServer(
    connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }),
  );
  server.on("session", () => sessions++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    seen,
    sessions: () => sessions,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // close() waits for sessions; the client's are closed in afterEach.
      }),
  };
}

const servers: Awaited<ReturnType<typeof echoServer>>[] = [];
afterEach(async () => {
  await closeClients();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server() {
  const s = await echoServer();
  servers.push(s);
  return s;
}

function parentCall(deadlineInMs: number | undefined, signal = new AbortController().signal): CallContext {
  return {
    signal,
    deadline: deadlineInMs === undefined ? undefined : Date.now() + deadlineInMs,
    requestId: "parent-req-1",
  };
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail");
}

describe("callUndecoded", () => {
  it("returns the reply's bytes, from the same call a typed method makes", async () => {
    const s = await server();
    const c = createClient(EchoService, { target: `127.0.0.1:${s.port}`, name: "echo" });
    const bytes = await runInCall(parentCall(1000), () =>
      callUndecoded(c, EchoService.method.echo, { message: "raw" }, { timeoutMs: 500 }),
    );
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(fromBinary(EchoResponseSchema, bytes).message).toBe(`${s.port}:raw`);
    expect(Buffer.from(bytes)).toEqual(
      Buffer.from(toBinary(EchoResponseSchema, create(EchoResponseSchema, { message: `${s.port}:raw` }))),
    );
    // The client's own call: its attempts, the caller's deadline and request id.
    expect(attemptsOf(c)).toBe(1);
    expect(Number.parseInt(s.seen[0]!.timeout!, 10)).toBeLessThanOrEqual(500);
    expect(s.seen[0]!.requestId).toBe("parent-req-1");
  });

  it("fails as the typed call does", async () => {
    const s = await server();
    const c = createClient(EchoService, { target: `127.0.0.1:${s.port}`, retry: false });
    const err = await failure(
      callUndecoded(c, EchoService.method.echo, { message: `fail:${Code.NotFound}` }),
    );
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe("planned failure");
  });

  it("encodes the reply of a client that is not createClient's (a stand-in)", async () => {
    const standIn = { echo: async (req: { message: string }) => ({ message: `stand-in:${req.message}` }) };
    const bytes = await callUndecoded(standIn, EchoService.method.echo, { message: "x" });
    expect(fromBinary(EchoResponseSchema, bytes).message).toBe("stand-in:x");
  });
});

describe("createClient", () => {
  it("makes typed calls over one shared HTTP/2 connection per endpoint", async () => {
    const s = await server();
    const a = createClient(EchoService, { target: `127.0.0.1:${s.port}`, name: "echo" });
    const b = createClient(EchoService, { target: `http://127.0.0.1:${s.port}`, name: "echo" });
    for (let i = 0; i < 5; i++) {
      expect((await a.echo({ message: `a${i}` })).message).toBe(`${s.port}:a${i}`);
      await b.echo({ message: `b${i}` });
    }
    expect(s.sessions()).toBe(1);
  });

  it("puts a deadline on every call: the client default, or the call's own", async () => {
    const s = await server();
    const c = createClient(EchoService, { target: `127.0.0.1:${s.port}`, timeoutMs: 150 });
    expect((await failure(c.echo({ message: "slow:1000" }))).code).toBe(Code.DeadlineExceeded);
    expect((await failure(c.echo({ message: "slow:1000" }, { timeoutMs: 50 }))).code).toBe(
      Code.DeadlineExceeded,
    );
    const timeouts = s.seen.map((x) => Number.parseInt(x.timeout ?? "", 10));
    expect(timeouts[0]).toBeLessThanOrEqual(150);
    expect(timeouts[1]).toBeLessThanOrEqual(50);
  });

  it("inside a handler, never gives the outgoing call more time than the incoming one has left", async () => {
    const s = await server();
    const c = createClient(EchoService, { target: `127.0.0.1:${s.port}`, timeoutMs: 5000 });
    await runInCall(parentCall(100), () => c.echo({ message: "hop" }));
    const sent = s.seen[0]!;
    expect(sent.timeout).toMatch(/^\d+m$/);
    expect(Number.parseInt(sent.timeout!, 10)).toBeLessThanOrEqual(100);
    expect(sent.requestId).toBe("parent-req-1");
  });

  it("does not send a call whose incoming deadline has already passed", async () => {
    const s = await server();
    const c = createClient(EchoService, { target: `127.0.0.1:${s.port}` });
    const err = await failure(runInCall(parentCall(-5), () => c.echo({ message: "late" })));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(s.seen).toHaveLength(0);
  });

  it("cancels the outgoing call when the incoming call is cancelled", async () => {
    const s = await server();
    const c = createClient(EchoService, { target: `127.0.0.1:${s.port}` });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    const err = await failure(
      runInCall(parentCall(undefined, ac.signal), () => c.echo({ message: "slow:2000" })),
    );
    expect(err.code).toBe(Code.Canceled);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("round-robins across the endpoints of a comma-separated target", async () => {
    const [s1, s2] = [await server(), await server()];
    const c = createClient(EchoService, { target: `127.0.0.1:${s1.port},127.0.0.1:${s2.port}` });
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push((await c.echo({ message: "rr" })).message.split(":")[0]);
    expect(answers.filter((p) => p === String(s1.port))).toHaveLength(3);
    expect(answers.filter((p) => p === String(s2.port))).toHaveLength(3);
  });
});

/** A client whose breaker to a live echo server has opened on four failures and gone half-open. */
async function halfOpen() {
  const s = await server();
  const c = createClient(EchoService, {
    target: `127.0.0.1:${s.port}`,
    breaker: { volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 200 },
  });
  for (let i = 0; i < 4; i++)
    expect((await failure(c.echo({ message: `fail:${Code.Unavailable}` }))).code).toBe(Code.Unavailable);
  await new Promise((r) => setTimeout(r, 250));
  return { s, c };
}

describe("circuit breaker per endpoint and method", () => {
  it("opens on failures, then fails fast naming the target without calling it, then recovers half-open", async () => {
    const s = await server();
    const logs: { msg: string; endpoint: string; method: string }[] = [];
    const c = createClient(EchoService, {
      target: `127.0.0.1:${s.port}`,
      name: "echo",
      breaker: { volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 300 },
      logger: pino({ level: "info" }, { write: (l: string) => void logs.push(JSON.parse(l)) }),
    });
    for (let i = 0; i < 4; i++)
      expect((await failure(c.echo({ message: `fail:${Code.Unavailable}` }))).code).toBe(Code.Unavailable);
    const calls = s.seen.length;
    const t0 = performance.now();
    const open = await failure(c.echo({ message: "ok" }));
    expect(performance.now() - t0).toBeLessThan(20);
    expect(open.code).toBe(Code.Unavailable);
    expect(open.rawMessage).toBe(
      `circuit open: echo at http://127.0.0.1:${s.port} (dispatch.echo.v1.EchoService/Echo)`,
    );
    expect(s.seen.length).toBe(calls);

    await new Promise((r) => setTimeout(r, 350));
    expect((await c.echo({ message: "probe" })).message).toBe(`${s.port}:probe`);
    expect((await c.echo({ message: "after" })).message).toBe(`${s.port}:after`);
    expect(logs.map((l) => l.msg).filter((m) => m.startsWith("circuit"))).toEqual([
      "circuit opened",
      "circuit half-open: probing",
      "circuit closed",
    ]);
    expect(logs[0]).toMatchObject({ target: "echo", method: "dispatch.echo.v1.EchoService/Echo" });
  });

  it("while the half-open probe is in flight, turns other calls away at once, not after retries", async () => {
    const { s, c } = await halfOpen();
    // Half-open: this call is the probe, held in flight 150 ms.
    const probe = c.echo({ message: "slow:150" });
    await new Promise((r) => setTimeout(r, 20));
    const before = attemptsOf(c);
    const turnedAway = await failure(c.echo({ message: "beside the probe" }));
    expect(turnedAway.code).toBe(Code.Unavailable);
    expect(turnedAway.rawMessage).toMatch(/^circuit open: /);
    // One attempt: Echo is retryable (NO_SIDE_EFFECTS) and UNAVAILABLE a retryable code, but a breaker
    // that turns calls away is not waited out with backoff (it used to be, up to the policy's attempts).
    expect(attemptsOf(c) - before).toBe(1);
    expect(s.seen.map((x) => x.message)).not.toContain("beside the probe");
    expect((await probe).message).toBe(`${s.port}:slow:150`);
    expect((await c.echo({ message: "closed again" })).message).toBe(`${s.port}:closed again`);
  });

  it("sends the half-open probe after the calls turned away beside it have settled", async () => {
    const { s, c } = await halfOpen();
    const order: string[] = [];
    const endpoint = transportOf(c)!.balancer.list()[0]!;
    const transport = endpoint.transport;
    (endpoint as { transport: typeof transport }).transport = {
      ...transport,
      unary: ((...args: Parameters<typeof transport.unary>) => {
        order.push("probe sent");
        return transport.unary(...args);
      }) as typeof transport.unary,
    };
    // Both calls in one turn: the first is the probe, the second is turned away. Sent at once, the probe's
    // set-up (a new connection to an endpoint that was down) would run before the other call settled.
    const probe = c.echo({ message: "probe" });
    const beside = failure(c.echo({ message: "beside" })).then((e) => {
      order.push("beside settled");
      return e;
    });
    expect((await beside).rawMessage).toMatch(/^circuit open: /);
    expect((await probe).message).toBe(`${s.port}:probe`);
    expect(order).toEqual(["beside settled", "probe sent"]);
  });

  it("never opens on caller errors", async () => {
    const s = await server();
    const c = createClient(EchoService, {
      target: `127.0.0.1:${s.port}`,
      breaker: { volumeThreshold: 2, errorThresholdPercentage: 10 },
    });
    for (const code of [
      Code.InvalidArgument,
      Code.NotFound,
      Code.FailedPrecondition,
      Code.AlreadyExists,
      Code.Unauthenticated,
    ]) {
      for (let i = 0; i < 3; i++)
        expect((await failure(c.echo({ message: `fail:${code}` }))).code).toBe(code);
    }
    expect((await c.echo({ message: "fine" })).message).toBe(`${s.port}:fine`);
  });

  it("keeps serving from a healthy endpoint while another's breaker is open", async () => {
    const good = await server();
    const c = createClient(EchoService, {
      target: `127.0.0.1:1,127.0.0.1:${good.port}`,
      breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 },
    });
    const results: string[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        results.push((await c.echo({ message: "x" }, { timeoutMs: 500 })).message);
      } catch (e) {
        results.push(Code[ConnectError.from(e).code]);
      }
    }
    // Once port 1's breaker opened (after its first failures), every call went to the good endpoint.
    expect(results.slice(-5).every((r) => r === `${good.port}:x`)).toBe(true);
  });
});
