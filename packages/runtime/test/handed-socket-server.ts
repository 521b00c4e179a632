/**
 * A server as a service's main.ts starts one: its gRPC and admin ports by listenOn (PORT and ADMIN_PORT, or
 * the sockets it was handed under those names). Prints {port, adminPort} once it serves; SIGTERM stops it.
 * Run by inherited-sockets.spec.ts.
 */
import pino from "pino";
import { listenOn, serve } from "../src/index.ts";

const server = await serve({
  name: "handed",
  services: [],
  port: listenOn("PORT", Number(process.env.PORT)),
  adminPort: listenOn("ADMIN_PORT", Number(process.env.ADMIN_PORT)),
  logger: pino({ level: "silent" }),
  handleSignals: true,
});
process.stdout.write(`${JSON.stringify({ port: server.port, adminPort: server.adminPort })}\n`);
