// Bare @grpc/grpc-js: the same method, protobuf-es (de)serializers, nothing else.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type EchoRequest,
  EchoRequestSchema,
  type EchoResponse,
  EchoResponseSchema,
} from "../../gen/dispatch/echo/v1/echo_pb.ts";

const server = new grpc.Server();
server.addService(
  {
    Echo: {
      path: "/dispatch.echo.v1.EchoService/Echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: EchoRequest) => Buffer.from(toBinary(EchoRequestSchema, m)),
      requestDeserialize: (b: Buffer) => fromBinary(EchoRequestSchema, b),
      responseSerialize: (m: EchoResponse) => Buffer.from(toBinary(EchoResponseSchema, m)),
      responseDeserialize: (b: Buffer) => fromBinary(EchoResponseSchema, b),
      originalName: "echo",
    },
  },
  {
    Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, cb: grpc.sendUnaryData<EchoResponse>) =>
      cb(null, create(EchoResponseSchema, { message: call.request.message })),
  },
);
server.bindAsync(
  `127.0.0.1:${process.env.PORT ?? 0}`,
  grpc.ServerCredentials.createInsecure(),
  (err, port) => {
    if (err) throw err;
    process.stderr.write(`READY ${port}\n`);
  },
);
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
