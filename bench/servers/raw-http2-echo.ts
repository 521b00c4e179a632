// The Node ceiling: node:http2 answering every gRPC call with one precomputed reply (no decoding, no
// routing, no logging). Nothing Node-based can serve this request faster on this machine.
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoResponseSchema } from "../../gen/dispatch/echo/v1/echo_pb.ts";

const message = toBinary(EchoResponseSchema, create(EchoResponseSchema, { message: "hello dispatch" }));
const reply = Buffer.alloc(5 + message.length);
reply.writeUInt32BE(message.length, 1);
reply.set(message, 5);
const headers = { ":status": 200, "content-type": "application/grpc" };
const trailers = { "grpc-status": "0" };

const server = http2.createServer();
server.on("stream", (stream) => {
  stream.on("data", () => {});
  stream.on("end", () => {
    stream.respond(headers, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(trailers));
    stream.end(reply);
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stderr.write(`READY ${(server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
