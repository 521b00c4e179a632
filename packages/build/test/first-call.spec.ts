import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { builtinsViaRequire, bundleOptions } from "../src/bundle.ts";

const runtime = fileURLToPath(new URL("../../runtime/src/index.ts", import.meta.url));

/**
 * A service's first call is its first health check at start-up: nothing on that path may read the global
 * `Headers` (or `fetch`, `Request`…), which makes node load undici, 27–33 ms on this machine. A program
 * on the runtime, bundled as the services are, in a process of its own: is undici loaded once the server
 * has started, and once it has answered a call that carries a traceparent?
 */
const program = `
import { serve } from ${JSON.stringify(runtime)};
const undici = () => process.moduleLoadList.some((m) => m.includes("undici"));
const server = await serve({ name: "first-call", host: "127.0.0.1", port: 0, adminPort: false, logLevel: "silent", services: [] });
const started = undici();
process.stdout.write(JSON.stringify({ port: server.port }) + "\\n");
process.stdin.once("data", async () => {
  process.stdout.write(JSON.stringify({ started, afterCall: undici() }) + "\\n");
  await server.shutdown();
  process.exit(0);
});
`;

function healthCheck(port: number): Promise<string | undefined> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  return new Promise<string | undefined>((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });
    let status: string | undefined;
    req.on("response", (h) => {
      status ??= h["grpc-status"] as string | undefined;
    });
    req.on("trailers", (t) => {
      status = t["grpc-status"] as string | undefined;
    });
    req.on("data", () => {});
    req.on("end", () => resolve(status));
    req.on("error", reject);
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  }).finally(() => session.close());
}

describe("a bundled service's first call", () => {
  const dir = mkdtempSync(join(tmpdir(), "dispatch-first-call-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads no undici: the health check at start-up does not pay ~30 ms for it", async () => {
    writeFileSync(join(dir, "entry.mjs"), program);
    const outfile = join(dir, "out.mjs");
    await build({
      ...bundleOptions,
      entryPoints: [join(dir, "entry.mjs")],
      outfile,
      plugins: [builtinsViaRequire],
    });
    const proc = spawn(process.execPath, [outfile], { stdio: ["pipe", "pipe", "inherit"] });
    // Listened for from the start: the program may exit before the second line is read below.
    const exited = once(proc, "exit");
    const lines: string[] = [];
    let buffered = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buffered += d;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
    });
    const line = async (n: number) => {
      while (lines.length < n) await new Promise((r) => setTimeout(r, 10));
      return JSON.parse(lines[n - 1]!) as Record<string, unknown>;
    };
    const { port } = (await line(1)) as { port: number };
    expect(await healthCheck(port)).toBe("0");
    proc.stdin!.write("report\n");
    expect(await line(2)).toEqual({ started: false, afterCall: false });
    await exited;
  });
});
