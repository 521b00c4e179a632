import { randomUUID } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AppService } from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import {
  accessLogger,
  CODE_NAMES,
  type Logger,
  logRpc,
  runInCall,
  ServerMethodMetrics,
  serverSpan,
} from "@dispatch/runtime";
import type { AccessTokenVerifier } from "./access-tokens.ts";
import { type appService, kUser, PUBLIC_METHODS } from "./app-rpc.ts";
import type { RateLimits } from "./rate-limits.ts";

const kClientIp = createContextKey<string>("");

type Handler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface EdgeOptions {
  port: number;
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
 * HTTP/2 preface goes to an h2c server, anything else to HTTP/1.1. Both run the same connect-node
 * handler, so Connect (JSON and binary), gRPC-Web and gRPC all work on either, with CORS for browsers.
 */
export async function startEdgeServer(opts: EdgeOptions): Promise<{ port: number; close(): Promise<void> }> {
  const methodMetrics = new Map<string, ServerMethodMetrics>();
  const access = accessLogger(opts.logger);
  // One JSON line and one set of metrics per RPC, as every internal server has; and a call context, so
  // downstream calls carry this call's request id, deadline and cancellation.
  const observe: Interceptor = (next) => async (req) => {
    const started = performance.now();
    const key = req.method.name;
    let metrics = methodMetrics.get(key);
    if (!metrics) {
      metrics = new ServerMethodMetrics(req.method.methodKind, req.service.typeName, req.method.name);
      methodMetrics.set(key, metrics);
    }
    metrics.start();
    const requestId = req.header.get("x-request-id") || randomUUID();
    const timeout = timeoutOf(req.header);
    const span = serverSpan(req.header, req.service.typeName, req.method.name, {
      "rpc.system": "connect_rpc",
      "dispatch.request_id": requestId,
    });
    const ctx = {
      signal: req.signal,
      deadline: timeout === undefined ? undefined : Date.now() + timeout,
      requestId,
      traceSpan: span,
    };
    let code = 0;
    try {
      const res = await runInCall(ctx, () => next(req));
      res.header.set("x-request-id", requestId);
      return res;
    } catch (err) {
      const ce = ConnectError.from(err);
      code = ce.code;
      ce.metadata.set("x-request-id", requestId);
      throw ce;
    } finally {
      metrics.done(code, (performance.now() - started) / 1000);
      span?.end(code);
      const ids = span;
      const fields = {
        rpc: { service: req.service.typeName, method: req.method.name },
        code: CODE_NAMES[code],
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        peer: req.contextValues.get(kClientIp),
        requestId,
        ...(ids ? { trace_id: ids.traceId, span_id: ids.spanId } : {}),
        protocol: req.requestMethod === "GET" ? "connect-get" : protocolOf(req.header.get("content-type")),
      };
      logRpc(access, fields, code);
    }
  };

  const edge: Interceptor = (next) => async (req) => {
    try {
      // Limits first: a client looping on errors is refused here, before anything downstream.
      const ip = req.contextValues.get(kClientIp) || "unknown";
      if (PUBLIC_METHODS.has(req.method.name)) {
        await opts.limits.consumeIp(ip);
      } else {
        const authorization = req.header.get("authorization");
        // A token already verified costs nothing to recognise: both limits then go to Redis together
        // (one round trip). Any other token is checked only after the address's limit has passed.
        let user = opts.verifier.known(authorization);
        if (user) {
          await Promise.all([opts.limits.consumeIp(ip), opts.limits.consumeUser(user.userId)]);
        } else {
          await opts.limits.consumeIp(ip);
          user = await opts.verifier.verify(authorization);
          await opts.limits.consumeUser(user.userId);
        }
        req.contextValues.set(kUser, user);
      }
      return await next(req);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      opts.logger.error({ err, method: req.method.name }, "unexpected error at the edge");
      throw new ConnectError("internal error", Code.Internal);
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
    rpc(req as http.IncomingMessage, res as http.ServerResponse);
  };

  const h1 = http.createServer(handler as http.RequestListener);
  const h2 = http2.createServer(
    handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  );
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
  tcp.listen(opts.port, opts.host);
  await once(tcp, "listening");
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

const GRPC_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The caller's deadline in ms: Connect's connect-timeout-ms, or gRPC's and gRPC-Web's grpc-timeout. */
function timeoutOf(header: Headers): number | undefined {
  const connect = header.get("connect-timeout-ms");
  if (connect && /^\d{1,10}$/.test(connect)) return Number(connect);
  const m = /^(\d{1,8})([HMSmun])$/.exec(header.get("grpc-timeout") ?? "");
  return m ? Number(m[1]) * GRPC_UNITS[m[2]!]! : undefined;
}
