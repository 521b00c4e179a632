/**
 * Load scenarios. `pnpm bench:hop` (or `tsx bench/run.ts hop`): the platform runtime vs bare
 * @grpc/grpc-js vs bare connect-node on the same unary echo, one server at a time on this machine,
 * each driven by h2load with the same request. Writes the table into docs/BENCHMARKS.md.
 *
 * Env: BENCH_DURATION_S (measured seconds per run, default 10), BENCH_WARMUP (warm-up requests,
 * default 20000), BENCH_ROUNDS (rounds over all servers; the median run is reported, default 3).
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EchoRequestSchema, EchoService } from "../gen/dispatch/echo/v1/echo_pb.ts";
import { NODE_FLAGS } from "../packages/build/src/node-flags.ts";
import { grpcBody, h2load, h2loadVersion, type LoadResult } from "./h2load.ts";
import { machineStateLine } from "./machine-state.ts";
import { mobileReport } from "./mobile-report.ts";
import { relayScenario } from "./relay.ts";
import { machine, writeSection } from "./report.ts";
import { startEchoServer } from "./servers/start.ts";
import { startup } from "./startup.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
const warmup = Number(process.env.BENCH_WARMUP ?? 20_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = 10;
const STREAMS = 10;

const children = new Set<ChildProcess>();
const killAll = () => {
  for (const c of children) c.kill("SIGKILL");
};
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

async function startServer(
  file: string,
  env: Record<string, string> = {},
): Promise<{ port: number; stop: () => Promise<void> }> {
  // The platform runs with the services' node flags, as its images do.
  const nodeFlags = file.startsWith("platform") ? [...NODE_FLAGS] : [];
  const server = await startEchoServer(file, { env, nodeFlags });
  children.add(server.child);
  return {
    port: server.port,
    async stop() {
      await server.stop();
      children.delete(server.child);
    },
  };
}

interface Row {
  name: string;
  result: LoadResult;
}

async function measure(
  name: string,
  file: string,
  body: Buffer,
  env: Record<string, string> = {},
): Promise<Row> {
  const server = await startServer(file, env);
  try {
    // h2load counts HTTP statuses only: prove once with a real gRPC client that the call succeeds.
    const client = createClient(
      EchoService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }),
    );
    const reply = await client.echo({ message: "hello dispatch" });
    if (reply.message !== "hello dispatch") throw new Error(`${name} answered ${JSON.stringify(reply)}`);
    const url = `http://127.0.0.1:${server.port}/dispatch.echo.v1.EchoService/Echo`;
    await h2load({ url, body, clients: CLIENTS, streams: STREAMS, requests: warmup });
    const result = await h2load({ url, body, clients: CLIENTS, streams: STREAMS, durationS });
    if (result.succeeded !== result.requests)
      throw new Error(`${name}: ${result.requests - result.succeeded} requests failed`);
    return { name, result };
  } finally {
    await server.stop();
  }
}

function median(rows: Row[]): Row {
  const sorted = [...rows].sort((a, b) => a.result.reqPerSec - b.result.reqPerSec);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function hop(): Promise<void> {
  const h2 = await h2loadVersion();
  const body = grpcBody(
    toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hello dispatch" })),
  );
  const servers: { name: string; file: string; env?: Record<string, string> }[] = [
    { name: "platform (packages/runtime, full)", file: "platform-echo.ts" },
    { name: "bare @grpc/grpc-js", file: "grpc-js-echo.ts" },
    { name: "bare @connectrpc/connect-node", file: "connect-echo.ts" },
    { name: "raw node:http2, precomputed reply (the Node ceiling)", file: "raw-http2-echo.ts" },
    {
      name: "platform, tracing at default sampling (5 %)",
      file: "platform-echo.ts",
      env: { BENCH_TRACING: "default" },
    },
    { name: "platform, tracing every call (100 %)", file: "platform-echo.ts", env: { BENCH_TRACING: "all" } },
  ];
  const runs = new Map<string, Row[]>(servers.map((s) => [s.name, []]));
  for (let r = 1; r <= rounds; r++) {
    for (const s of servers) {
      const row = await measure(s.name, s.file, body, s.env);
      runs.get(s.name)!.push(row);
      console.error(`round ${r}/${rounds} ${s.name}: ${Math.round(row.result.reqPerSec)} req/s`);
    }
  }
  const rows = servers.map((s) => median(runs.get(s.name)!));
  const grpcJs = rows[1]!.result.reqPerSec;
  const ratio = rows[0]!.result.reqPerSec / grpcJs;
  const ceiling = rows[0]!.result.reqPerSec / rows[3]!.result.reqPerSec;
  const tracedDefault = rows[4]!.result.reqPerSec / rows[0]!.result.reqPerSec;
  const tracedAll = rows[5]!.result.reqPerSec / rows[0]!.result.reqPerSec;
  const fmt = (n: number, d = 2) => n.toFixed(d);
  const table = [
    "| server | req/s | mean ms | p50 ms | p99 ms | vs grpc-js |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${Math.round(r.result.reqPerSec)} | ${fmt(r.result.meanMs)} | ${fmt(r.result.p50Ms)} | ${fmt(r.result.p99Ms)} | ${fmt(r.result.reqPerSec / grpcJs)}x |`,
    ),
  ].join("\n");
  const allRuns = servers
    .map(
      (s) =>
        `${s.name}: ${runs
          .get(s.name)!
          .map((r) => Math.round(r.result.reqPerSec))
          .join(", ")}`,
    )
    .join("; ");
  const content = `Unary \`dispatch.echo.v1.EchoService/Echo\` (a 16-byte request), loopback h2c. Each server runs alone as
its own process; h2load \`-c ${CLIENTS} -m ${STREAMS} -t 1\`, ${warmup} warm-up requests, then ${durationS} s measured;
${rounds} rounds, the median run of each server shown. Latency percentiles come from h2load's per-request log.
The platform row is the full runtime: one JSON log line per RPC (written to /dev/null), error mapping,
deadline handling, health and reflection registered.

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${await machine(h2)}
- Command: \`pnpm bench:hop\`

${table}

**platform / grpc-js = ${fmt(ratio)}** (bar: ≥ 1.25); **platform / raw node:http2 = ${fmt(ceiling)}** (bar: ≥ 0.60). Every run, req/s: ${allRuns}.

Tracing (OpenTelemetry, spans through the production batching processor to an in-memory exporter; the
requests carry no traceparent, so the sampler decides): at the default sampling the platform keeps
**${fmt(tracedDefault * 100, 1)} %** of its untraced throughput (cost ${fmt((1 - tracedDefault) * 100, 1)} %, bar: under 10 %); tracing
every call keeps ${fmt(tracedAll * 100, 1)} %. Without OTEL_EXPORTER_OTLP_ENDPOINT tracing is off: the first row.`;
  console.log(
    `\n${table}\n\nplatform / grpc-js = ${fmt(ratio)}; platform / raw = ${fmt(ceiling)}; tracing default ${fmt(tracedDefault * 100, 1)} %, all ${fmt(tracedAll * 100, 1)} %`,
  );
  writeSection("Hop: unary echo", content);
  if (ratio < 1.25 || ceiling < 0.6 || tracedDefault < 0.9) process.exitCode = 1;
}

async function startupScenario(): Promise<void> {
  const { rows, pnpmStartMs, pnpmRestartMs, bareNode } = await startup();
  const table = [
    "| service | bundle: process start to SERVING (median of 3; bar ≤ 300 ms) | idle RSS (bar ≤ 60 MB) | of it anonymous | of it file-backed | of that, in 2 MB pages |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.service} | ${r.startMs} ms | ${r.idleRssMb} MB | ${r.idleAnonMb} MB | ${r.idleFileMb} MB | ${r.idleFileHugeMb} MB |`,
    ),
    `| (bare Node 24, running nothing) | – | ${bareNode.rssMb} MB | ${bareNode.anonMb} MB | ${bareNode.fileMb} MB | ${bareNode.fileHugeMb} MB |`,
  ].join("\n");
  const content = `Each service's bundle (\`services/<svc>/dist/main.mjs\`, what the images run) started as a process
on this machine against the local PostgreSQL (migrations already applied by the first of three starts;
the median start is shown), timed from spawn to the first SERVING answer on grpc.health.v1, then its RSS
after 2 s idle. \`pnpm start\` (all six from their local bundles, each on its own PGlite folder) to its "all
healthy" banner (bar ≤ 10 s): the first start, as on a fresh clone (it builds the local bundles, and
creates and migrates the five databases),
**${(pnpmStartMs / 1000).toFixed(1)} s**; a later start on the same folders, **${(pnpmRestartMs / 1000).toFixed(1)} s**. For scale: Node 24
itself, idle and running nothing, has an RSS of ${bareNode.rssMb} MB here. RSS is split as the kernel
counts it (\`/proc/<pid>/status\`): anonymous pages are the process's own (V8's heap, malloc, stacks);
file-backed ones are almost all the node binary's code and read-only data (a 127 MB file), paged in as
they are touched and shared by every process that runs the same binary. Where the kernel keeps that
file's page cache in 2 MB folios (\`FilePmdMapped\` in \`/proc/<pid>/smaps_rollup\`: the last column), a
process maps each 2 MB it touches whole, and its file-backed RSS is larger than where the same binary
sits in 4 kB pages (measured: 15–16 MB for a service, 27 MB for bare Node) (BENCHMARKS-ROUNDS.md, "Twenty-first round").

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${await machine(await h2loadVersion().catch(() => "h2load absent"))}
- Command: \`pnpm bench:startup\`

${table}`;
  console.log(`\n${table}\n\npnpm start to all healthy: first ${pnpmStartMs} ms, again ${pnpmRestartMs} ms`);
  writeSection("Start-up and memory", content);
}

const relayIntro = `An outbox relay draining a backlog (after a subscriber was down, or a burst of writes): ${"`"}bench/relay.ts${"`"}
writes a backlog of OrderPlaced events for distinct orders into orders' outbox table (local PostgreSQL),
then runs the relay's rounds (up to 100 events each) in the bench process until the backlog is empty,
delivering to two subscribers, each its own process serving EventSubscriberService through the runtime
and acknowledging every event: once serving HandleEvents (one call per round and subscriber), once
serving HandleEvent only (a subscriber built before HandleEvents; one call per event and subscriber).
Runs in turns; CPU per event from /proc (the relay is this process).`;

const scenario = process.argv[2] ?? "all";
if (!["hop", "mobile", "relay", "startup", "all"].includes(scenario)) {
  console.error(`unknown scenario ${scenario}; use: hop, mobile, relay, startup, all`);
  process.exit(2);
}
// The machine's state, measured once before any load (every section's "Machine:" line quotes it).
console.error(`machine: ${await machineStateLine()}`);
if (scenario === "hop" || scenario === "all") await hop();
if (scenario === "mobile" || scenario === "all") {
  execFileSync(process.execPath, ["packages/build/src/bundle.ts"], { cwd: root, stdio: "inherit" });
  const { content, ok } = await mobileReport(await machine(await h2loadVersion()));
  console.log(content);
  writeSection("Mobile flows under load", content);
  if (!ok) process.exitCode = 1;
}
if (scenario === "relay" || scenario === "all") {
  const { content } = await relayScenario();
  writeSection(
    "Relay catch-up",
    `${relayIntro}

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${await machine(await h2loadVersion().catch(() => "h2load absent"))}
- Command: \`pnpm bench:relay\`

${content}`,
  );
  console.log(content);
}
if (scenario === "startup" || scenario === "all") await startupScenario();
