import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { ConnectError, createContextKey, createContextValues, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AppService } from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import { type ListenOn, type Logger, listen, runInCall } from "@dispatch/runtime";
import type { AccessTokenVerifier } from "./access-tokens.ts";
import { type appService, kUser } from "./app-rpc.ts";
import { EdgeCalls, timeoutOf } from "./edge-calls.ts";
import { EdgeUnary } from "./edge-unary.ts";
import type { RateLimits } from "./rate-limits.ts";

const kClientIp = createContextKey<string>("");

type Handler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface EdgeOptions {
  port: ListenOn;
  host: string;
  impl: ReturnType<typeof appService>;
  verifier: AccessTokenVerifier;
  limits: RateLimits;
  logger: Logger;
  maxBodyBytes: number;
  corsOrigins: string;
  /** Non-RPC routes, e.g. "/webhooks/payments". */
  routes: Record<string, Handler>;
}

/**
 * The public port. One TCP listener; the first bytes of a connection say which protocol it speaks: the
 * HTTP/2 preface goes to an h2c server, anything else to HTTP/1.1. Plain gRPC unary calls (h2c) and
 * Connect unary POSTs (HTTP/1.1) take the lean path (edge-unary.ts); everything else runs connect-node's
 * handler, so Connect (JSON and binary), gRPC-Web and gRPC all work on either, with CORS for browsers.
 */
export async function startEdgeServer(opts: EdgeOptions): Promise<{ port: number; close(): Promise<void> }> {
  const calls = new EdgeCalls(opts.verifier, opts.limits, opts.logger);
  const lean = new EdgeUnary(opts.impl, calls, opts.maxBodyBytes);
  // On connect-node's path: one JSON line and one set of metrics per RPC, as every internal server has;
  // and a call context, so downstream calls carry this call's request id, deadline and cancellation.
  const observe: Interceptor = (next) => async (req) => {
    const timeout = timeoutOf(req.header);
    const call = calls.begin(
      req.method,
      req.header,
      req.contextValues.get(kClientIp),
      req.requestMethod === "GET" ? "connect-get" : protocolOf(req.header.get("content-type")),
      Number.isNaN(timeout) ? undefined : timeout,
    );
    const ctx = {
      signal: req.signal,
      deadline: call.deadline,
      requestId: call.requestId,
      traceSpan: call.traceSpan,
    };
    let code = 0;
    try {
      const res = await runInCall(ctx, () => next(req));
      res.header.set("x-request-id", call.requestId);
      return res;
    } catch (err) {
      const ce = ConnectError.from(err);
      code = ce.code;
      ce.metadata.set("x-request-id", call.requestId);
      throw ce;
    } finally {
      call.end(code);
    }
  };

  const edge: Interceptor = (next) => async (req) => {
    try {
      const ip = req.contextValues.get(kClientIp);
      req.contextValues.set(kUser, await calls.admit(req.method.name, req.header.get("authorization"), ip));
      return await next(req);
    } catch (err) {
      throw calls.toConnectError(err, req.method.name);
    }
  };

  const rpc = connectNodeAdapter({
    routes: (router) => router.service(AppService, opts.impl),
    interceptors: [observe, edge],
    readMaxBytes: opts.maxBodyBytes,
    contextValues: (req) => createContextValues().set(kClientIp, req.socket?.remoteAddress ?? ""),
    fallback: (req, res) => {
      const route = opts.routes[(req.url ?? "").split("?")[0] ?? ""];
      if (route) return route(req, res as http.ServerResponse);
      (res as http.ServerResponse).writeHead(404, { "content-type": "text/plain" });
      (res as http.ServerResponse).end("not found\n");
    },
  });

  const origins = opts.corsOrigins.split(",").map((o) => o.trim());
  const handler: Handler = (req, res) => {
    const origin = req.headers.origin;
    const r = res as http.ServerResponse;
    if (typeof origin === "string" && (origins.includes("*") || origins.includes(origin))) {
      r.setHeader("access-control-allow-origin", origins.includes("*") ? "*" : origin);
      r.setHeader("vary", "origin");
      r.setHeader(
        "access-control-expose-headers",
        "grpc-status, grpc-message, grpc-status-details-bin, connect-protocol-version, retry-after",
      );
      if (req.method === "OPTIONS") {
        r.writeHead(204, {
          "access-control-allow-methods": "POST, GET",
          "access-control-allow-headers":
            "content-type, authorization, connect-protocol-version, connect-timeout-ms, grpc-timeout, x-grpc-web, x-user-agent, x-request-id",
          "access-control-max-age": "7200",
        });
        r.end();
        return;
      }
    }
    if (req instanceof http.IncomingMessage && lean.connect(req, res as http.ServerResponse)) return;
    rpc(req as http.IncomingMessage, res as http.ServerResponse);
  };

  const h1 = http.createServer(handler as http.RequestListener);
  // No request listener: each stream is first offered to the lean gRPC path; the others get node's
  // compatibility request and response, as http2.createServer(handler) would make them.
  const h2 = http2.createServer();
  h2.on("stream", (stream, headers, _flags, rawHeaders) => {
    if (lean.grpc(stream, headers)) return;
    const req = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const res = new http2.Http2ServerResponse(stream);
    if (headers[":method"] === "CONNECT") {
      res.writeHead(405).end();
      return;
    }
    if (headers.expect !== undefined) {
      if (headers.expect !== "100-continue") {
        res.writeHead(417).end();
        return;
      }
      res.writeContinue();
    }
    handler(req, res);
  });
  h2.on("sessionError", () => {});
  const sockets = new Set<net.Socket>();
  // noDelay: node's http server turns Nagle's algorithm off on the connections it accepts itself; these
  // are accepted here and handed over, so without it small HTTP/1.1 replies wait for the client's
  // delayed ACK. (HTTP/2 sessions set it themselves.)
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      if (chunk.subarray(0, 3).toString("latin1") === "PRI") {
        // http2 reads what is already buffered, then takes over the socket natively.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  await listen(tcp, opts.port, opts.host);
  return {
    port: (tcp.address() as net.AddressInfo).port,
    async close() {
      // Stop accepting, let idle HTTP/1.1 keep-alives go, then cut what remains (clients reconnect elsewhere).
      const closed = new Promise<void>((r) => tcp.close(() => r()));
      h1.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 100));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

function protocolOf(contentType: string | null): string {
  if (!contentType) return "unknown";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}
