// Bare connect-node serving the gRPC protocol on node:http2: the same method, nothing else.
import http2 from "node:http2";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "../../gen/dispatch/echo/v1/echo_pb.ts";

const routes = (router: ConnectRouter) =>
  router.service(EchoService, { echo: (req) => ({ message: req.message }) });
const server = http2.createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stderr.write(`READY ${(server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
