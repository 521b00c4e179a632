import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface LoadResult {
  requests: number;
  succeeded: number;
  reqPerSec: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

/** A gRPC unary request body as h2load sends it: 5-byte frame header + protobuf bytes. */
export function grpcBody(message: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + message.length);
  b.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(b, 5);
  return b;
}

export async function h2loadVersion(): Promise<string> {
  try {
    const { stdout } = await run("h2load", ["--version"]);
    return stdout.trim().split("\n")[0] ?? "h2load";
  } catch {
    throw new Error("h2load is not installed: apt-get install nghttp2-client");
  }
}

/**
 * Drives one unary gRPC method with h2load (-c clients, -m streams each) and reads throughput from its
 * summary and latency percentiles from its per-request log (h2load prints no percentiles itself).
 */
export async function h2load(opts: {
  url: string;
  body: Buffer;
  clients: number;
  streams: number;
  requests?: number;
  durationS?: number;
  /** Warm-up before the measured duration (timed runs only). */
  warmupS?: number;
  /** Requests per second per client (h2load --rps): a fixed rate instead of as fast as possible. */
  rps?: number;
  /** Request headers; default: a gRPC call. */
  headers?: string[];
  /** HTTP/1.1 instead of h2c. */
  h1?: boolean;
}): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "dispatch-bench-"));
  try {
    const bodyFile = join(dir, "body.bin");
    const logFile = join(dir, "requests.log");
    writeFileSync(bodyFile, opts.body);
    const args = [
      "-c",
      String(opts.clients),
      "-m",
      String(opts.streams),
      "-t",
      "1",
      "-d",
      bodyFile,
      ...(opts.headers ?? ["content-type: application/grpc", "te: trailers"]).flatMap((h) => ["-H", h]),
      "--log-file",
      logFile,
      ...(opts.durationS ? ["-D", String(opts.durationS)] : ["-n", String(opts.requests ?? 10_000)]),
      ...(opts.durationS && opts.warmupS ? ["--warm-up-time", String(opts.warmupS)] : []),
      ...(opts.rps ? ["--rps", String(opts.rps)] : []),
      ...(opts.h1 ? ["--h1"] : []),
      opts.url,
    ];
    const { stdout } = await run("h2load", args, { maxBuffer: 16 * 1024 * 1024 });
    const reqPerSec = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)?.[1]);
    const done = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded/.exec(stdout);
    if (!done || Number.isNaN(reqPerSec)) throw new Error(`could not read h2load's output:\n${stdout}`);
    const latencies = readFileSync(logFile, "utf8")
      .trim()
      .split("\n")
      .map((line) => Number(line.split("\t")[2]) / 1000)
      .filter((ms) => Number.isFinite(ms))
      .sort((a, b) => a - b);
    const at = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    return {
      requests: Number(done[2]),
      succeeded: Number(done[3]),
      reqPerSec,
      meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
      p50Ms: at(0.5),
      p90Ms: at(0.9),
      p99Ms: at(0.99),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
