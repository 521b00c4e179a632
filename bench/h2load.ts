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
  /** Evenly spaced fixed-rate runs only: the calls counted from when the rate had them leave (`fromSchedule()`). */
  fromSchedule?: FromSchedule;
}

/** Latency counted from each call's schedule, and (h2load's runs) how late the calls were sent, p99. */
export interface FromSchedule {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  sentLateP99Ms?: number;
}

/** The q-quantile of ascending `sorted`: the value at floor(q·n); NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/**
 * A fixed rate's calls counted from when they were due, not from when they left. h2load's log times a
 * call from its send, and it sends a due call only when its client has a free stream (gRPC: `-m` a
 * connection) or connection (HTTP/1.1: one call at a time): a call that waited for one does not count its
 * wait. Its clients' schedules are not in the log, so the schedule is rebuilt from the rate: the calls
 * sorted by send, the k-th due k/rate after the first, the whole schedule shifted to the earliest
 * call's place (the call that left least late is taken as on time). A call's lateness is then its send
 * less its due time, and its latency from the schedule that lateness plus its time in h2load's log: what
 * a caller at that rate waits (as `bench/driver.ts` measures place order). Where h2load never waits for a
 * stream or a connection, lateness is its own timers' slack on the shared cores, and the rebuilt
 * schedule's own error: the calls of two clients that leave in the same millisecond.
 *
 * `calls`: [send time µs, duration µs] of the measured calls. Quantiles in ms.
 */
export function fromSchedule(
  calls: readonly (readonly [number, number])[],
  rps: number,
): Required<FromSchedule> {
  const sorted = [...calls].sort((a, b) => a[0] - b[0]);
  const behind = sorted.map(([start], k) => start - (k * 1e6) / rps);
  const onTime = behind.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  const late = behind.map((b) => b - onTime);
  const waited = sorted.map(([, us], k) => (us + late[k]!) / 1000).sort((a, b) => a - b);
  late.sort((a, b) => a - b);
  return {
    p50Ms: quantile(waited, 0.5),
    p90Ms: quantile(waited, 0.9),
    p99Ms: quantile(waited, 0.99),
    sentLateP99Ms: quantile(late, 0.99) / 1000,
  };
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
  /**
   * With `rps` and `durationS`: how the clients' calls are spread in time. h2load starts a client's rate
   * timer when the client connects, and connects all clients at once, so their calls leave together: in
   * bursts of `clients` calls, one burst per 1/rps s ("bursts"; measured with -c 10 --rps 50 against the
   * raw node:http2 server: 9.8 calls a burst, 11 µs apart, then ~20 ms of nothing). "even" connects one
   * client every 1/(clients·rps) s instead (h2load -r 1 --rate-period, whole milliseconds: the nearest,
   * at least 1 ms), so the calls leave evenly spaced at the total rate, as a fixed rate means. h2load
   * refuses -r with -D: an even run is then -n calls, the warm-up being the calls that started in its
   * first `warmupS` seconds, left out of the figures (and the rate read from the log over the rest).
   */
  arrivals?: "bursts" | "even";
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
    const even = opts.arrivals === "even" && opts.rps !== undefined && opts.durationS !== undefined;
    const totalRps = (opts.rps ?? 0) * opts.clients;
    const warmupS = opts.warmupS ?? 0;
    const timing = even
      ? [
          "-n",
          String(Math.round(totalRps * (warmupS + opts.durationS!))),
          "-r",
          "1",
          "--rate-period",
          `${Math.max(1, Math.round(1000 / totalRps))}ms`,
        ]
      : [
          ...(opts.durationS ? ["-D", String(opts.durationS)] : ["-n", String(opts.requests ?? 10_000)]),
          ...(opts.durationS && opts.warmupS ? ["--warm-up-time", String(opts.warmupS)] : []),
        ];
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
      ...timing,
      ...(opts.rps ? ["--rps", String(opts.rps)] : []),
      ...(opts.h1 ? ["--h1"] : []),
      opts.url,
    ];
    const { stdout } = await run("h2load", args, { maxBuffer: 16 * 1024 * 1024 });
    let reqPerSec = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)?.[1]);
    const done = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded/.exec(stdout);
    const failed = /(\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
    if (!done || !failed || Number.isNaN(reqPerSec))
      throw new Error(`could not read h2load's output:\n${stdout}`);
    // h2load's log: each call's start (µs since the epoch), HTTP status and duration (µs).
    let log = readFileSync(logFile, "utf8")
      .trim()
      .split("\n")
      .map((line) => line.split("\t").map(Number) as [number, number, number])
      .filter(([start, , us]) => Number.isFinite(start) && Number.isFinite(us));
    let requests = Number(done[2]);
    let succeeded = Number(done[3]);
    let schedule: FromSchedule | undefined;
    if (even && log.length > 0) {
      const from =
        log.reduce((min, [start]) => Math.min(min, start), Number.POSITIVE_INFINITY) + warmupS * 1e6;
      log = log.filter(([start]) => start >= from);
      const until = log.reduce((max, [start, , us]) => Math.max(max, start + us), from);
      requests = log.length;
      // Every failure h2load counted, warm-up included, is held against the measured calls.
      const failures = Number(failed[1]) + Number(failed[2]) + Number(failed[3]);
      succeeded = Math.max(
        0,
        Math.min(log.filter(([, status]) => status >= 200 && status < 400).length, requests - failures),
      );
      reqPerSec = (requests * 1e6) / Math.max(1, until - from);
      schedule = fromSchedule(
        log.map(([start, , us]) => [start, us] as const),
        totalRps,
      );
    }
    const latencies = log.map(([, , us]) => us / 1000).sort((a, b) => a - b);
    const at = (q: number) => quantile(latencies, q);
    return {
      requests,
      succeeded,
      reqPerSec,
      meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
      p50Ms: at(0.5),
      p90Ms: at(0.9),
      p99Ms: at(0.99),
      fromSchedule: schedule,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
