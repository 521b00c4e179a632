// The platform: EchoService through the full runtime (logging, error mapping, deadlines, health,
// reflection all on). Logs go to stdout, which the harness discards: they are still produced.
import { EchoService } from "../../gen/dispatch/echo/v1/echo_pb.ts";
import { serve } from "../../packages/runtime/src/index.ts";

const server = await serve({
  name: "bench-echo",
  host: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  adminPort: false,
  logLevel: "info",
  services: [[EchoService, { echo: (req) => ({ message: req.message }) }]],
  handleSignals: true,
});
process.stderr.write(`READY ${server.port}\n`);
