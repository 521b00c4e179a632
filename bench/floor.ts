/**
 * The floor: the active-orders path with only the work no implementation can skip. h2load → a node:http2
 * edge that passes the call's bytes on (bench/servers/floor-edge.ts) → a node:http2 backend that runs the
 * repository's query on the same seeded database and answers with the real reply's bytes
 * (bench/servers/floor-backend.ts) → PostgreSQL. Run at the same rates as the stack, on the same machine
 * while the stack idles, it shows what this machine allows for the path at all: a bar the floor misses
 * cannot be met by any Node service on this path here.
 */
import http2 from "node:http2";
import { h2load } from "./h2load.ts";
import type { Arrivals, Point } from "./mobile.ts";
import { startEchoServer } from "./servers/start.ts";
import { cpuPerCall, cpuSeconds, type Stack } from "./stack.ts";

/** The gateway's real gRPC reply to the bench user's ListActiveOrders, as bytes (framed message). */
async function realReply(gatewayUrl: string, token: string, body: Buffer): Promise<Buffer> {
  const session = http2.connect(gatewayUrl);
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": "/dispatch.app.v1.AppService/ListActiveOrders",
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${token}`,
      });
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("trailers", (t) => {
        if (t["grpc-status"] !== "0") reject(new Error(`ListActiveOrders: grpc-status ${t["grpc-status"]}`));
      });
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}

export interface Floor {
  run: (rps: number, durationS: number, arrivals?: Arrivals) => Promise<Point>;
  stop: () => Promise<void>;
}

export async function startFloor(
  stack: Stack,
  opts: { userId: string; token: string; sql: string; requestBody: Buffer },
): Promise<Floor> {
  const reply = await realReply(stack.gatewayUrl, opts.token, opts.requestBody);
  const backend = await startEchoServer("floor-backend.ts", {
    env: {
      DATABASE_URL: stack.databaseUrl("orders"),
      FLOOR_SQL: opts.sql,
      FLOOR_USER_ID: opts.userId,
      FLOOR_REPLY_BASE64: reply.toString("base64"),
    },
  });
  const edge = await startEchoServer("floor-edge.ts", {
    env: { FLOOR_BACKEND: `127.0.0.1:${backend.port}` },
  });
  const pids = { edge: edge.child.pid!, backend: backend.child.pid! };
  return {
    async run(rps, durationS, arrivals = "even") {
      const clients = 10;
      const before = cpuSeconds({ pids });
      const result = await h2load({
        url: `http://127.0.0.1:${edge.port}/dispatch.app.v1.AppService/ListActiveOrders`,
        body: opts.requestBody,
        clients,
        streams: 10,
        rps: rps / clients,
        durationS,
        warmupS: 2,
        arrivals,
      });
      const after = cpuSeconds({ pids });
      const { redis: _, ...cpu } = cpuPerCall(before, after, result.requests);
      return {
        protocol: "gRPC, h2c",
        targetRps: rps,
        achievedRps: Math.round(result.reqPerSec),
        requests: result.requests,
        arrivals,
        errors: result.requests - result.succeeded,
        cpuUsPerCall: cpu,
        p50Ms: result.p50Ms,
        p90Ms: result.p90Ms,
        p99Ms: result.p99Ms,
        fromSchedule: result.fromSchedule,
      };
    },
    async stop() {
      await edge.stop();
      await backend.stop();
    },
  };
}
