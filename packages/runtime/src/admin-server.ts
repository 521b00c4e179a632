import http from "node:http";
import { type ListenOn, listen } from "./inherited-sockets.ts";
import { registry } from "./metrics.ts";

/**
 * The admin port (HTTP/1.1) for orchestrators and humans: /healthz says the process is alive,
 * /readyz whether it should get traffic (503 while starting or draining), /metrics the Prometheus
 * metrics of the whole process.
 */
export async function startAdminServer(opts: {
  port: ListenOn;
  host: string;
  ready: () => boolean;
}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = req.url?.split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ready = opts.ready();
      res
        .writeHead(ready ? 200 : 503, { "content-type": "text/plain" })
        .end(ready ? "ready\n" : "not ready\n");
    } else if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  await listen(server, opts.port, opts.host);
  return server;
}
