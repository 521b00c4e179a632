import v8 from "node:v8";
import vm from "node:vm";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EchoService } from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { type CallContext, currentCall, type Server, serve } from "../src/index.ts";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const kept: CallContext[] = [];
let lastCall: WeakRef<object> | undefined;
let server: Server | undefined;
afterAll(async () => {
  await server?.shutdown();
});

describe("the call's async context", () => {
  it("no longer holds the call once its handler is done, though what the handler left behind keeps it", async () => {
    server = await serve({
      name: "scope",
      host: "127.0.0.1",
      port: 0,
      adminPort: false,
      logger: pino({ level: "silent" }),
      services: [
        [
          EchoService,
          {
            async echo(req, ctx) {
              // What a long-lived resource created in the handler holds: the call's async context.
              lastCall = new WeakRef(ctx);
              kept.push(currentCall()!);
              await new Promise((resolve) => setTimeout(resolve, 5));
              return { message: req.message };
            },
          },
        ],
      ],
    });
    const client = createClient(
      EchoService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }),
    );
    const res = await client.echo({ message: "hi" }, { headers: { "x-request-id": "req-scope" } });
    expect(res.message).toBe("hi");
    // Let the stream close on both sides, then collect everything unreachable.
    for (let i = 0; i < 10 && lastCall?.deref() !== undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    expect(lastCall?.deref()).toBeUndefined();
    const scope = kept[0]!;
    expect(scope.requestId).toBe("req-scope");
    expect(scope.signal.aborted).toBe(false);
  });
});
