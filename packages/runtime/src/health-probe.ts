/**
 * The image's health check: `node health-probe.mjs [port]` asks grpc.health.v1.Health/Check on
 * 127.0.0.1 (PORT by default) and exits 0 only for SERVING. Used by Docker's HEALTHCHECK and compose;
 * Kubernetes uses its native gRPC probe instead.
 */
import http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import {
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "@dispatch/gen/grpc/health/v1/health_pb.ts";

// The gRPC port serve() listens on: INTERNAL_PORT where a service also has a public port (the gateway).
const port = Number(process.argv[2] ?? process.env.INTERNAL_PORT ?? process.env.PORT);
const service = process.argv[3] ?? "";

function probe(): Promise<string> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => finish("no answer within 2 s"), 2000);
    const finish = (result: string) => {
      clearTimeout(timer);
      session.destroy();
      resolve(result);
    };
    session.on("error", (err) => finish(err.message));
    const name = Buffer.from(service);
    // HealthCheckRequest { service }: field 1, length-delimited (names are short, one-byte length).
    const message =
      name.length > 0 ? Buffer.concat([Buffer.from([0x0a, name.length]), name]) : Buffer.alloc(0);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    const req = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    req.on("response", (h) => {
      status = h["grpc-status"] as string | undefined;
    });
    req.on("trailers", (t) => {
      status = t["grpc-status"] as string | undefined;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", (err) => finish(err.message));
    req.on("end", () => {
      if (status !== "0") return finish(`grpc-status ${status ?? "missing"}`);
      const body = Buffer.concat(chunks);
      const res = fromBinary(HealthCheckResponseSchema, body.subarray(5));
      finish(HealthCheckResponse_ServingStatus[res.status]);
    });
    req.end(frame);
  });
}

if (!Number.isInteger(port) || port <= 0) {
  console.error("health-probe: no port (pass one or set PORT)");
  process.exit(2);
}
const result = await probe();
if (result !== "SERVING") console.error(`health-probe: ${result}`);
process.exit(result === "SERVING" ? 0 : 1);
