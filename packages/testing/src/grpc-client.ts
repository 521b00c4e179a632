import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

/**
 * A plain gRPC client for tests: no deadlines propagation, no breaker, so tests observe exactly what
 * the server answers. Services calling services use @dispatch/client instead.
 */
export function testClient<S extends DescService>(service: S, port: number): Client<S> {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  return createClient(service, transport);
}
