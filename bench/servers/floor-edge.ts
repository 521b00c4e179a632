// The floor's edge: what the gateway cannot avoid for a gRPC call. node:http2 takes the call and passes its
// bytes to the backend on one HTTP/2 connection, then the reply's bytes and status back: no token, no rate
// limit, no protobuf, no logging, no metrics.
import http2 from "node:http2";

const backend = http2.connect(`http://${process.env.FLOOR_BACKEND}`);
backend.on("error", () => {});
const headers = { ":status": 200, "content-type": "application/grpc" };

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on("stream", (stream, inHeaders) => {
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("end", () => {
    const call = backend.request({
      ":method": "POST",
      ":path": inHeaders[":path"],
      "content-type": "application/grpc",
      te: "trailers",
    });
    const reply: Buffer[] = [];
    let status = "14";
    call.on("data", (c: Buffer) => reply.push(c));
    call.on("trailers", (t) => {
      status = String(t["grpc-status"] ?? "13");
    });
    call.on("close", () => {
      if (stream.destroyed) return;
      // The backend's failure is an HTTP error here, so h2load counts it as one.
      if (status !== "0") return stream.respond({ ":status": 502 }, { endStream: true });
      stream.respond(headers, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": status }));
      stream.end(Buffer.concat(reply));
    });
    call.on("error", () => {});
    call.end(Buffer.concat(chunks));
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stderr.write(`READY ${(server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
