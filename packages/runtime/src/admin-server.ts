import { once } from "node:events";
import http from "node:http";

/**
 * The admin port (HTTP/1.1) for orchestrators and humans: /healthz says the process is alive,
 * /readyz whether it should get traffic (503 while starting or draining).
 */
export async function startAdminServer(opts: {
  port: number;
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
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  server.listen(opts.port, opts.host);
  await once(server, "listening");
  return server;
}
