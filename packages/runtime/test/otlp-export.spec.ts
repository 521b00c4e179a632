import { once } from "node:events";
import http from "node:http";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EchoService } from "@dispatch/gen/dispatch/echo/v1/echo_pb.ts";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { type Server, serve, stopTracing } from "../src/index.ts";
import { echoService } from "./echo-service.ts";

/**
 * With OTEL_EXPORTER_OTLP_ENDPOINT set, serve() starts tracing by itself and ships spans over OTLP/HTTP:
 * a stand-in collector on loopback receives them.
 */
const received: { path: string; type: string; body: string }[] = [];
const collector = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    received.push({
      path: req.url ?? "",
      type: String(req.headers["content-type"]),
      body: Buffer.concat(chunks).toString("latin1"),
    });
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
});
let server: Server | undefined;

afterAll(async () => {
  await server?.shutdown();
  await stopTracing();
  collector.close();
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete process.env.OTEL_TRACES_SAMPLER_ARG;
});

describe("OTLP export", () => {
  it("sends a sampled call's span to OTEL_EXPORTER_OTLP_ENDPOINT when the server shuts down (or its batch fills)", async () => {
    collector.listen(0, "127.0.0.1");
    await once(collector, "listening");
    const { port } = collector.address() as { port: number };
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
    process.env.OTEL_TRACES_SAMPLER_ARG = "1";
    server = await serve({
      name: "echo-otlp",
      host: "127.0.0.1",
      port: 0,
      adminPort: false,
      logger: pino({ level: "silent" }),
      services: [echoService({ aborts: [], contexts: [], completed: [] })],
    });
    const echo = createClient(
      EchoService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }),
    );
    await echo.echo({ message: "traced" });
    // Shutdown flushes what the batching processor holds.
    await server.shutdown();
    server = undefined;
    const traces = received.filter((r) => r.path === "/v1/traces");
    expect(traces.length).toBeGreaterThan(0);
    const body = traces.map((t) => t.body).join("\n");
    expect(body).toContain("dispatch.echo.v1.EchoService/Echo");
    expect(body).toContain("echo-otlp");
  });
});
