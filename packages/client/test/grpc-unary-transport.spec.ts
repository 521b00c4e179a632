import { getEventListeners } from "node:events";
import http2 from "node:http2";
import { createServer, type Socket } from "node:net";
import { deflateSync, gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";
import {
  EchoRequestSchema,
  EchoResponseSchema,
  EchoService,
} from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import { ErrorInfoSchema } from "@dispatch/gen/google/rpc/error_details_pb.ts";
import { StatusSchema } from "@dispatch/gen/google/rpc/status_pb.ts";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { DispatchError, type ServiceRegistration, serve } from "@dispatch/runtime";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createUnaryGrpcTransport, USER_AGENT } from "../src/grpc-unary-transport.ts";
import { closeClients, createClient as createDispatchClient } from "../src/index.ts";
import { neverSent, pushback } from "../src/retry-policy.ts";

type HeadersInit = ConstructorParameters<typeof Headers>[0];

const Echo = EchoService.method.echo;
const MiB = 1024 * 1024;

const sessions: Http2SessionManager[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) s.abort();
  await Promise.all(closers.splice(0).map((c) => c()));
});

function transportTo(port: number) {
  const url = `http://127.0.0.1:${port}`;
  const session = new Http2SessionManager(url);
  sessions.push(session);
  return { transport: createUnaryGrpcTransport(url, session), session };
}

function echo(
  t: Transport,
  message: string,
  opts: { signal?: AbortSignal; timeoutMs?: number; header?: HeadersInit } = {},
) {
  return t.unary(Echo, opts.signal, opts.timeoutMs, opts.header, { message });
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    return e as ConnectError;
  }
  throw new Error("expected the call to fail");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 2000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(5);
  }
}

/**
 * The platform's own server (serve() from @dispatch/runtime). The message picks the behaviour:
 * "meta" echoes request metadata and sets response metadata, "fail" answers NOT_FOUND with an ErrorInfo,
 * "big:<n>" answers a message of n bytes.
 */
async function platformServer() {
  const registration: ServiceRegistration<typeof EchoService> = [
    EchoService,
    {
      echo(req, ctx) {
        const [verb, arg] = req.message.split(":");
        if (verb === "meta") {
          ctx.setResponseHeader("x-echo-header", "h");
          ctx.setResponseTrailer("x-echo-trailer", "t");
          return { message: `${ctx.requestHeader("x-custom")}|${ctx.requestId}` };
        }
        if (verb === "fail") {
          throw new DispatchError(Code.NotFound, "echo 42 not found", {
            reason: "ECHO_NOT_FOUND",
            domain: "echo.dispatch",
            metadata: { echo_id: "42" },
          });
        }
        if (verb === "big") return { message: "x".repeat(Number(arg)) };
        return { message: req.message };
      },
    },
  ];
  const server = await serve({
    name: "echo",
    host: "127.0.0.1",
    port: 0,
    adminPort: false,
    logger: pino({ level: "silent" }),
    services: [registration],
  });
  closers.push(() => server.shutdown());
  return server;
}

interface RawRequest {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** The stream's RST code once it closed (8 = CANCEL). */
  closed: Promise<number>;
}

/** A node:http2 server that answers however `handler` says, to misbehave on purpose. */
async function rawServer(handler: (stream: http2.ServerHttp2Stream, req: RawRequest) => void) {
  const requests: RawRequest[] = [];
  const sockets: Socket[] = [];
  const server = http2.createServer();
  server.on("connection", (socket: Socket) => sockets.push(socket));
  const open = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    open.add(s);
    s.on("close", () => open.delete(s));
  });
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    const req: RawRequest = {
      headers,
      body: Buffer.alloc(0),
      closed: new Promise((r) => stream.on("close", () => r(stream.rstCode))),
    };
    requests.push(req);
    stream.on("error", () => {});
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      req.body = Buffer.concat(chunks);
      handler(stream, req);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as { port: number }).port, requests, sockets };
}

const grpcHeaders = { ":status": 200, "content-type": "application/grpc" };

function frame(payload: Uint8Array, flags = 0): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = flags;
  b.writeUInt32BE(payload.length, 1);
  b.set(payload, 5);
  return b;
}

const responseBytes = (message: string) =>
  toBinary(EchoResponseSchema, create(EchoResponseSchema, { message }));
const reply = (message: string) => frame(responseBytes(message));

/** Headers, then `chunks` as separate writes (`gapMs` apart), then `trailers` (none when null). */
async function respond(
  stream: http2.ServerHttp2Stream,
  chunks: Buffer[],
  trailers: http2.OutgoingHttpHeaders | null = { "grpc-status": "0" },
  headers: http2.OutgoingHttpHeaders = grpcHeaders,
  gapMs = 0,
) {
  stream.respond(headers, { waitForTrailers: trailers !== null });
  if (trailers) stream.once("wantTrailers", () => stream.sendTrailers(trailers));
  for (const c of chunks) {
    stream.write(c);
    if (gapMs) await sleep(gapMs);
  }
  stream.end();
}

describe("unary calls against the platform server", () => {
  it("round-trips a call: request metadata arrives, response headers and trailers come back", async () => {
    const server = await platformServer();
    const { transport, session } = transportTo(server.port);
    const read = vi.spyOn(session, "notifyResponseByteRead");
    const res = await echo(transport, "meta", { header: { "x-request-id": "req-7", "X-Custom": "c1" } });
    // Keepalive learns the connection is alive from response bytes.
    expect(read).toHaveBeenCalled();
    expect(res.message.message).toBe("c1|req-7");
    expect(res.stream).toBe(false);
    expect(res.service).toBe(EchoService);
    expect(res.method).toBe(Echo);
    expect(res.header.get("x-echo-header")).toBe("h");
    expect(res.header.get("content-type")).toBe("application/grpc");
    expect([...res.header.keys()].filter((k) => k.startsWith(":"))).toEqual([]);
    expect(res.trailer.get("x-echo-trailer")).toBe("t");
    expect(res.trailer.get("grpc-status")).toBe("0");
    // An already-built message is sent as it is.
    const again = await transport.unary(
      Echo,
      undefined,
      1000,
      undefined,
      create(EchoRequestSchema, { message: "built" }),
    );
    expect(again.message.message).toBe("built");
  });

  it("decodes an error status with details (trailers-only) into a ConnectError", async () => {
    const server = await platformServer();
    const { transport } = transportTo(server.port);
    const err = await failure(echo(transport, "fail"));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe("echo 42 not found");
    const [info] = err.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe("ECHO_NOT_FOUND");
    expect(info?.metadata).toEqual({ echo_id: "42" });
    expect(err.metadata.get("grpc-status")).toBe(String(Code.NotFound));
  });

  it("accepts a message of exactly 4 MiB and refuses one byte more with RESOURCE_EXHAUSTED", async () => {
    const server = await platformServer();
    const { transport } = transportTo(server.port);
    // 1 tag byte + 4 length bytes + n: 4 MiB exactly.
    const n = 4 * MiB - 5;
    expect((await echo(transport, `big:${n}`)).message.message).toHaveLength(n);
    const err = await failure(echo(transport, `big:${n + 1}`));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toContain(String(4 * MiB + 1));
    // The connection is still good.
    expect((await echo(transport, "after")).message.message).toBe("after");
  });

  it("sends streaming calls through connect-node on the same session", async () => {
    const server = await platformServer();
    const { transport, session } = transportTo(server.port);
    const opened = vi.spyOn(session, "request");
    const ac = new AbortController();
    for await (const res of createClient(Health, transport).watch({ service: "" }, { signal: ac.signal })) {
      expect(res.status).toBe(Serving.SERVING);
      break;
    }
    ac.abort();
    expect((await echo(transport, "unary too")).message.message).toBe("unary too");
    expect(opened).toHaveBeenCalledTimes(2);
  });
});

describe("the request on the wire", () => {
  it("sends the gRPC headers, the caller's metadata and one uncompressed envelope", async () => {
    const s = await rawServer((stream) => void respond(stream, [reply("ok")]));
    const { transport } = transportTo(s.port);
    const headers = new Headers({ "x-custom": "v", "x-token-bin": "AAEC" });
    await echo(transport, "hello", { header: headers, timeoutMs: 250 });
    const [req] = s.requests;
    expect(req!.headers).toMatchObject({
      ":method": "POST",
      ":path": "/dispatch.echo.v1.EchoService/Echo",
      "content-type": "application/grpc+proto",
      te: "trailers",
      "user-agent": USER_AGENT,
      "grpc-timeout": "250m",
      "x-custom": "v",
      "x-token-bin": "AAEC",
    });
    expect(req!.headers["grpc-accept-encoding"]).toBeUndefined();
    expect(req!.headers["grpc-encoding"]).toBeUndefined();
    expect(req!.body[0]).toBe(0);
    expect(req!.body.readUInt32BE(1)).toBe(req!.body.length - 5);
    expect(fromBinary(EchoRequestSchema, req!.body.subarray(5)).message).toBe("hello");

    await echo(transport, "again", { header: [["User-Agent", "caller/2"]] });
    expect(s.requests[1]!.headers["user-agent"]).toBe("caller/2");
    expect(s.requests[1]!.headers["grpc-timeout"]).toBeUndefined();

    // Any iterable of pairs, and a plain object as Headers would read it: names lower-cased, values
    // trimmed, two spellings of one name joined.
    await echo(transport, "map", { header: new Map([["X-Map", "m"]]) as unknown as HeadersInit });
    expect(s.requests[2]!.headers["x-map"]).toBe("m");
    await echo(transport, "record", { header: { "X-Twice": " a ", "x-twice": "b" } });
    expect(s.requests[3]!.headers["x-twice"]).toBe(
      new Headers({ "X-Twice": " a ", "x-twice": "b" }).get("x-twice"),
    );
  });

  it("is what createClient sends unary calls with", async () => {
    const s = await rawServer((stream) => void respond(stream, [reply("via client")]));
    const client = createDispatchClient(EchoService, { target: `127.0.0.1:${s.port}` });
    try {
      expect((await client.echo({ message: "x" })).message).toBe("via client");
      expect(s.requests[0]!.headers["user-agent"]).toBe(USER_AGENT);
      // The caller's headers, in any form connect accepts, arrive under lower-case names.
      await client.echo({ message: "y" }, { headers: [["X-Caller", "c"]] });
      await client.echo({ message: "z" }, { headers: new Headers({ "X-Caller": "d" }) });
      expect(s.requests.slice(1).map((r) => r.headers["x-caller"])).toEqual(["c", "d"]);
    } finally {
      await closeClients();
    }
  });
});

describe("responses that are not a plain OK", () => {
  it("decodes a status with details from trailers; metadata holds headers and trailers", async () => {
    const status = create(StatusSchema, {
      code: Code.NotFound,
      message: "no echo 42 (100%)",
      details: [anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "ECHO_NOT_FOUND" }))],
    });
    const s = await rawServer(
      (stream) =>
        void respond(
          stream,
          [],
          {
            "grpc-status": String(Code.NotFound),
            "grpc-message": encodeURIComponent("no echo 42 (100%)"),
            "grpc-status-details-bin": Buffer.from(toBinary(StatusSchema, status)).toString("base64"),
            "grpc-retry-pushback-ms": "150",
            "x-trailer": "t",
          },
          { ...grpcHeaders, "x-header": "h" },
        ),
    );
    const { transport } = transportTo(s.port);
    const err = await failure(echo(transport, "x"));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe("no echo 42 (100%)");
    expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe("ECHO_NOT_FOUND");
    expect(err.metadata.get("x-header")).toBe("h");
    expect(err.metadata.get("x-trailer")).toBe("t");
    expect(pushback(err)).toBe(150);
  });

  it("reads the status from a trailers-only response", async () => {
    const s = await rawServer((stream) =>
      stream.respond(
        { ...grpcHeaders, "grpc-status": "14", "grpc-message": "try%20again", "retry-after": "2" },
        { endStream: true },
      ),
    );
    const { transport } = transportTo(s.port);
    const err = await failure(echo(transport, "x"));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe("try again");
    expect(err.metadata.get("retry-after")).toBe("2");
  });

  it.each([
    [503, Code.Unavailable],
    [404, Code.Unimplemented],
    [429, Code.Unavailable],
    [401, Code.Unauthenticated],
    [500, Code.Unknown],
  ])("maps HTTP status %i to %s", async (status, code) => {
    const s = await rawServer((stream) => {
      stream.respond({ ":status": status, "content-type": "text/plain", "x-proxy": "p" });
      stream.end("no");
    });
    const { transport } = transportTo(s.port);
    const err = await failure(echo(transport, "x"));
    expect(err.code).toBe(code);
    expect(err.rawMessage).toBe(`HTTP ${status}`);
    expect(err.metadata.get("x-proxy")).toBe("p");
  });

  it("refuses a response that is not gRPC", async () => {
    const s = await rawServer((stream) => {
      stream.respond({ ":status": 200, "content-type": "text/html" });
      stream.end("<html></html>");
    });
    const { transport } = transportTo(s.port);
    const err = await failure(echo(transport, "x"));
    expect(err.code).toBe(Code.Unknown);
    expect(err.rawMessage).toContain("unsupported content type text/html");
    expect(err.metadata.get("content-type")).toBe("text/html");
  });

  it("fails INTERNAL when trailers lack grpc-status, or there are no trailers at all", async () => {
    const s = await rawServer((stream, req) => {
      const message = fromBinary(EchoRequestSchema, req.body.subarray(5)).message;
      if (message === "no-status") void respond(stream, [reply("ok")], { "x-trailer": "t" });
      else void respond(stream, [reply("ok")], null);
    });
    const { transport } = transportTo(s.port);
    const a = await failure(echo(transport, "no-status"));
    expect(a.code).toBe(Code.Internal);
    expect(a.rawMessage).toBe("protocol error: missing status");
    expect(a.metadata.get("x-trailer")).toBe("t");
    const b = await failure(echo(transport, "no-trailers"));
    expect(b.code).toBe(Code.Internal);
    expect(b.rawMessage).toBe("protocol error: missing status");
  });

  it("fails UNIMPLEMENTED on two response messages, in one write or in two", async () => {
    const s = await rawServer((stream, req) => {
      const message = fromBinary(EchoRequestSchema, req.body.subarray(5)).message;
      if (message === "joined") void respond(stream, [Buffer.concat([reply("a"), reply("b")])]);
      else void respond(stream, [reply("a"), reply("b")], { "grpc-status": "0" }, grpcHeaders, 10);
    });
    const { transport, session } = transportTo(s.port);
    for (const m of ["joined", "apart"]) {
      const err = await failure(echo(transport, m));
      expect(err.code).toBe(Code.Unimplemented);
      expect(err.rawMessage).toBe("protocol error: received extra output message for unary method");
    }
    await until(() => session.state() === "idle");
  });

  it("fails UNIMPLEMENTED on an OK status without a message", async () => {
    const s = await rawServer((stream) => void respond(stream, []));
    const { transport } = transportTo(s.port);
    const err = await failure(echo(transport, "x"));
    expect(err.code).toBe(Code.Unimplemented);
    expect(err.rawMessage).toBe("protocol error: missing output message for unary method");
    expect(err.metadata.get("grpc-status")).toBe("0");
  });

  it("fails INTERNAL on an envelope cut short", async () => {
    const s = await rawServer((stream) => void respond(stream, [reply("complete").subarray(0, 7)]));
    const { transport } = transportTo(s.port);
    const err = await failure(echo(transport, "x"));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("protocol error: incomplete envelope");
  });
});

describe("envelope framing", () => {
  it("reassembles a message split across DATA frames, the 5-byte prefix included", async () => {
    const text = `split-${"y".repeat(300)}`;
    const whole = reply(text);
    const pieces = [whole.subarray(0, 2), whole.subarray(2, 8), whole.subarray(8, 100), whole.subarray(100)];
    const s = await rawServer(
      (stream) => void respond(stream, pieces, { "grpc-status": "0" }, grpcHeaders, 10),
    );
    const { transport } = transportTo(s.port);
    expect((await echo(transport, "x")).message.message).toBe(text);
  });

  it("accepts an empty message (a zero-length envelope)", async () => {
    const s = await rawServer((stream) => void respond(stream, [frame(new Uint8Array(0))]));
    const { transport } = transportTo(s.port);
    expect((await echo(transport, "x")).message.message).toBe("");
  });
});

describe("compressed responses", () => {
  const compressedServer = (encoding: string | undefined, payload: Buffer) =>
    rawServer(
      (stream) =>
        void respond(
          stream,
          [frame(payload, 1)],
          { "grpc-status": "0" },
          {
            ...grpcHeaders,
            ...(encoding ? { "grpc-encoding": encoding } : {}),
          },
        ),
    );

  it.each([
    ["gzip", gzipSync],
    ["deflate", deflateSync],
  ] as const)("decompresses a %s message", async (encoding, compress) => {
    const s = await compressedServer(encoding, compress(responseBytes("squeezed")));
    expect((await echo(transportTo(s.port).transport, "x")).message.message).toBe("squeezed");
  });

  it("fails INTERNAL on an unknown encoding, or a compressed message without one", async () => {
    const a = await compressedServer("snappy", Buffer.from(responseBytes("x")));
    const errA = await failure(echo(transportTo(a.port).transport, "x"));
    expect(errA.code).toBe(Code.Internal);
    expect(errA.rawMessage).toContain('"snappy"');
    const b = await compressedServer(undefined, gzipSync(responseBytes("x")));
    expect((await failure(echo(transportTo(b.port).transport, "x"))).code).toBe(Code.Internal);
  });

  it("fails RESOURCE_EXHAUSTED when a message decompresses to more than 4 MiB", async () => {
    const bomb = gzipSync(Buffer.alloc(5 * MiB));
    expect(bomb.length).toBeLessThan(MiB);
    const s = await compressedServer("gzip", bomb);
    const err = await failure(echo(transportTo(s.port).transport, "x"));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toContain(String(4 * MiB));
  });
});

describe("deadlines and cancellation", () => {
  it("fails DEADLINE_EXCEEDED when the server never answers, and cancels the stream", async () => {
    const s = await rawServer(() => {});
    const { transport, session } = transportTo(s.port);
    const t0 = Date.now();
    const err = await failure(echo(transport, "x", { timeoutMs: 100 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.requests[0]!.headers["grpc-timeout"]).toBe("100m");
    expect(await s.requests[0]!.closed).toBe(http2.constants.NGHTTP2_CANCEL);
    await until(() => session.state() === "idle");
  });

  it("fails CANCELED when the signal aborts, cancels the stream, and leaves no listener behind", async () => {
    const s = await rawServer(() => {});
    const { transport } = transportTo(s.port);
    const ac = new AbortController();
    const call = failure(echo(transport, "x", { signal: ac.signal, timeoutMs: 60_000 }));
    await until(() => s.requests.length === 1);
    ac.abort();
    const err = await call;
    expect(err.code).toBe(Code.Canceled);
    expect(await s.requests[0]!.closed).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("keeps the code of a ConnectError abort reason", async () => {
    const s = await rawServer(() => {});
    const { transport } = transportTo(s.port);
    const ac = new AbortController();
    const call = failure(echo(transport, "x", { signal: ac.signal }));
    await until(() => s.requests.length === 1);
    ac.abort(new ConnectError("the incoming call's deadline passed", Code.DeadlineExceeded));
    const err = await call;
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.rawMessage).toBe("the incoming call's deadline passed");
  });

  it("cancels a stream that opens after the deadline passed", async () => {
    const s = await rawServer((stream) => void respond(stream, [reply("late")]));
    const { transport, session } = transportTo(s.port);
    const open = session.request.bind(session);
    session.request = async (...args) => {
      await sleep(50);
      return open(...args);
    };
    const err = await failure(echo(transport, "x", { timeoutMs: 10 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    await until(() => s.requests.length === 1);
    expect(await s.requests[0]!.closed).toBe(http2.constants.NGHTTP2_CANCEL);
    await until(() => session.state() === "idle");
  });

  it("does not send a call whose signal is already aborted", async () => {
    const s = await rawServer((stream) => void respond(stream, [reply("ok")]));
    const { transport, session } = transportTo(s.port);
    const ac = new AbortController();
    ac.abort();
    expect((await failure(echo(transport, "x", { signal: ac.signal }))).code).toBe(Code.Canceled);
    await sleep(20);
    expect(s.requests).toHaveLength(0);
    expect(session.state()).toBe("closed");
  });

  it("removes its abort listener and deadline timer on every path", async () => {
    const s = await rawServer((stream, req) => {
      const message = fromBinary(EchoRequestSchema, req.body.subarray(5)).message;
      if (message === "ok") void respond(stream, [reply("ok")]);
      else if (message === "error")
        stream.respond({ ...grpcHeaders, "grpc-status": "5" }, { endStream: true });
      else if (message === "refuse") stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    const { transport, session } = transportTo(s.port);
    const shared = new AbortController().signal;
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    await echo(transport, "ok", { signal: shared, timeoutMs: 60_000 });
    const before = timers();
    for (let i = 0; i < 10; i++) {
      await echo(transport, "ok", { signal: shared, timeoutMs: 60_000 });
      await echo(transport, "error", { signal: shared, timeoutMs: 60_000 }).catch(() => {});
      await echo(transport, "refuse", { signal: shared, timeoutMs: 60_000 }).catch(() => {});
      await echo(transport, "silent", { signal: shared, timeoutMs: 5 }).catch(() => {});
    }
    expect(getEventListeners(shared, "abort")).toHaveLength(0);
    expect(timers() - before).toBeLessThan(3);
    await until(() => session.state() === "idle");
  });
});

describe("connection and stream failures", () => {
  it("fails UNAVAILABLE on a refused connection, and the call counts as never sent", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await failure(echo(transportTo(port).transport, "x", { timeoutMs: 2000 }));
    expect(err.code).toBe(Code.Unavailable);
    expect(neverSent(err)).toBe(true);
  });

  it.each([
    ["REFUSED_STREAM", http2.constants.NGHTTP2_REFUSED_STREAM, Code.Unavailable, true],
    ["ENHANCE_YOUR_CALM", http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, Code.ResourceExhausted, false],
    ["INTERNAL_ERROR", http2.constants.NGHTTP2_INTERNAL_ERROR, Code.Internal, false],
    ["CANCEL", http2.constants.NGHTTP2_CANCEL, Code.Canceled, false],
  ])("maps RST_STREAM %s", async (name, rst, code, unsent) => {
    const s = await rawServer((stream) => stream.close(rst));
    const { transport, session } = transportTo(s.port);
    const err = await failure(echo(transport, "x"));
    expect(err.code).toBe(code);
    expect(err.rawMessage).toContain(name);
    expect(neverSent(err)).toBe(unsent);
    // The session survives a stream reset.
    await until(() => session.state() === "idle");
  });

  it("fails UNAVAILABLE when the connection drops before the response ends", async () => {
    const s = await rawServer((stream) => {
      stream.respond(grpcHeaders);
      stream.write(reply("partial").subarray(0, 4));
      setTimeout(() => stream.session?.destroy(), 20);
    });
    const err = await failure(echo(transportTo(s.port).transport, "x"));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe("http/2 connection closed before the response ended");
  });

  it("fails ABORTED on a connection reset mid-call, keeping the node error as the cause", async () => {
    const s = await rawServer((stream) => {
      stream.respond(grpcHeaders);
      setTimeout(() => s.sockets[0]?.resetAndDestroy(), 20);
    });
    const err = await failure(echo(transportTo(s.port).transport, "x"));
    expect(err.code).toBe(Code.Aborted);
    expect((err.cause as { code?: string }).code).toBe("ECONNRESET");
  });

  it("maps a node error from opening the stream, keeping it as the cause", async () => {
    // A session that went away between the check and the request: node throws rather than connecting.
    const gone = Object.assign(new Error("The session has been destroyed"), {
      code: "ERR_HTTP2_INVALID_SESSION",
    });
    const session = new Http2SessionManager("http://127.0.0.1:1");
    session.request = () => Promise.reject(gone);
    const err = await failure(echo(createUnaryGrpcTransport("http://127.0.0.1:1", session), "x"));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.cause).toBe(gone);
    expect(neverSent(err)).toBe(true);
  });
});
