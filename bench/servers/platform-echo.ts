// The platform: EchoService through the full runtime (logging, metrics, error mapping, deadlines, health,
// reflection all on). Logs go to stdout, which the harness discards: they are still produced.
// BENCH_TRACING: "off" (default, as without OTEL_EXPORTER_OTLP_ENDPOINT), "all" (every call traced) or
// "default" (the default sampling for new traces); spans go to an in-memory exporter through the same
// batching processor production uses.
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { EchoService } from "../../gen/dispatch/echo/v1/echo_pb.ts";
import { serve, startTracing } from "../../packages/runtime/src/index.ts";

const mode = process.env.BENCH_TRACING ?? "off";
if (mode !== "off") {
  const exporter = new InMemorySpanExporter();
  startTracing({ service: "bench-echo", exporter, ...(mode === "all" ? { ratio: 1 } : {}) });
  // Empty it every 100 ms, as an exporter that ships spans off would: what is measured is making and
  // exporting spans, not keeping a second of them on the heap (that retention alone cost ~8 % in GC).
  setInterval(() => exporter.reset(), 100).unref();
}

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
