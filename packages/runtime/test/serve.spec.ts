import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  EchoRequestSchema,
  EchoResponseSchema,
  EchoService,
} from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import { BadRequestSchema, ErrorInfoSchema } from "@dispatch/gen/google/rpc/error_details_pb.ts";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@dispatch/gen/grpc/health/v1/health_pb.ts";
import { ServerReflection } from "@dispatch/gen/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflection as ServerReflectionAlpha } from "@dispatch/gen/grpc/reflection/v1alpha/reflection_pb.ts";
import * as grpc from "@grpc/grpc-js";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { runInCall } from "../src/call-context.ts";
import { type Server, serve, startTracing, stopTracing } from "../src/index.ts";
import { echoService, type Observed } from "./echo-service.ts";
import { grpcFrame, rawCall } from "./raw-grpc.ts";

const started: Server[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.shutdown()));
});

async function start(
  opts: {
    maxReceiveMessageBytes?: number;
    shutdownGraceMs?: number;
    adminPort?: number | false;
    maxInFlight?: number;
  } = {},
) {
  const observed: Observed = { aborts: [], contexts: [], completed: [] };
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const server = await serve({
    name: "echo",
    host: "127.0.0.1",
    port: 0,
    adminPort: opts.adminPort ?? false,
    logger,
    services: [echoService(observed)],
    ...(opts.maxReceiveMessageBytes ? { maxReceiveMessageBytes: opts.maxReceiveMessageBytes } : {}),
    ...(opts.shutdownGraceMs ? { shutdownGraceMs: opts.shutdownGraceMs } : {}),
    ...(opts.maxInFlight ? { maxInFlight: opts.maxInFlight } : {}),
  });
  started.push(server);
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` });
  return {
    server,
    observed,
    logs,
    echo: createClient(EchoService, transport),
    health: createClient(Health, transport),
    transport,
  };
}

const echoBytes = (message: string) =>
  grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message })));
const ECHO = "/dispatch.echo.v1.EchoService/Echo";

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail");
}

describe("serve(): unary calls from real clients", () => {
  it("answers connect-node and @grpc/grpc-js clients", async () => {
    const { server, echo } = await start();
    expect((await echo.echo({ message: "hello" })).message).toBe("hello");

    const Client = grpc.makeGenericClientConstructor(
      {
        Echo: {
          path: ECHO,
          requestStream: false,
          responseStream: false,
          requestSerialize: (m: { message: string }) =>
            Buffer.from(toBinary(EchoRequestSchema, create(EchoRequestSchema, m))),
          requestDeserialize: (b: Buffer) => fromBinary(EchoRequestSchema, b),
          responseSerialize: (m: { message: string }) =>
            Buffer.from(toBinary(EchoResponseSchema, create(EchoResponseSchema, m))),
          responseDeserialize: (b: Buffer) => fromBinary(EchoResponseSchema, b),
        },
      },
      "EchoService",
    );
    const client = new Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<{ message: string }>((resolve, reject) =>
        (
          client as unknown as {
            Echo: (r: unknown, cb: (e: unknown, r: { message: string }) => void) => void;
          }
        ).Echo({ message: "from grpc-js" }, (err, res) => (err ? reject(err) : resolve(res))),
      );
      expect(reply.message).toBe("from grpc-js");
    } finally {
      client.close();
    }
  });

  it("answers with gRPC's headers, one Date, the message, and the status in trailers", async () => {
    const { server } = await start();
    const payload = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "wire" }));
    const before = Math.floor(Date.now() / 1000) * 1000;
    const r = await rawCall(server.port, ECHO, grpcFrame(payload));
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("application/grpc");
    expect(r.headers["grpc-accept-encoding"]).toBe("identity,gzip,deflate");
    expect(r.headers["grpc-status"]).toBeUndefined();
    // node joins repeated headers; one Date, a real HTTP date of now
    const date = r.headers.date as string;
    expect(date).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Date.parse(date)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(date)).toBeLessThanOrEqual(Date.now());
    expect(r.trailers["grpc-status"]).toBe("0");
    expect(fromBinary(EchoResponseSchema, r.body.subarray(5)).message).toBe("wire");
  });

  it("answers 200 concurrent calls on one connection, each with its own message", async () => {
    const { echo } = await start();
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => echo.echo({ message: `call ${i}` }).then((r) => r.message)),
    );
    expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => `call ${i}`));
  });

  it("gives a call without x-request-id a UUID-shaped request id of its own", async () => {
    const { echo, logs } = await start();
    await echo.echo({ message: "a" });
    await echo.echo({ message: "b" });
    await new Promise((r) => setTimeout(r, 10));
    const ids = logs.filter((l) => l.msg === "rpc").map((l) => l.requestId as string);
    expect(ids).toHaveLength(2);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it("passes request metadata in and response metadata out, and keeps the caller's request id", async () => {
    const { echo, logs } = await start();
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const res = await echo.echo(
      { message: "meta" },
      {
        headers: { "x-custom": "abc", "x-request-id": "req-123" },
        onHeader: (h) => (header = h),
        onTrailer: (t) => (trailer = t),
      },
    );
    expect(res.message).toBe("abc|req-123");
    expect(header?.get("x-echo-header")).toBe("h");
    expect(trailer?.get("x-echo-trailer")).toBe("t");
    await new Promise((r) => setTimeout(r, 10));
    const line = logs.find((l) => l.requestId === "req-123");
    expect(line).toMatchObject({
      rpc: { service: "dispatch.echo.v1.EchoService", method: "Echo" },
      code: "OK",
    });
    expect(typeof line?.durationMs).toBe("number");
    expect(line?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("continues the caller's trace when tracing is on: a server span, and its ids on the RPC log line", async () => {
    const exporter = new InMemorySpanExporter();
    startTracing({ service: "echo", exporter, immediate: true, ratio: 0 });
    try {
      const { echo, logs } = await start();
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      await echo.echo(
        { message: "hi" },
        { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, "x-request-id": "req-traced" } },
      );
      await new Promise((r) => setTimeout(r, 10));
      const [span] = exporter.getFinishedSpans();
      // Sampled because the caller sampled it (parent-based), although new traces here are at ratio 0.
      expect(span?.name).toBe("dispatch.echo.v1.EchoService/Echo");
      expect(span?.spanContext().traceId).toBe(traceId);
      expect(span?.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
      expect(logs.find((l) => l.requestId === "req-traced")).toMatchObject({
        trace_id: traceId,
        span_id: span?.spanContext().spanId,
      });
      // A call with no traceparent starts a new trace, unsampled at ratio 0: no span recorded, but its
      // log line still has ids; a caller that did not sample keeps its trace id in our logs.
      await echo.echo({ message: "hi" }, { headers: { "x-request-id": "req-unsampled" } });
      const otherTrace = "0af7651916cd43dd8448eb211c80319c";
      await echo.echo(
        { message: "hi" },
        {
          headers: {
            traceparent: `00-${otherTrace}-b7ad6b7169203331-00`,
            "x-request-id": "req-caller-unsampled",
          },
        },
      );
      await new Promise((r) => setTimeout(r, 10));
      expect(exporter.getFinishedSpans()).toHaveLength(1);
      const unsampledLine = logs.find((l) => l.requestId === "req-unsampled");
      expect(unsampledLine?.trace_id).toMatch(/^[0-9a-f]{32}$/);
      expect(unsampledLine?.span_id).toMatch(/^[0-9a-f]{16}$/);
      expect(unsampledLine?.trace_id).not.toBe(traceId);
      expect(logs.find((l) => l.requestId === "req-caller-unsampled")?.trace_id).toBe(otherTrace);
    } finally {
      await stopTracing();
    }
  });

  it("aborts the handler and answers DEADLINE_EXCEEDED when the deadline passes", async () => {
    const { echo, observed } = await start();
    const t0 = Date.now();
    const err = await failure(echo.echo({ message: "slow:3000" }, { timeoutMs: 150 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - t0).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 50));
    expect(observed.aborts).toHaveLength(1);
    expect(observed.aborts[0]!.afterMs).toBeLessThan(400);
    expect(observed.contexts[0]!.deadline).toBeGreaterThan(t0);
    expect(observed.completed).toEqual([]);
  });

  it("aborts the handler when the client cancels", async () => {
    const { echo, observed } = await start();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = await failure(echo.echo({ message: "slow:3000" }, { signal: ac.signal }));
    expect(err.code).toBe(Code.Canceled);
    await new Promise((r) => setTimeout(r, 100));
    expect(observed.aborts).toHaveLength(1);
    expect(observed.completed).toEqual([]);
  });

  it("runs each handler inside its call context", async () => {
    const { echo, observed } = await start();
    await echo.echo({ message: "x" }, { timeoutMs: 5000, headers: { "x-request-id": "ctx-1" } });
    const ctx = observed.contexts[0]!;
    expect(ctx.requestId).toBe("ctx-1");
    expect(ctx.timeRemaining()).toBeLessThanOrEqual(5000);
    expect(ctx.service).toBe("dispatch.echo.v1.EchoService");
    // runInCall is what the server uses; a nested run sees the inner context.
    expect(runInCall(ctx, () => ctx.method)).toBe("Echo");
  });
});

describe("serve(): bad input gets a clear status, never a crash", () => {
  it("refuses a message over the size limit with RESOURCE_EXHAUSTED", async () => {
    const { echo } = await start({ maxReceiveMessageBytes: 1024 });
    const err = await failure(echo.echo({ message: "x".repeat(4000) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/larger than the limit of 1024 bytes/);
    expect((await echo.echo({ message: "small" })).message).toBe("small");
  });

  it("answers UNIMPLEMENTED for an unknown service or method", async () => {
    const { server } = await start();
    const svc = await rawCall(server.port, "/nope.v1.Nope/Do", echoBytes("x"));
    expect(svc.grpcStatus).toBe(Code.Unimplemented);
    expect(svc.grpcMessage).toBe("unknown service nope.v1.Nope");
    const method = await rawCall(server.port, "/dispatch.echo.v1.EchoService/Shout", echoBytes("x"));
    expect(method.grpcStatus).toBe(Code.Unimplemented);
    expect(method.grpcMessage).toMatch(/unknown method Shout/);
  });

  it("answers INVALID_ARGUMENT for bytes that are not the request message, and keeps serving", async () => {
    const { server, echo } = await start();
    const res = await rawCall(server.port, ECHO, grpcFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
    expect(res.status).toBe(200);
    expect(res.grpcStatus).toBe(Code.InvalidArgument);
    expect(res.grpcMessage).toMatch(/could not be parsed/);
    const truncated = await rawCall(server.port, ECHO, Buffer.from([0, 0, 0, 0, 9, 1, 2]));
    expect(truncated.grpcStatus).toBe(Code.InvalidArgument);
    const twice = await rawCall(server.port, ECHO, Buffer.concat([echoBytes("a"), echoBytes("b")]));
    expect(twice.grpcStatus).toBe(Code.InvalidArgument);
    expect((await echo.echo({ message: "still here" })).message).toBe("still here");
  });

  it("answers HTTP 415 for a non-gRPC content type and 405 for GET", async () => {
    const { server } = await start();
    const json = await rawCall(server.port, ECHO, Buffer.from("{}"), { "content-type": "application/json" });
    expect(json.status).toBe(415);
    const get = await rawCall(server.port, ECHO, Buffer.alloc(0), { ":method": "GET" });
    expect(get.status).toBe(405);
  });

  it("accepts gzip-compressed requests and refuses unknown encodings naming the supported ones", async () => {
    const { server } = await start();
    const payload = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "zipped" }));
    const ok = await rawCall(server.port, ECHO, grpcFrame(gzipSync(payload), true), {
      "grpc-encoding": "gzip",
    });
    expect(ok.grpcStatus).toBe(0);
    expect(fromBinary(EchoResponseSchema, ok.body.subarray(5)).message).toBe("zipped");
    const bad = await rawCall(server.port, ECHO, grpcFrame(payload, true), { "grpc-encoding": "snappy" });
    expect(bad.grpcStatus).toBe(Code.Unimplemented);
    expect(bad.headers["grpc-accept-encoding"]).toBe("identity,gzip,deflate");
  });

  it("hides unexpected errors behind INTERNAL and logs them in full", async () => {
    const { echo, logs } = await start();
    const err = await failure(echo.echo({ message: "fail:internal" }));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("internal error");
    expect(JSON.stringify(err.metadata)).not.toContain("hunter2");
    await new Promise((r) => setTimeout(r, 10));
    const logged = logs.find((l) => l.level === 50);
    expect(JSON.stringify(logged)).toContain("hunter2");
  });

  it("sends a domain error's code, reason and field violations as google.rpc details", async () => {
    const { echo } = await start();
    const notFound = await failure(echo.echo({ message: "fail:reason" }));
    expect(notFound.code).toBe(Code.NotFound);
    expect(notFound.findDetails(ErrorInfoSchema)[0]).toMatchObject({
      reason: "ECHO_NOT_FOUND",
      domain: "echo.dispatch",
      metadata: { echo_id: "42" },
    });
    const invalid = await failure(echo.echo({ message: "fail:fields" }));
    expect(invalid.code).toBe(Code.InvalidArgument);
    expect(invalid.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual([
      "message",
      "message.length",
    ]);
  });

  it("percent-encodes non-ASCII status messages", async () => {
    const { server } = await start();
    const res = await rawCall(server.port, "/caf\u00e9.v1.X/Y", echoBytes("x"));
    expect(res.grpcStatus).toBe(Code.Unimplemented);
  });
});

describe("serve(): overload", () => {
  it("sheds calls above the in-flight limit with RESOURCE_EXHAUSTED and a retry pushback, and keeps health answering", async () => {
    const { echo, health, observed, logs } = await start({ maxInFlight: 3 });
    const slow = Array.from({ length: 3 }, () => echo.echo({ message: "slow:1300" }));
    await new Promise((r) => setTimeout(r, 50));
    let trailer: Headers | undefined;
    const shed = await failure(echo.echo({ message: "one too many" }, { onTrailer: (t) => (trailer = t) }));
    expect(shed.code).toBe(Code.ResourceExhausted);
    expect(shed.rawMessage).toMatch(/limit of 3 calls in flight/);
    expect(shed.metadata.get("grpc-retry-pushback-ms") ?? trailer?.get("grpc-retry-pushback-ms")).toBe("100");
    for (let i = 0; i < 4; i++) await failure(echo.echo({ message: "still too many" }));
    // Shed calls are logged as one line a second with their count, not a line each.
    await new Promise((r) => setTimeout(r, 1100));
    expect(logs.filter((l) => l.msg === "rpc" && l.code === "ResourceExhausted")).toEqual([]);
    const summary = logs.filter((l) => l.msg === "calls shed in the last second");
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ shed: 5, rpc: { method: "Echo" } });
    expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
    await Promise.all(slow);
    expect(observed.completed).toHaveLength(3);
    expect((await echo.echo({ message: "room again" })).message).toBe("room again");
  });
});

describe("serve(): readiness", () => {
  it("reports NOT_SERVING while a dependency check fails and recovers by itself", async () => {
    let dbUp = true;
    const server = await serve({
      name: "ready",
      host: "127.0.0.1",
      port: 0,
      adminPort: 0,
      logger: pino({ level: "silent" }),
      services: [echoService({ aborts: [], contexts: [], completed: [] })],
      readiness: async () => {
        if (!dbUp) throw new Error("connection refused");
      },
      readinessIntervalMs: 30,
    });
    started.push(server);
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }));
    const readyz = () => fetch(`http://127.0.0.1:${server.adminPort}/readyz`).then((r) => r.status);
    expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
    dbUp = false;
    await new Promise((r) => setTimeout(r, 100));
    expect((await health.check({ service: "" })).status).toBe(Serving.NOT_SERVING);
    expect((await health.check({ service: "dispatch.echo.v1.EchoService" })).status).toBe(
      Serving.NOT_SERVING,
    );
    expect(await readyz()).toBe(503);
    dbUp = true;
    await new Promise((r) => setTimeout(r, 100));
    expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
    expect(await readyz()).toBe(200);
  });
});

describe("serve(): health and reflection", () => {
  it("reports SERVING per service and overall, NOT_FOUND for unknown names, and lists them", async () => {
    const { health } = await start();
    expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
    expect((await health.check({ service: "dispatch.echo.v1.EchoService" })).status).toBe(Serving.SERVING);
    expect((await failure(health.check({ service: "nope" }))).code).toBe(Code.NotFound);
    const list = await health.list({});
    expect(Object.keys(list.statuses).sort()).toEqual(["", "dispatch.echo.v1.EchoService"]);
  });

  it("streams status changes to Watch, and NOT_SERVING at shutdown", async () => {
    const { server, health } = await start();
    const seen: Serving[] = [];
    const watching = (async () => {
      for await (const r of health.watch({ service: "" })) seen.push(r.status);
    })();
    await new Promise((r) => setTimeout(r, 100));
    await server.shutdown();
    await watching;
    expect(seen).toEqual([Serving.SERVING, Serving.NOT_SERVING]);
    const unknown = health.watch({ service: "nope" });
    await expect(unknown[Symbol.asyncIterator]().next()).rejects.toThrow();
  });

  it("serves reflection v1 and v1alpha: list services and the files that define a symbol", async () => {
    const { transport } = await start();
    for (const service of [ServerReflection, ServerReflectionAlpha]) {
      const client = createClient(service, transport);
      async function* requests() {
        yield { messageRequest: { case: "listServices" as const, value: "" } };
        yield {
          messageRequest: { case: "fileContainingSymbol" as const, value: "dispatch.echo.v1.EchoRequest" },
        };
        yield { messageRequest: { case: "fileByFilename" as const, value: "nope.proto" } };
      }
      const answers = [];
      for await (const a of client.serverReflectionInfo(requests())) answers.push(a.messageResponse);
      expect(answers[0]?.case).toBe("listServicesResponse");
      const names =
        answers[0]?.case === "listServicesResponse" ? answers[0].value.service.map((s) => s.name) : [];
      expect(names).toEqual(
        expect.arrayContaining([
          "dispatch.echo.v1.EchoService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ]),
      );
      expect(answers[1]?.case).toBe("fileDescriptorResponse");
      const files =
        answers[1]?.case === "fileDescriptorResponse"
          ? answers[1].value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b))
          : [];
      expect(files[0]?.name).toBe("dispatch/echo/v1/echo.proto");
      expect(files[0]?.messageType.map((m) => m.name)).toContain("EchoRequest");
      expect(answers[2]?.case).toBe("errorResponse");
    }
  });
});

describe("serve(): graceful shutdown", () => {
  it("finishes a call in flight, refuses new ones, flips readiness, then resolves", async () => {
    const { server, echo, observed } = await start({ adminPort: 0 });
    const ready = () => fetch(`http://127.0.0.1:${server.adminPort}/readyz`).then((r) => r.status);
    expect(await ready()).toBe(200);
    const inFlight = echo.echo({ message: "slow:400" });
    await new Promise((r) => setTimeout(r, 100));
    const stopping = server.shutdown();
    await new Promise((r) => setTimeout(r, 50));
    expect(await ready()).toBe(503);
    const fresh = createClient(
      EchoService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }),
    );
    const refused = await failure(fresh.echo({ message: "new" }, { timeoutMs: 1000 }));
    expect(refused.code).toBe(Code.Unavailable);
    expect((await inFlight).message).toBe("slow:400");
    await stopping;
    expect(observed.completed).toEqual(["slow:400"]);
  });

  it("cancels what is still running after the grace period", async () => {
    const { server, echo, observed } = await start({ shutdownGraceMs: 150 });
    const inFlight = failure(echo.echo({ message: "slow:5000" }));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await server.shutdown();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect((await inFlight).code).toBe(Code.Unavailable);
    expect(observed.aborts).toHaveLength(1);
  });
});

describe("serve(): shutdown under load", () => {
  it("never resets a call: each one is answered, or refused with UNAVAILABLE so a client may retry it", async () => {
    const codes = new Map<string, number>();
    for (let round = 0; round < 12; round++) {
      const { server, echo } = await start();
      let running = true;
      const worker = async () => {
        while (running) {
          let key = "OK";
          try {
            await echo.echo({ message: "slow:3" }, { timeoutMs: 2000 });
          } catch (e) {
            const err = ConnectError.from(e);
            key = `${Code[err.code]}: ${err.rawMessage}`;
          }
          codes.set(key, (codes.get(key) ?? 0) + 1);
          await new Promise((r) => setImmediate(r));
        }
      };
      const workers = Array.from({ length: 20 }, worker);
      await new Promise((r) => setTimeout(r, 60 + round * 7));
      await server.shutdown();
      await new Promise((r) => setTimeout(r, 20));
      running = false;
      await Promise.all(workers);
    }
    const kinds = [...codes.keys()];
    expect(codes.get("OK")).toBeGreaterThan(100);
    // connect-node reports a refused stream as Internal "...REFUSED_STREAM"; clients retry both kinds.
    const retryable = (k: string) => k.startsWith("Unavailable") || k.includes("REFUSED_STREAM");
    expect(kinds.filter((k) => k !== "OK" && !retryable(k))).toEqual([]);
  });
});
